"""MetaNAS (Elsken et al. 2020): meta-learning an architecture and its weights together.

A Reptile outer loop (Nichol et al. 2018; first-order MAML as an option) moves both the network weights and the
architecture parameters of a :class:`SearchNetwork` towards the values a few DARTS steps
reach on each task of a meta-batch. At meta-test time the meta-learned architecture is
adapted to the new task together with the weights, then discretized (top-2 inputs per
node) and pruned to a :class:`GenotypeNetwork` that keeps the adapted weights. The
softmax temperature is annealed over meta-training (1.0 to 0.05 by default) so the mixed
edges approach one-hot weights and pruning changes the network little. Annealing leaves
the edges a node drops at pruning in place until meta-test time; with ``hard_fraction``
the last share of meta-training, and the adaptation at meta-test time, run the
discretized architecture (``SearchNetwork.hard``: the kept edges and operations in the
forward pass, a straight-through architecture gradient), so the pruned network is the
network that was meta-trained.

The task-level DARTS step is first order and uses the task's support set for both the
weights (SGD) and the architecture (Adam): a few-shot support set is too small to split.
Batch norm normalises every batch with its own statistics (no running statistics), as
few-shot learners do.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from autometa.checkpoint import Checkpoint
from autometa.exceptions import InputError
from autometa.metalearn import TaskBatch, TaskDistribution
from autometa.nas._genotype import Genotype
from autometa.nas._network import ARCH_NAMES, SearchNetwork
from autometa.nas._search import resolve_device

__all__ = ["AdaptedArchitecture", "MetaNAS", "MetaNASEvaluation", "MetaNASRecord", "few_shot_accuracy", "mean_ci"]

logger = logging.getLogger("autometa.nas")


@dataclass(frozen=True)
class MetaNASRecord:
    """One logged meta-iteration.

    Attributes
    ----------
    iteration : int
    query_accuracy : float
        Mean over the meta-batch of the query accuracy after the task steps (supernet).
    temperature : float
    skip_share : float
        Share of skip connections in the meta-architecture's normal-cell genotype.
    seconds : float
    """

    iteration: int
    query_accuracy: float
    temperature: float
    skip_share: float
    seconds: float


@dataclass(frozen=True)
class AdaptedArchitecture:
    """A task-adapted, pruned network.

    Attributes
    ----------
    genotype : Genotype
        The architecture after adaptation to the task.
    network : torch.nn.Module
        The pruned network (or the adapted search network when pruning was off).
    """

    genotype: Genotype
    network: nn.Module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for ``x`` (transductive batch norm: score a whole query set at once)."""
        with torch.no_grad():
            return self.network(x)


def few_shot_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=-1) == y).float().mean())


def _task_steps(
    net: SearchNetwork,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    arch_lr: float,
    *,
    update_arch: bool = True,
) -> None:
    """``steps`` first-order DARTS steps on one task's support set, in place."""
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=lr)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=arch_lr, betas=(0.0, 0.999)) if update_arch else None
    for _ in range(steps):
        w_opt.zero_grad()
        if a_opt is not None:
            a_opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        w_opt.step()
        if a_opt is not None:
            a_opt.step()


class MetaNAS:
    """Meta-learn a search network's weights and architecture with Reptile over DARTS task steps.

    ``__init__`` stores the settings and the network (``network``, changed in place by
    :meth:`meta_train`); :meth:`adapt` never changes it. Not thread-safe.

    Parameters
    ----------
    network : SearchNetwork
        Usually with :data:`FEWSHOT_OPS` and ``BNSettings(affine=False,
        track_running_stats=False)``; its ``n_classes`` is the number of ways.
    task_steps : int
        DARTS steps per task while meta-training (MetaNAS: 5).
    task_lr, task_arch_lr : float
        SGD step size of the weights and Adam step size of the architecture in a task.
    meta_lr, meta_arch_lr : float
        Outer step sizes of the weights and of the architecture. Reptile (MetaNAS: 1.0
        and 0.6) anneals them linearly to 0 over meta-training; first-order MAML uses them
        as constant Adam step sizes (1e-3 is a usual choice).
    outer : {"reptile", "fomaml"}
        The outer loop: Reptile (MetaNAS; the meta-update moves towards the task-adapted
        weights and architecture) or first-order MAML (the meta-gradient is the gradient
        of the query loss at the task-adapted weights and architecture, fed to Adam).
    temperature : (float, float)
        Softmax temperature at the first and the last meta-iteration (geometric).
    hard_fraction : float
        Share (0 to 1) of the last meta-iterations in which the task networks run the
        discretized architecture of their current genotype (straight-through); when it
        is above 0, adaptation at meta-test time runs it too and pruning changes nothing.
        0 (default) is MetaNAS's soft pruning by temperature alone.
    device : str, optional
        "cpu" or "cuda" (default: cuda when present).
    """

    def __init__(
        self,
        network: SearchNetwork,
        *,
        task_steps: int = 5,
        task_lr: float = 0.1,
        task_arch_lr: float = 0.01,
        meta_lr: float = 1.0,
        meta_arch_lr: float = 0.6,
        temperature: tuple[float, float] = (1.0, 0.05),
        outer: str = "reptile",
        hard_fraction: float = 0.0,
        device: str | None = None,
    ) -> None:
        if outer not in ("reptile", "fomaml"):
            raise InputError(f"The 'outer' parameter of MetaNAS must be 'reptile' or 'fomaml'; got {outer!r}.")
        if not isinstance(network, SearchNetwork):
            raise InputError(f"The 'network' parameter of MetaNAS must be a SearchNetwork; got {type(network).__name__}.")
        if isinstance(task_steps, bool) or not isinstance(task_steps, int) or task_steps < 1:
            raise InputError(f"The 'task_steps' parameter of MetaNAS must be an int >= 1; got {task_steps!r}.")
        for name, value in (("task_lr", task_lr), ("task_arch_lr", task_arch_lr), ("meta_lr", meta_lr),
                            ("meta_arch_lr", meta_arch_lr)):
            if not value > 0:
                raise InputError(f"The '{name}' parameter of MetaNAS must be > 0; got {value!r}.")
        if len(temperature) != 2 or not all(t > 0 for t in temperature):
            raise InputError(f"The 'temperature' parameter of MetaNAS must be (start, end), both > 0; got {temperature!r}.")
        if isinstance(hard_fraction, bool) or not isinstance(hard_fraction, int | float) or not 0 <= hard_fraction <= 1:
            raise InputError(f"The 'hard_fraction' parameter of MetaNAS must be a number in [0, 1]; got {hard_fraction!r}.")
        self.device = resolve_device(device)
        self.network = network.to(self.device)
        self.task_steps = task_steps
        self.task_lr = float(task_lr)
        self.task_arch_lr = float(task_arch_lr)
        self.meta_lr = float(meta_lr)
        self.meta_arch_lr = float(meta_arch_lr)
        self.temperature = (float(temperature[0]), float(temperature[1]))
        self.outer = outer
        self.hard_fraction = float(hard_fraction)
        self.iterations_done = 0
        self._outer_optimizer: torch.optim.Optimizer | None = None

    def _settings(self) -> dict[str, object]:
        return {"network": self.network.config, "task_steps": self.task_steps, "task_lr": self.task_lr,
                "task_arch_lr": self.task_arch_lr, "meta_lr": self.meta_lr, "meta_arch_lr": self.meta_arch_lr,
                "temperature": self.temperature, "outer": self.outer, "hard_fraction": self.hard_fraction}

    def meta_train(
        self,
        tasks: TaskDistribution,
        *,
        iterations: int,
        meta_batch_size: int = 5,
        seed: int = 0,
        log_every: int = 10,
        checkpoint: str | Path | None = None,
        callback: Callable[[MetaNASRecord], None] | None = None,
    ) -> list[MetaNASRecord]:
        """Meta-train the network in place for ``iterations`` meta-iterations in total.

        Parameters
        ----------
        tasks : TaskDistribution
            Draws :class:`~autometa.metalearn.TaskBatch` episodes, such as
            :class:`~autometa.metalearn.GlyphTasks`.
        iterations : int
            Total meta-iterations (a resumed run continues up to this count).
        meta_batch_size : int
            Tasks per meta-iteration.
        seed : int
            Seeds the episodes (the generator is re-seeded per iteration, so a resumed
            run draws the same episodes).
        log_every : int
            Meta-iterations between :class:`MetaNASRecord` entries.
        checkpoint : path, optional
            Saved after every record (an :class:`autometa.checkpoint.Checkpoint`); an
            existing checkpoint of the same settings, iterations, meta-batch size and seed
            is resumed, one of others raises :class:`~autometa.exceptions.ResumeError`.
        callback : callable, optional
            Called with every record.

        Returns
        -------
        list of MetaNASRecord
            Every record, those of a resumed run included.
        """
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise InputError(f"The 'iterations' parameter of MetaNAS.meta_train must be an int >= 1; got {iterations!r}.")
        if meta_batch_size < 1:
            raise InputError(f"The 'meta_batch_size' parameter of MetaNAS.meta_train must be >= 1; got {meta_batch_size!r}.")
        net = self.network
        ckpt = None
        if checkpoint is not None:
            settings = {**self._settings(), "iterations": iterations, "meta_batch_size": meta_batch_size, "seed": seed}
            legacy = repr(self._settings()) + f"|{iterations}|{meta_batch_size}|{seed}"
            ckpt = Checkpoint(checkpoint, settings, legacy_key=legacy)
        records: list[MetaNASRecord] = []
        seconds_before = 0.0
        state = ckpt.load(map_location=self.device) if ckpt is not None else None
        if state is not None:
            net.load_state_dict(state["network"])
            if state.get("outer_optimizer") is not None:
                self._outer().load_state_dict(state["outer_optimizer"])
            self.iterations_done = int(state["iterations"])
            records = list(state["records"])
            seconds_before = float(state["seconds"])
            logger.info("resuming MetaNAS at meta-iteration %d of %d", self.iterations_done, iterations)
        task_net = copy.deepcopy(net)
        start = time.perf_counter()
        accs: list[float] = []
        while self.iterations_done < iterations:
            i = self.iterations_done
            t0, t1 = self.temperature
            net.temperature = t0 * (t1 / t0) ** (i / max(1, iterations - 1))
            task_net.temperature = net.temperature
            task_net.hard = self.hard_fraction > 0 and i >= (1.0 - self.hard_fraction) * iterations
            frac = 1.0 - i / iterations
            batch = tasks.sample(meta_batch_size, torch.Generator().manual_seed(seed * 1_000_003 + i))
            meta_state = {n: p.detach().clone() for n, p in net.named_parameters()}
            deltas = {n: torch.zeros_like(p) for n, p in meta_state.items()}
            for t in range(len(batch)):
                with torch.no_grad():
                    for n, p in task_net.named_parameters():
                        p.copy_(meta_state[n])
                sx, sy = batch.support_x[t].to(self.device), batch.support_y[t].to(self.device)
                _task_steps(task_net, sx, sy, self.task_steps, self.task_lr, self.task_arch_lr)
                qx, qy = batch.query_x[t].to(self.device), batch.query_y[t].to(self.device)
                if self.outer == "fomaml":  # the query-loss gradient at the adapted weights and architecture
                    task_net.zero_grad()
                    logits = task_net(qx)
                    F.cross_entropy(logits, qy).backward()
                    with torch.no_grad():
                        for n, p in task_net.named_parameters():
                            if p.grad is not None:
                                deltas[n] += p.grad
                        accs.append(few_shot_accuracy(logits, qy))
                    continue
                with torch.no_grad():
                    for n, p in task_net.named_parameters():
                        deltas[n] += p - meta_state[n]
                    accs.append(few_shot_accuracy(task_net(qx), qy))
            if self.outer == "fomaml":
                optimizer = self._outer()
                for n, p in net.named_parameters():
                    p.grad = deltas[n] / len(batch)
                optimizer.step()
            else:
                with torch.no_grad():
                    for n, p in net.named_parameters():
                        step = (self.meta_arch_lr if n in ARCH_NAMES else self.meta_lr) * frac / len(batch)
                        p.add_(deltas[n], alpha=step)
            self.iterations_done += 1
            if self.iterations_done % log_every == 0 or self.iterations_done == iterations:
                record = MetaNASRecord(
                    iteration=self.iterations_done,
                    query_accuracy=sum(accs) / len(accs),
                    temperature=net.temperature,
                    skip_share=net.skip_share(),
                    seconds=round(seconds_before + time.perf_counter() - start, 3),
                )
                accs = []
                records.append(record)
                logger.info("MetaNAS iteration %d/%d: query accuracy %.3f, T %.3f, skip share %.2f",
                            record.iteration, iterations, record.query_accuracy, record.temperature, record.skip_share)
                if callback is not None:
                    callback(record)
                if ckpt is not None:
                    outer_state = self._outer_optimizer.state_dict() if self._outer_optimizer is not None else None
                    ckpt.save({"network": net.state_dict(), "iterations": self.iterations_done, "records": records,
                               "seconds": record.seconds, "outer_optimizer": outer_state})
        return records

    def _outer(self) -> torch.optim.Optimizer:
        """The Adam optimizer of the first-order MAML outer loop (created on first use)."""
        if self._outer_optimizer is None:
            net = self.network
            self._outer_optimizer = torch.optim.Adam(
                [{"params": net.weight_parameters(), "lr": self.meta_lr},
                 {"params": net.arch_parameters(), "lr": self.meta_arch_lr}]
            )
        return self._outer_optimizer

    def _adapted_search_network(self, x: torch.Tensor, y: torch.Tensor, steps: int | None) -> SearchNetwork:
        steps = self.task_steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise InputError(f"The 'steps' parameter of MetaNAS.adapt must be an int >= 0; got {steps!r}.")
        net = copy.deepcopy(self.network)
        net.hard = self.hard_fraction > 0
        _task_steps(net, x.to(self.device), y.to(self.device), steps, self.task_lr, self.task_arch_lr)
        return net

    def _finetune(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
        if steps < 0:
            raise InputError(f"The 'finetune_steps' parameter of MetaNAS must be >= 0; got {steps!r}.")
        opt = torch.optim.SGD(net.parameters(), lr=self.task_lr)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(net(x.to(self.device)), y.to(self.device)).backward()
            opt.step()

    def adapt(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        *,
        steps: int | None = None,
        prune: bool = True,
        finetune_steps: int = 0,
    ) -> AdaptedArchitecture:
        """Adapt the meta-learned weights and architecture to one task, then prune.

        Parameters
        ----------
        support_x, support_y : torch.Tensor
            One task's support set, ``(k, channels, height, width)`` and ``(k,)``.
        steps : int, optional
            DARTS steps on the support set (default: ``task_steps``).
        prune : bool
            Discretize the adapted architecture and keep only its operations (with
            their adapted weights); False returns the adapted search network.
        finetune_steps : int
            SGD steps of the pruned network's weights on the support set.
        """
        net = self._adapted_search_network(support_x, support_y, steps)
        genotype = net.genotype()
        if not prune:
            return AdaptedArchitecture(genotype, net.eval())
        pruned = net.prune(genotype)
        self._finetune(pruned, support_x, support_y, finetune_steps)
        return AdaptedArchitecture(genotype, pruned.eval())

    def evaluate(self, batch: TaskBatch, *, steps: int | None = None, finetune_steps: int = 0) -> MetaNASEvaluation:
        """Query accuracies of every task of ``batch`` after adaptation: of the adapted search
        network, of the pruned network and (if ``finetune_steps``) of the pruned network
        fine-tuned on the support set; one adaptation per task serves all three. With
        ``hard_fraction > 0`` the adapted search network runs its discretized architecture,
        so its accuracy is the pruned network's."""
        unpruned, pruned_accs, tuned, genotypes = [], [], [], []
        for t in range(len(batch)):
            sx, sy = batch.support_x[t], batch.support_y[t]
            qx, qy = batch.query_x[t].to(self.device), batch.query_y[t].to(self.device)
            net = self._adapted_search_network(sx, sy, steps)
            genotype = net.genotype()
            genotypes.append(genotype)
            pruned = net.prune(genotype)
            with torch.no_grad():
                unpruned.append(few_shot_accuracy(net.eval()(qx), qy))
                pruned_accs.append(few_shot_accuracy(pruned.eval()(qx), qy))
            if finetune_steps:
                self._finetune(pruned.train(), sx, sy, finetune_steps)
                with torch.no_grad():
                    tuned.append(few_shot_accuracy(pruned.eval()(qx), qy))
        return MetaNASEvaluation(tuple(unpruned), tuple(pruned_accs), tuple(tuned) if tuned else None, tuple(genotypes))


@dataclass(frozen=True)
class MetaNASEvaluation:
    """Per-task query accuracies of :meth:`MetaNAS.evaluate`.

    Attributes
    ----------
    unpruned : tuple of float
        The adapted search network.
    pruned : tuple of float
        The pruned network of the adapted architecture (no retraining).
    finetuned : tuple of float or None
        The pruned network after ``finetune_steps`` SGD steps on the support set.
    genotypes : tuple of Genotype
        The task-adapted architectures.
    """

    unpruned: tuple[float, ...]
    pruned: tuple[float, ...]
    finetuned: tuple[float, ...] | None
    genotypes: tuple[Genotype, ...]

    def summary(self) -> dict[str, dict[str, float]]:
        """``{"pruned" | "pruned_finetuned" | "unpruned": {"mean": ..., "ci95": ...}}`` by
        :func:`mean_ci`, rounded to 4 decimals (``pruned_finetuned`` is NaN without fine-tuning)."""
        scores = {"pruned": self.pruned, "pruned_finetuned": self.finetuned or (), "unpruned": self.unpruned}
        out = {}
        for name, values in scores.items():
            mean, half = mean_ci(list(values))
            out[name] = {"mean": round(mean, 4), "ci95": round(half, 4)}
        return out


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% normal-approximation half-width (NaN for fewer than 2 values; both
    NaN for none)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(var / n)
