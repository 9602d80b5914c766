"""DARTS: bilevel search of the cell architecture, with first- or second-order
architecture gradients, temperature annealing and a guard against skip collapse.

One search step (Liu et al. 2019, algorithm 1):

1. update the architecture parameters ``alpha`` with Adam on the validation loss, using
   either its plain gradient at the current weights (first order) or the gradient
   through one virtual SGD step of the weights, whose Hessian-vector product is
   approximated by central finite differences (second order, equations 7-8);
2. update the weights with SGD (momentum, cosine schedule) on the training loss.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from autometa.checkpoint import Checkpoint
from autometa.exceptions import InputError
from autometa.nas._data import ImageData, MinibatchSampler
from autometa.nas._genotype import Genotype
from autometa.nas._network import ARCH_NAMES, SearchNetwork
from autometa.nas._ops import DARTS_OPS, validate_ops

__all__ = [
    "AuxiliarySkip",
    "DARTSSearch",
    "HessianEarlyStop",
    "SearchRecord",
    "SearchResult",
    "accuracy",
    "arch_gradient",
    "dominant_hessian_eigenvalue",
    "resolve_device",
]

logger = logging.getLogger("autometa.nas")

Params = dict[str, torch.Tensor]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"cuda"`` if asked for and present, ``"cpu"`` otherwise; ``None`` picks cuda when present."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"The 'device' parameter must be 'cpu' or 'cuda'; got {device!r}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("The 'device' parameter is 'cuda' but torch sees no CUDA GPU; use --device cpu.")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"The 'device' parameter must be 'cpu' or 'cuda'; got {device!r}.")
    return dev


# --- skip-collapse guards -------------------------------------------------------------------


@dataclass(frozen=True)
class AuxiliarySkip:
    """DARTS- (Chu et al. 2021): an auxiliary skip connection ``beta * x`` on every stride-1
    edge, ``beta`` decaying linearly from ``beta`` to 0 over the search, so the candidate
    skip operation no longer has to carry the gradient flow and does not win by default.

    Parameters
    ----------
    beta : float
        Starting coefficient (> 0).
    """

    beta: float = 1.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise InputError(f"The 'beta' parameter of AuxiliarySkip must be > 0; got {self.beta!r}.")


@dataclass(frozen=True)
class HessianEarlyStop:
    """Early stopping on the dominant eigenvalue of the validation loss's Hessian in
    ``alpha`` (RobustDARTS, Zela et al. 2020): a growing curvature precedes collapse.

    Every ``every`` steps the eigenvalue is estimated by power iteration on a validation
    batch; ``lam_i`` is the mean of the last ``window`` estimates. The search stops when
    ``lam_(i - lag) / lam_i < ratio`` and returns the architecture of estimate ``i - lag``.

    Parameters
    ----------
    every : int
        Steps between eigenvalue estimates.
    window, lag : int
        Smoothing window and look-back, in estimates.
    ratio : float
        Stopping threshold in (0, 1).
    power_iterations : int
        Hessian-vector products per estimate.
    """

    every: int = 25
    window: int = 2
    lag: int = 2
    ratio: float = 0.75
    power_iterations: int = 10

    def __post_init__(self) -> None:
        for name in ("every", "window", "lag", "power_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"The '{name}' parameter of HessianEarlyStop must be an int >= 1; got {value!r}.")
        if not 0.0 < self.ratio < 1.0:
            raise InputError(f"The 'ratio' parameter of HessianEarlyStop must be in (0, 1); got {self.ratio!r}.")


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchRecord:
    """The state of a search at one evaluation step.

    Attributes
    ----------
    step : int
        Search steps done.
    train_loss : float
        Mean training loss of the weight updates since the previous record.
    valid_accuracy : float
        Accuracy of the search network on the validation data.
    skip_share : float
        Share of skip connections in the normal cell's current genotype.
    skip_weight : float
        Mean softmax weight of the skip operation over the normal cell's edges.
    temperature : float
    aux_skip : float
        Coefficient of the DARTS- auxiliary skip (0 without it).
    eigenvalue : float or None
        Dominant Hessian eigenvalue, when estimated at this step.
    seconds : float
        Search time so far (resumed runs included).
    """

    step: int
    train_loss: float
    valid_accuracy: float
    skip_share: float
    skip_weight: float
    temperature: float
    aux_skip: float
    eigenvalue: float | None
    seconds: float


@dataclass(frozen=True)
class SearchResult:
    """What a DARTS search produced.

    Attributes
    ----------
    genotype : Genotype
        The discretized architecture.
    alpha_normal, alpha_reduce : torch.Tensor
        The final architecture parameters (CPU, detached), ``(edges, ops)``.
    ops : tuple of str
    history : tuple of SearchRecord
    steps : int
        Search steps done.
    stopped_early : bool
        The Hessian guard stopped the search (its genotype is from the look-back step).
    """

    genotype: Genotype
    alpha_normal: torch.Tensor
    alpha_reduce: torch.Tensor
    ops: tuple[str, ...]
    history: tuple[SearchRecord, ...]
    steps: int
    stopped_early: bool = False

    @property
    def final_valid_accuracy(self) -> float:
        return self.history[-1].valid_accuracy if self.history else float("nan")

    def steps_to_reach(self, accuracy: float) -> int | None:
        """The first recorded step whose validation accuracy is at least ``accuracy``."""
        return next((r.step for r in self.history if r.valid_accuracy >= accuracy), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "genotype": self.genotype.to_dict(),
            "alpha_normal": self.alpha_normal.tolist(),
            "alpha_reduce": self.alpha_reduce.tolist(),
            "ops": list(self.ops),
            "steps": self.steps,
            "stopped_early": self.stopped_early,
            "history": [asdict(r) for r in self.history],
        }


# --- the gradients ----------------------------------------------------------------------------


def _fingerprint(*parts: ImageData) -> str:
    """A hash of the inputs and labels, so a checkpoint never resumes on other data."""
    h = hashlib.sha1()
    for data in parts:
        h.update(repr((tuple(data.x.shape), data.n_classes)).encode())
        h.update(data.x.detach().cpu().contiguous().numpy().tobytes())
        h.update(data.y.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _loss(net: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(functional_call(net, params, (x,)), y)


def _grads(loss: torch.Tensor, tensors: Sequence[torch.Tensor], **kwargs: Any) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, list(tensors), allow_unused=True, **kwargs)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors, strict=True)]


def arch_gradient(
    net: SearchNetwork,
    train_batch: tuple[torch.Tensor, torch.Tensor],
    valid_batch: tuple[torch.Tensor, torch.Tensor],
    *,
    order: str = "first",
    xi: float = 0.025,
    epsilon_scale: float = 0.01,
) -> list[torch.Tensor]:
    """The gradient of the validation loss in ``[alpha_normal, alpha_reduce]``; nothing is changed.

    Parameters
    ----------
    net : SearchNetwork
    train_batch, valid_batch : (x, y)
    order : {"first", "second"}
        "first": ``grad_alpha L_val(w, alpha)``. "second": the gradient of
        ``L_val(w - xi * grad_w L_train(w, alpha), alpha)``, whose mixed second derivative
        times ``v = grad_w' L_val(w', alpha)`` is approximated by
        ``(grad_alpha L_train(w + eps v) - grad_alpha L_train(w - eps v)) / (2 eps)`` with
        ``eps = epsilon_scale / ||v||`` (DARTS, equations 7-8).
    xi : float
        Step size of the virtual weight step (DARTS uses the weight learning rate).
    epsilon_scale : float
    """
    weights = {n: p.detach() for n, p in net.named_parameters() if n not in ARCH_NAMES}
    alphas = {n: getattr(net, n).detach().requires_grad_(True) for n in ARCH_NAMES}
    xv, yv = valid_batch
    if order == "first":
        return _grads(_loss(net, {**weights, **alphas}, xv, yv), list(alphas.values()))
    if order != "second":
        raise InputError(f"The 'order' parameter must be 'first' or 'second'; got {order!r}.")
    xt, yt = train_batch
    w = {n: t.requires_grad_(True) for n, t in ((n, t.clone()) for n, t in weights.items())}
    g_train = _grads(_loss(net, {**w, **alphas}, xt, yt), list(w.values()))
    virtual = {n: (t - xi * g).detach().requires_grad_(True) for (n, t), g in zip(w.items(), g_train, strict=True)}
    valid_loss = _loss(net, {**virtual, **alphas}, xv, yv)
    grads = _grads(valid_loss, [*alphas.values(), *virtual.values()])
    g_alpha, v = grads[: len(alphas)], grads[len(alphas) :]
    norm = torch.sqrt(sum((g * g).sum() for g in v))  # type: ignore[arg-type]
    eps = epsilon_scale / float(norm) if float(norm) > 0 else 0.0
    if eps == 0.0:
        return g_alpha
    shifted: list[list[torch.Tensor]] = []
    for sign in (1.0, -1.0):
        w_shift = {n: weights[n] + sign * eps * vi for n, vi in zip(weights, v, strict=True)}
        shifted.append(_grads(_loss(net, {**w_shift, **alphas}, xt, yt), list(alphas.values())))
    return [g - xi * (gp - gm) / (2 * eps) for g, gp, gm in zip(g_alpha, *shifted, strict=True)]


def dominant_hessian_eigenvalue(
    net: SearchNetwork, batch: tuple[torch.Tensor, torch.Tensor], *, iterations: int = 10, seed: int = 0
) -> float:
    """Largest-magnitude eigenvalue of the Hessian of the loss on ``batch`` in the
    architecture parameters, by power iteration on exact Hessian-vector products."""
    all_alphas = {n: getattr(net, n).detach().requires_grad_(True) for n in ARCH_NAMES}
    x, y = batch
    loss = _loss(net, all_alphas, x, y)
    raw = torch.autograd.grad(loss, list(all_alphas.values()), create_graph=True, allow_unused=True)
    used = [(a, g) for a, g in zip(all_alphas.values(), raw, strict=True) if g is not None]  # unused: zero Hessian rows
    if not used:
        return 0.0
    alphas, grads = [a for a, _ in used], [g for _, g in used]
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(a.shape, generator=gen).to(a) for a in alphas]
    eigenvalue = 0.0
    for _ in range(iterations):
        norm = torch.sqrt(sum((t * t).sum() for t in v))  # type: ignore[arg-type]
        if float(norm) == 0.0:
            return 0.0
        v = [t / norm for t in v]
        hv = _grads_of(grads, alphas, v)
        eigenvalue = float(sum((h * t).sum() for h, t in zip(hv, v, strict=True)))
        v = [h.detach() for h in hv]
    return eigenvalue


def _grads_of(grads: list[torch.Tensor], inputs: list[torch.Tensor], v: list[torch.Tensor]) -> list[torch.Tensor]:
    hv = torch.autograd.grad(grads, inputs, grad_outputs=v, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(a) if h is None else h for h, a in zip(hv, inputs, strict=True)]


@torch.no_grad()
def accuracy(net: nn.Module, data: ImageData, *, batch_size: int = 256) -> float:
    """Share of ``data`` classified correctly by ``net`` (in evaluation mode; restored after)."""
    was_training = net.training
    net.eval()
    correct = 0
    device = next(net.parameters()).device
    for start in range(0, len(data), batch_size):
        x = data.x[start : start + batch_size].to(device)
        correct += int((net(x).argmax(dim=1).cpu() == data.y[start : start + batch_size].cpu()).sum())
    net.train(was_training)
    return correct / len(data)


# --- the search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    ops: tuple[str, ...]
    channels: int
    n_cells: int
    n_nodes: int
    order: str
    weight_lr: float
    weight_lr_min: float
    weight_momentum: float
    weight_decay: float
    arch_lr: float
    arch_weight_decay: float
    batch_size: int
    grad_clip: float
    temperature: tuple[float, float]
    guard: AuxiliarySkip | HessianEarlyStop | None
    eval_every: int
    seed: int

    def key(self) -> str:
        """The settings string of checkpoints written before :class:`autometa.checkpoint.Checkpoint`."""
        return repr(self)

    def checkpoint_settings(self) -> dict[str, Any]:
        """The settings a resumed search must share, as plain data (the guard by its repr)."""
        settings = {f.name: getattr(self, f.name) for f in fields(self)}
        settings["guard"] = repr(self.guard)
        return settings


class DARTSSearch:
    """Differentiable architecture search (Liu et al. 2019) on an image classification task.

    ``__init__`` only validates and stores the settings; :meth:`search` builds the search
    network (``network_``) and runs the bilevel optimisation. Not thread-safe.

    Parameters
    ----------
    ops : sequence of str
        Candidate operations of every edge (:data:`DARTS_OPS` or :data:`FEWSHOT_OPS` or
        any subset of :data:`OPERATIONS`).
    channels, n_cells, n_nodes : int
        Size of the search network (DARTS: 16 channels, 8 cells, 4 nodes).
    order : {"first", "second"}
        Architecture gradient (second: finite-difference Hessian-vector product).
    weight_lr, weight_lr_min, weight_momentum, weight_decay : float
        SGD of the weights, learning rate annealed by a cosine from ``weight_lr`` to
        ``weight_lr_min`` over the search.
    arch_lr, arch_weight_decay : float
        Adam (betas 0.5, 0.999) of the architecture parameters (DARTS: 3e-4, 1e-3; short
        searches on small data need a larger rate).
    batch_size : int
        Examples per training and per validation batch.
    grad_clip : float
        Gradient-norm clipping of the weights.
    temperature : (float, float)
        Softmax temperature at the first and the last step, annealed geometrically.
    guard : AuxiliarySkip or HessianEarlyStop or None
        Protection against collapse to skip connections.
    eval_every : int
        Steps between :class:`SearchRecord` entries (validation accuracy, skip share).
    device : str, optional
        "cpu" or "cuda"; by default cuda when present.
    seed : int
    """

    def __init__(
        self,
        *,
        ops: Sequence[str] = DARTS_OPS,
        channels: int = 16,
        n_cells: int = 8,
        n_nodes: int = 4,
        order: str = "first",
        weight_lr: float = 0.025,
        weight_lr_min: float = 0.001,
        weight_momentum: float = 0.9,
        weight_decay: float = 3e-4,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        batch_size: int = 64,
        grad_clip: float = 5.0,
        temperature: tuple[float, float] = (1.0, 1.0),
        guard: AuxiliarySkip | HessianEarlyStop | None = None,
        eval_every: int = 25,
        device: str | None = None,
        seed: int = 0,
    ) -> None:
        owner = "DARTSSearch"
        if order not in ("first", "second"):
            raise InputError(f"The 'order' parameter of {owner} must be 'first' or 'second'; got {order!r}.")
        for name, value in (
            ("weight_lr", weight_lr),
            ("arch_lr", arch_lr),
            ("grad_clip", grad_clip),
        ):
            if not value > 0:
                raise InputError(f"The '{name}' parameter of {owner} must be > 0; got {value!r}.")
        for name, value in (
            ("weight_lr_min", weight_lr_min),
            ("weight_momentum", weight_momentum),
            ("weight_decay", weight_decay),
            ("arch_weight_decay", arch_weight_decay),
        ):
            if not value >= 0:
                raise InputError(f"The '{name}' parameter of {owner} must be >= 0; got {value!r}.")
        for name, value in (("batch_size", batch_size), ("eval_every", eval_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"The '{name}' parameter of {owner} must be an int >= 1; got {value!r}.")
        if len(temperature) != 2 or not all(t > 0 for t in temperature):
            raise InputError(f"The 'temperature' parameter of {owner} must be (start, end), both > 0; got {temperature!r}.")
        if guard is not None and not isinstance(guard, (AuxiliarySkip, HessianEarlyStop)):
            raise InputError(
                f"The 'guard' parameter of {owner} must be AuxiliarySkip, HessianEarlyStop or None; got {guard!r}."
            )
        self.settings = _Settings(
            ops=validate_ops(ops, owner),
            channels=channels,
            n_cells=n_cells,
            n_nodes=n_nodes,
            order=order,
            weight_lr=float(weight_lr),
            weight_lr_min=float(weight_lr_min),
            weight_momentum=float(weight_momentum),
            weight_decay=float(weight_decay),
            arch_lr=float(arch_lr),
            arch_weight_decay=float(arch_weight_decay),
            batch_size=batch_size,
            grad_clip=float(grad_clip),
            temperature=(float(temperature[0]), float(temperature[1])),
            guard=guard,
            eval_every=eval_every,
            seed=seed,
        )
        self.device = resolve_device(device)

    # --- schedules ---

    def _temperature(self, step: int, steps: int) -> float:
        start, end = self.settings.temperature
        return start * (end / start) ** (step / max(1, steps - 1))

    def _aux_skip(self, step: int, steps: int) -> float:
        guard = self.settings.guard
        if isinstance(guard, AuxiliarySkip):
            return guard.beta * (1.0 - step / steps)
        return 0.0

    # --- main loop ---

    def search(
        self,
        train: ImageData,
        valid: ImageData,
        *,
        steps: int,
        init_alphas: tuple[torch.Tensor, torch.Tensor] | None = None,
        init_weights: dict[str, torch.Tensor] | None = None,
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 100,
        callback: Callable[[SearchRecord], None] | None = None,
    ) -> SearchResult:
        """Run the bilevel search for ``steps`` steps.

        Parameters
        ----------
        train, valid : ImageData
            Data of the weight updates and of the architecture updates (and of the
            recorded validation accuracy).
        steps : int
            Search steps (one architecture and one weight update each).
        init_alphas : (torch.Tensor, torch.Tensor), optional
            Starting ``(alpha_normal, alpha_reduce)``: a warm start.
        init_weights : dict of str to torch.Tensor, optional
            Starting weights (a search network's ``state_dict``); entries whose shape
            differs from this network's, such as a classifier for another number of
            classes, are skipped.
        checkpoint : path, optional
            File to save the search to every ``checkpoint_every`` steps (an
            :class:`autometa.checkpoint.Checkpoint`); if it exists and was written by a
            search with the same settings, steps, warm start and data, the search resumes
            from it, and raises :class:`~autometa.exceptions.ResumeError` naming what
            differs otherwise.
        callback : callable, optional
            Called with every :class:`SearchRecord`.

        Returns
        -------
        SearchResult
        """
        s = self.settings
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise InputError(f"The 'steps' parameter of DARTSSearch.search must be an int >= 1; got {steps!r}.")
        if not isinstance(train, ImageData) or not isinstance(valid, ImageData):
            raise InputError("The 'train' and 'valid' parameters of DARTSSearch.search must be ImageData.")
        if train.x.shape[1:] != valid.x.shape[1:]:
            raise InputError(
                f"Train and validation images must have the same shape; got {tuple(train.x.shape[1:])} and "
                f"{tuple(valid.x.shape[1:])}."
            )
        n_classes = max(train.n_classes, valid.n_classes)
        net = SearchNetwork(
            train.in_channels,
            n_classes,
            channels=s.channels,
            n_cells=s.n_cells,
            n_nodes=s.n_nodes,
            ops=s.ops,
            stem_kernel=train.stem_kernel,
            seed=s.seed,
        )
        if init_weights is not None:
            own = net.state_dict()
            usable = {k: v for k, v in init_weights.items() if k in own and own[k].shape == v.shape and k not in ARCH_NAMES}
            net.load_state_dict(usable, strict=False)
        if init_alphas is not None:
            for name, value in zip(ARCH_NAMES, init_alphas, strict=True):
                target = getattr(net, name)
                if tuple(value.shape) != tuple(target.shape):
                    raise InputError(
                        f"The warm-start '{name}' must have shape {tuple(target.shape)}; got {tuple(value.shape)}."
                    )
                with torch.no_grad():
                    target.copy_(value)
        net = net.to(self.device)
        self.network_ = net
        w_opt = torch.optim.SGD(
            net.weight_parameters(), lr=s.weight_lr, momentum=s.weight_momentum, weight_decay=s.weight_decay
        )
        a_opt = torch.optim.Adam(net.arch_parameters(), lr=s.arch_lr, betas=(0.5, 0.999), weight_decay=s.arch_weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=steps, eta_min=s.weight_lr_min)
        table = train.stem_kernel == 1
        train_sampler = MinibatchSampler(len(train), s.batch_size, s.seed, table=table)
        valid_sampler = MinibatchSampler(len(valid), s.batch_size, s.seed + 1, table=table)
        history: list[SearchRecord] = []
        eig_log: list[tuple[int, float, torch.Tensor, torch.Tensor]] = []
        step, seconds_before, losses = 0, 0.0, []
        ckpt = None
        if checkpoint is not None:
            fingerprint = _fingerprint(train, valid)
            settings = {**s.checkpoint_settings(), "steps": steps, "init": init_alphas is not None, "data": fingerprint}
            legacy = s.key() + f"|steps={steps}|init={init_alphas is not None}|data={fingerprint}"
            ckpt = Checkpoint(checkpoint, settings, legacy_key=legacy)
        state = ckpt.load(map_location=self.device) if ckpt is not None else None
        if state is not None:
            net.load_state_dict(state["network"])
            w_opt.load_state_dict(state["w_opt"])
            a_opt.load_state_dict(state["a_opt"])
            schedule.load_state_dict(state["schedule"])
            train_sampler.load_state_dict(state["train_sampler"])
            valid_sampler.load_state_dict(state["valid_sampler"])
            history = list(state["history"])
            eig_log = list(state["eig_log"])
            step, seconds_before = int(state["step"]), float(state["seconds"])
            logger.info("resuming the search at step %d of %d from %s", step, steps, checkpoint)
        start = time.perf_counter()
        stopped_early = False
        final_alphas: tuple[torch.Tensor, torch.Tensor] | None = None
        net.train()
        dev = self.device
        while step < steps:
            net.temperature = self._temperature(step, steps)
            net.aux_skip = self._aux_skip(step, steps)
            ti, vi = train_sampler.next(), valid_sampler.next()
            xt, yt = train.x[ti].to(dev), train.y[ti].to(dev)
            xv, yv = valid.x[vi].to(dev), valid.y[vi].to(dev)
            # 1. architecture step
            a_opt.zero_grad()
            xi = w_opt.param_groups[0]["lr"]
            for p, g in zip(net.arch_parameters(), arch_gradient(net, (xt, yt), (xv, yv), order=s.order, xi=xi), strict=True):
                p.grad = g.detach()
            a_opt.step()
            # 2. weight step
            w_opt.zero_grad()
            loss = F.cross_entropy(net(xt), yt)
            loss.backward()
            for p in net.arch_parameters():
                p.grad = None
            nn.utils.clip_grad_norm_(net.weight_parameters(), s.grad_clip)
            w_opt.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            guard = s.guard
            eigenvalue = None
            if isinstance(guard, HessianEarlyStop) and (step % guard.every == 0 or step == steps):
                eigenvalue = dominant_hessian_eigenvalue(net, (xv, yv), iterations=guard.power_iterations, seed=step)
                eig_log.append((step, eigenvalue, net.alpha_normal.detach().cpu().clone(), net.alpha_reduce.detach().cpu().clone()))
                stop_at = self._hessian_stop(eig_log, guard)
                if stop_at is not None:
                    final_alphas = (eig_log[stop_at][2], eig_log[stop_at][3])
                    stopped_early = True
                    logger.info(
                        "Hessian early stop at step %d: eigenvalue %.4g grew from %.4g; architecture of step %d kept",
                        step, eigenvalue, eig_log[stop_at][1], eig_log[stop_at][0],
                    )
            if step % s.eval_every == 0 or step == steps or stopped_early or eigenvalue is not None:
                record = self._record(net, valid, step, losses, eigenvalue, seconds_before + time.perf_counter() - start)
                losses = []
                history.append(record)
                logger.info(
                    "step %d/%d: train loss %.4f, valid accuracy %.4f, skip share %.2f, T %.3f",
                    record.step, steps, record.train_loss, record.valid_accuracy, record.skip_share, record.temperature,
                )
                if callback is not None:
                    callback(record)
            if ckpt is not None and (step % checkpoint_every == 0 or step == steps or stopped_early):
                ckpt.save(
                    {
                        "network": net.state_dict(),
                        "w_opt": w_opt.state_dict(),
                        "a_opt": a_opt.state_dict(),
                        "schedule": schedule.state_dict(),
                        "train_sampler": train_sampler.state_dict(),
                        "valid_sampler": valid_sampler.state_dict(),
                        "history": history,
                        "eig_log": eig_log,
                        "step": step,
                        "seconds": seconds_before + time.perf_counter() - start,
                    }
                )
            if stopped_early:
                break
        if final_alphas is not None:
            with torch.no_grad():
                net.alpha_normal.copy_(final_alphas[0].to(dev))
                net.alpha_reduce.copy_(final_alphas[1].to(dev))
        return SearchResult(
            genotype=net.genotype(),
            alpha_normal=net.alpha_normal.detach().cpu().clone(),
            alpha_reduce=net.alpha_reduce.detach().cpu().clone(),
            ops=s.ops,
            history=tuple(history),
            steps=step,
            stopped_early=stopped_early,
        )

    @staticmethod
    def _hessian_stop(log: list[tuple[int, float, torch.Tensor, torch.Tensor]], guard: HessianEarlyStop) -> int | None:
        values = [abs(v) for _, v, _, _ in log]
        i = len(values) - 1
        j = i - guard.lag
        if j < guard.window - 1:
            return None

        def smoothed(k: int) -> float:
            return sum(values[k - guard.window + 1 : k + 1]) / guard.window

        now, before = smoothed(i), smoothed(j)
        return j if now > 0 and before / now < guard.ratio else None

    @staticmethod
    def _record(
        net: SearchNetwork, valid: ImageData, step: int, losses: list[float], eigenvalue: float | None, seconds: float
    ) -> SearchRecord:
        skip_weight = 0.0
        if "skip_connect" in net.ops:
            with torch.no_grad():
                skip_weight = float(net.edge_weights()[0][:, net.ops.index("skip_connect")].mean())
        return SearchRecord(
            step=step,
            train_loss=sum(losses) / len(losses) if losses else math.nan,
            valid_accuracy=accuracy(net, valid),
            skip_share=net.skip_share(),
            skip_weight=skip_weight,
            temperature=net.temperature,
            aux_skip=net.aux_skip,
            eigenvalue=eigenvalue,
            seconds=round(seconds, 3),
        )
