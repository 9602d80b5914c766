"""A black-box meta-learner: SNAIL (Mishra et al. 2018), a network that reads the labelled
support set as a sequence and predicts the label of a query appended to it.

The sequence holds one token per support point, ``[embedding(x_i), label_i]`` (one-hot
classes, or the regression target), followed by the query token ``[embedding(x), 0]``.
Temporal-convolution blocks (dilated causal convolutions with gated activations, their
outputs concatenated to their inputs) alternate with causal key-value attention blocks.
Every query is a separate sequence that shares the support prefix: since the prefix is
causal it does not depend on the query, so it is computed once per task and each query
token reads it, never another query.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from autometa.exceptions import InputError
from autometa.metalearn._episodic import EpisodicLearner, class_count, one_hot, seeded
from autometa.metalearn._functional import LossFn, cross_entropy_loss, mse_loss
from autometa.metalearn._tasks import TaskBatch

__all__ = ["SNAIL"]


class _DenseBlock(nn.Module):
    """A causal convolution of kernel 2 and ``dilation``, gated (tanh * sigmoid), concatenated."""

    def __init__(self, channels: int, filters: int, dilation: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Linear(2 * channels, 2 * filters, dtype=dtype)  # taps at t - dilation and t

    def _gate(self, past: torch.Tensor, now: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(torch.cat([past, now], dim=-1)).chunk(2, dim=-1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, xs: torch.Tensor, xq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, d = xs.shape[0], self.dilation
        past_s = torch.cat([torch.zeros_like(xs[: min(d, n)]), xs[: max(n - d, 0)]], dim=0)
        past_q = (xs[n - d] if n - d >= 0 else torch.zeros_like(xs[0])).expand_as(xq)
        return torch.cat([xs, self._gate(past_s, xs)], dim=-1), torch.cat([xq, self._gate(past_q, xq)], dim=-1)


class _AttentionBlock(nn.Module):
    """Causal single-head key-value attention, its read concatenated to the input."""

    def __init__(self, channels: int, key_size: int, value_size: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.key_size = key_size
        self.query = nn.Linear(channels, key_size, dtype=dtype)
        self.key = nn.Linear(channels, key_size, dtype=dtype)
        self.value = nn.Linear(channels, value_size, dtype=dtype)

    def forward(self, xs: torch.Tensor, xq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = 1.0 / math.sqrt(self.key_size)
        ks, vs = self.key(xs), self.value(xs)
        n = xs.shape[0]
        future = torch.ones(n, n, dtype=torch.bool, device=xs.device).triu(1)
        logits_s = (self.query(xs) @ ks.T * scale).masked_fill(future, float("-inf"))
        read_s = torch.softmax(logits_s, dim=-1) @ vs
        qq = self.query(xq)
        logits_q = torch.cat([qq @ ks.T, (qq * self.key(xq)).sum(-1, keepdim=True)], dim=-1) * scale
        weights = torch.softmax(logits_q, dim=-1)
        read_q = weights[:, :n] @ vs + weights[:, n:] * self.value(xq)
        return torch.cat([xs, read_s], dim=-1), torch.cat([xq, read_q], dim=-1)


class _SNAILModel(nn.Module):
    def __init__(self, embedding: nn.Module, embedding_dim: int, label_dim: int, out_dim: int, support_size: int,
                 filters: int, key_size: int, value_size: int, ways: int | None, dtype: torch.dtype) -> None:  # fmt: skip
        super().__init__()
        self.embedding = embedding
        self.ways = ways
        blocks = max(1, math.ceil(math.log2(support_size + 1)))
        layers: list[nn.Module] = []
        channels = embedding_dim + label_dim
        for stage in range(3):
            layers.append(_AttentionBlock(channels, key_size, value_size, dtype))
            channels += value_size
            if stage < 2:
                for b in range(blocks):
                    layers.append(_DenseBlock(channels, filters, 2**b, dtype))
                    channels += filters
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(channels, out_dim, dtype=dtype)

    def _labels(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.ways is not None:
            return one_hot(y, self.ways, dtype)
        return y.to(dtype).reshape(y.shape[0], -1)

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        es, eq = self.embedding(support_x), self.embedding(query_x)
        labels = self._labels(support_y, es.dtype)
        xs = torch.cat([es, labels], dim=-1)
        xq = torch.cat([eq, torch.zeros(eq.shape[0], labels.shape[-1], dtype=eq.dtype, device=eq.device)], dim=-1)
        for layer in self.layers:
            xs, xq = layer(xs, xq)
        return self.head(xq)


class SNAIL(EpisodicLearner):
    """SNAIL, the simple neural attentive meta-learner (Mishra et al. 2018): black-box
    adaptation by a network that reads the support set.

    The architecture of the paper's few-shot classifier, sized by the arguments: an
    attention block, a temporal-convolution block of ``ceil(log2(support_size + 1))``
    dense blocks (dilations 1, 2, 4, ...), attention, temporal convolutions, attention,
    then a linear layer on the query token. Classification (``ways`` given) feeds one-hot
    labels and minimises the query cross-entropy (predictions are logits); regression feeds
    the targets and minimises the mean squared error (predictions are the targets).

    Parameters
    ----------
    embedding : torch.nn.Module
        Input -> ``(n, embedding_dim)``: ``make_convnet(None)`` for images, an MLP for
        regression inputs.
    embedding_dim : int
    support_size : int
        Support points per task (ways x shots): sets the depth of the temporal convolutions
        (other sizes still run, with a receptive field sized for this one).
    ways : int, optional
        Classes per task (classification); None for regression.
    target_dim : int
        Width of a regression target (ignored with ``ways``).
    filters, key_size, value_size : int
        Channels added by each dense block, and the attention's key and value widths.
    seed : int or None
        Seed of the initialisation of the layers added to ``embedding``.
    vectorize, amp : bool
        As in :class:`BaseMetaLearner`.
    """

    def __init__(self, embedding: nn.Module, *, embedding_dim: int, support_size: int, ways: int | None = None,
                 target_dim: int = 1, filters: int = 32, key_size: int = 16, value_size: int = 32,
                 seed: int | None = 0, vectorize: bool = True, amp: bool = False) -> None:  # fmt: skip
        if not isinstance(embedding, nn.Module):
            raise InputError(f"The 'embedding' parameter of SNAIL must be a torch.nn.Module; got "
                             f"{type(embedding).__name__}.")  # fmt: skip
        for name, value in (("embedding_dim", embedding_dim), ("support_size", support_size),
                            ("target_dim", target_dim), ("filters", filters), ("key_size", key_size),
                            ("value_size", value_size)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"The '{name}' parameter of SNAIL must be an int >= 1; got {value!r}.")
        if ways is not None and (isinstance(ways, bool) or not isinstance(ways, int) or ways < 2):
            raise InputError(f"The 'ways' parameter of SNAIL must be an int >= 2 or None; got {ways!r}.")
        first = next(embedding.parameters(), None)
        dtype = first.dtype if first is not None else torch.get_default_dtype()
        label_dim = ways if ways is not None else target_dim
        model = seeded(seed, lambda: _SNAILModel(embedding, embedding_dim, label_dim, label_dim, support_size, filters,
                                                 key_size, value_size, ways, dtype))  # fmt: skip
        if first is not None:
            model = model.to(first.device)
        loss_fn: LossFn = cross_entropy_loss if ways is not None else mse_loss
        super().__init__(model, loss_fn=loss_fn, vectorize=vectorize, amp=amp)
        self.ways = ways

    def _prepare(self, batch: TaskBatch) -> None:
        if self.ways is None:
            if not batch.support_y.is_floating_point():
                raise InputError("SNAIL was built for regression (ways=None) but got int64 class labels; "
                                 "pass ways=... to classify.")  # fmt: skip
            return
        found = class_count("SNAIL", batch.support_y)
        if found > self.ways:
            raise InputError(f"SNAIL was built for {self.ways}-way tasks; got labels up to {found - 1}.")
