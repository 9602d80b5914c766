"""Metric learners beside Prototypical Networks: Matching Networks (Vinyals et al. 2016),
with optional full-context embeddings, and Relation Networks (Sung et al. 2018)."""

from __future__ import annotations

import math

import torch
from torch import nn

from autometa.exceptions import InputError
from autometa.metalearn._episodic import EpisodicLearner, class_count, one_hot, seeded
from autometa.metalearn._tasks import TaskBatch

__all__ = ["MatchingNet", "RelationNet", "nll_loss", "relation_mse_loss"]


def nll_loss(log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``(n, classes)`` log-probabilities against int64 labels."""
    return -log_probs.gather(-1, target.unsqueeze(-1)).mean()


def relation_mse_loss(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``(n, classes)`` relation scores in [0, 1] against the one-hot labels
    (the loss of Sung et al. 2018)."""
    return torch.mean((scores - one_hot(target, scores.shape[-1], scores.dtype)) ** 2)


def _check_dim(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"The '{name}' parameter of {owner} must be an int >= 1; got {value!r}.")
    return value


class _LSTMCell(nn.Module):
    """An LSTM cell written with one linear layer, so that it runs under ``vmap`` and
    ``functional_call`` (``nn.LSTM``'s fused kernels do not)."""

    def __init__(self, input_size: int, state_size: int, hidden: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.gates = nn.Linear(input_size + state_size, 4 * hidden, dtype=dtype)

    def forward(self, x: torch.Tensor, state: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i, f, g, o = self.gates(torch.cat([x, state], dim=-1)).chunk(4, dim=-1)
        cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(cell), cell


class _MatchingModel(nn.Module):
    def __init__(self, embedding: nn.Module, embedding_dim: int | None, full_context: bool, processing_steps: int,
                 dtype: torch.dtype) -> None:  # fmt: skip
        super().__init__()
        self.embedding = embedding
        self.full_context = full_context
        self.processing_steps = processing_steps
        self.ways = 0
        # inverse temperature of the cosine attention, learned (cosines in [-1, 1] give a nearly flat softmax)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0), dtype=dtype))
        if full_context:
            assert embedding_dim is not None
            d = embedding_dim
            self.support_forward = _LSTMCell(d, d, d, dtype)
            self.support_backward = _LSTMCell(d, d, d, dtype)
            self.query_lstm = _LSTMCell(d, 2 * d, d, dtype)

    def _context_support(self, e: torch.Tensor) -> torch.Tensor:
        """g(x_i, S): the embeddings plus both directions of an LSTM read over the support set."""
        n = e.shape[0]
        zero = torch.zeros_like(e[0])
        h, c, forward = zero, zero, []
        for i in range(n):
            h, c = self.support_forward(e[i], h, c)
            forward.append(h)
        h, c, backward = zero, zero, [zero] * n
        for i in reversed(range(n)):
            h, c = self.support_backward(e[i], h, c)
            backward[i] = h
        return e + torch.stack(forward) + torch.stack(backward)

    def _context_query(self, e: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """f(x, S): ``processing_steps`` of an attention LSTM reading the support embeddings ``g``."""
        h = torch.zeros_like(e)
        c, read = torch.zeros_like(e), torch.zeros_like(e)
        for _ in range(self.processing_steps):
            hidden, c = self.query_lstm(e, torch.cat([h, read], dim=-1), c)
            h = hidden + e
            read = torch.softmax(h @ g.T, dim=-1) @ g
        return h

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        g = self.embedding(support_x)
        f = self.embedding(query_x)
        if self.full_context:
            g = self._context_support(g)
            f = self._context_query(f, g)
        cosine = nn.functional.normalize(f, dim=-1) @ nn.functional.normalize(g, dim=-1).T
        attention = torch.softmax(self.log_scale.exp() * cosine, dim=-1)  # (n_query, n_support)
        probs = attention @ one_hot(support_y, self.ways, attention.dtype)
        return torch.log(probs.clamp_min(1e-12))


class MatchingNet(EpisodicLearner):
    """Matching Networks (Vinyals et al. 2016): attention over the support set.

    A query point's class distribution is ``sum_i a(x, x_i) onehot(y_i)`` with ``a`` the
    softmax over support points of the cosine similarity of the embeddings, times a learned
    inverse temperature (initialised to 10). With ``full_context`` the support embeddings are
    read by a bidirectional LSTM and each query embedding by an attention LSTM over them
    for ``processing_steps`` steps (the full-context embeddings of the paper). Meta-training
    minimises the query negative log-likelihood; predictions are log-probabilities. Labels
    must be ``0 .. ways-1``.

    Parameters
    ----------
    embedding : torch.nn.Module
        Input -> ``(n, embedding_dim)`` vectors, e.g. ``make_convnet(None)``.
    embedding_dim : int, optional
        Width of the embedding; needed with ``full_context``.
    full_context : bool
        Use the full-context embeddings.
    processing_steps : int
        Steps of the query's attention LSTM (full context only).
    seed : int or None
        Seed of the initialisation of the layers added to ``embedding`` (the global RNG is left
        as it was); None draws from the global RNG.
    vectorize, amp : bool
        As in :class:`BaseMetaLearner`.
    """

    def __init__(self, embedding: nn.Module, *, embedding_dim: int | None = None, full_context: bool = False,
                 processing_steps: int = 3, seed: int | None = 0, vectorize: bool = True,
                 amp: bool = False) -> None:  # fmt: skip
        if not isinstance(embedding, nn.Module):
            raise InputError(f"The 'embedding' parameter of MatchingNet must be a torch.nn.Module; got "
                             f"{type(embedding).__name__}.")  # fmt: skip
        if full_context:
            _check_dim("MatchingNet", "embedding_dim", embedding_dim)
            _check_dim("MatchingNet", "processing_steps", processing_steps)
        dtype = next(embedding.parameters()).dtype
        model = seeded(seed, lambda: _MatchingModel(embedding, embedding_dim, full_context, processing_steps, dtype))
        model = model.to(next(embedding.parameters()).device)
        super().__init__(model, loss_fn=nll_loss, vectorize=vectorize, amp=amp)
        self.full_context = full_context

    def _prepare(self, batch: TaskBatch) -> None:
        self.model.ways = class_count("MatchingNet", batch.support_y)  # type: ignore[assignment]


class _RelationModel(nn.Module):
    def __init__(self, embedding: nn.Module, embedding_dim: int, hidden: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.embedding = embedding
        self.relation = nn.Sequential(nn.Linear(2 * embedding_dim, hidden, dtype=dtype), nn.ReLU(),
                                      nn.Linear(hidden, 1, dtype=dtype))  # fmt: skip
        self.ways = 0

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        es, eq = self.embedding(support_x), self.embedding(query_x)
        classes = one_hot(support_y, self.ways, es.dtype).T @ es  # (ways, d): summed support embeddings
        pairs = torch.cat(
            [eq.unsqueeze(1).expand(-1, self.ways, -1), classes.unsqueeze(0).expand(eq.shape[0], -1, -1)], dim=-1
        )
        return torch.sigmoid(self.relation(pairs).squeeze(-1))  # (n_query, ways) relation scores


class RelationNet(EpisodicLearner):
    """Relation Networks (Sung et al. 2018): a learned comparison of query and class.

    A class is represented by the sum of its support embeddings; a relation module (two
    linear layers with ``hidden`` units, a ReLU and a sigmoid) scores each (query, class)
    pair of concatenated embeddings in [0, 1], and meta-training regresses the scores on
    the one-hot labels (mean squared error). The paper's relation module convolves feature
    maps; here it reads the embedding vectors, so any embedding network fits. Labels must
    be ``0 .. ways-1``.

    Parameters
    ----------
    embedding : torch.nn.Module
        Input -> ``(n, embedding_dim)`` vectors, e.g. ``make_convnet(None)``.
    embedding_dim : int
    hidden : int
        Units of the relation module (the paper uses 8 on feature maps; 8 often dies on embedding
        vectors, whose ReLU units then all output 0).
    seed : int or None
        Seed of the relation module's initialisation (the global RNG is left as it was).
    vectorize, amp : bool
        As in :class:`BaseMetaLearner`.
    """

    def __init__(self, embedding: nn.Module, *, embedding_dim: int, hidden: int = 64, seed: int | None = 0,
                 vectorize: bool = True, amp: bool = False) -> None:  # fmt: skip
        if not isinstance(embedding, nn.Module):
            raise InputError(f"The 'embedding' parameter of RelationNet must be a torch.nn.Module; got "
                             f"{type(embedding).__name__}.")  # fmt: skip
        _check_dim("RelationNet", "embedding_dim", embedding_dim)
        _check_dim("RelationNet", "hidden", hidden)
        first = next(embedding.parameters())
        model = seeded(seed, lambda: _RelationModel(embedding, embedding_dim, hidden, first.dtype)).to(first.device)
        super().__init__(model, loss_fn=relation_mse_loss, vectorize=vectorize, amp=amp)

    def _prepare(self, batch: TaskBatch) -> None:
        self.model.ways = class_count("RelationNet", batch.support_y)  # type: ignore[assignment]
