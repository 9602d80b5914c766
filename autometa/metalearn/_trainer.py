"""The meta-training run of ``autometa metalearn``, for Python callers too: a learner and its
task families built from names, chunks of meta-iterations with a checkpoint, a metrics log
and a validation score after each, then held-out test scores with 95% confidence intervals.

An output directory holds ``checkpoint.pt`` (resumed by a later call with the same
settings, refused with :class:`~autometa.exceptions.ResumeError` otherwise),
``metrics.csv`` (one row per chunk), ``init.pt`` (the learned initialization, a
:meth:`BaseMetaLearner.state_dict`) and ``results.json`` (:meth:`MetaLearnResult.to_dict`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autometa.checkpoint import Checkpoint
from autometa.exceptions import InputError
from autometa.metalearn._algorithms import (
    ANIL,
    FOMAML,
    MAML,
    BaseMetaLearner,
    MetaSGD,
    ProtoNet,
    Reptile,
    TaskDistribution,
)
from autometa.metalearn._bayesian import ALPaCA
from autometa.metalearn._blackbox import SNAIL
from autometa.metalearn._episodes import GlyphTasks, OmniglotTasks
from autometa.metalearn._functional import LossFn, accuracy, cross_entropy_loss, make_convnet, make_mlp, mse_loss
from autometa.metalearn._implicit import IMAML
from autometa.metalearn._metric import MatchingNet, RelationNet
from autometa.metalearn._tasks import HarmonicTasks, LineTasks, SinusoidTasks

__all__ = ["ALGORITHMS", "TASK_FAMILIES", "MetaLearnProgress", "MetaLearnResult", "fit_meta"]

logger = logging.getLogger("autometa.metalearn")

_LEARNERS: dict[str, type[BaseMetaLearner]] = {
    "maml": MAML, "fomaml": FOMAML, "reptile": Reptile, "anil": ANIL, "metasgd": MetaSGD, "protonet": ProtoNet,
    "imaml": IMAML, "snail": SNAIL, "matching": MatchingNet, "relation": RelationNet, "alpaca": ALPaCA,
}
_CLASSIFIERS = ("protonet", "matching", "relation")  # image tasks only
_REGRESSORS = ("alpaca",)  # regression tasks only
_NO_INNER_LOOP = ("protonet", "matching", "relation", "snail", "alpaca")  # adaptation is one forward pass
_IMAML_CG_STEPS = 5


def _imaml_regularization(images: bool) -> float:
    """iMAML's proximal strength: 1.0 on the conv net (4.0 scored 0.19 against 0.49 on
    5-way 1-shot glyphs), 10.0 on the regression MLPs (1.0 learned nothing on sinusoid:
    test MSE 4.09; 10.0 gave 1.87, 100.0 gave 2.85; experiments/bench_metalearn_seeds.py)."""
    return 1.0 if images else 10.0


_REGRESSION: dict[str, type[SinusoidTasks] | type[HarmonicTasks] | type[LineTasks]] = {
    "sinusoid": SinusoidTasks, "harmonic": HarmonicTasks, "line": LineTasks,
}
_IMAGES = ("glyphs", "omniglot")

ALGORITHMS: tuple[str, ...] = tuple(_LEARNERS)
"""The names :func:`fit_meta` takes for ``algo``."""

TASK_FAMILIES: tuple[str, ...] = (*_REGRESSION, *_IMAGES)
"""The names :func:`fit_meta` takes for ``tasks``: regression families, then N-way K-shot images."""

_VAL_TASKS, _VAL_SEED_OFFSET, _TEST_SEED = 25, 77, 2017


@dataclass(frozen=True)
class MetaLearnProgress:
    """What a callback of :func:`fit_meta` learns.

    Callbacks are called once before the first meta-iteration of the call (``iteration``
    is then the count resumed from the checkpoint, the scores are None), then after every
    chunk of meta-iterations, once its checkpoint and metrics row are written.

    Attributes
    ----------
    iteration : int
        Meta-iterations done (resumed ones included).
    iterations : int
        The total the call trains to.
    seconds : float
        Time since the call started training.
    train_query_loss : float or None
        Mean query loss after adaptation over the chunk's meta-batches.
    val_score : float or None
        Mean validation score (MSE or accuracy, see ``metric``) on the fixed validation tasks.
    metric : str
        "mse" or "accuracy".
    """

    iteration: int
    iterations: int
    seconds: float
    train_query_loss: float | None
    val_score: float | None
    metric: str


@dataclass(frozen=True)
class MetaLearnResult:
    """The outcome of :func:`fit_meta`.

    Attributes
    ----------
    learner : BaseMetaLearner
        The meta-trained learner (its model holds the learned initialization).
    settings : dict
        What a checkpoint must match to be resumed: the algorithm, task family and their
        resolved settings (iterations, device and the test size are not among them).
    iterations : int
        Meta-iterations done, resumed ones included.
    resumed_from : int
        Meta-iterations read from the checkpoint (0 for a fresh run).
    seconds : float
        Time of this call from the start of training, test scoring included.
    device : str
    metric : str
        "mse" (regression) or "accuracy" (images).
    test : dict of str to dict of str to float
        ``{"after_<k>_steps": {"mean": ..., "ci95": ...}}``, rounded to 4 decimals: the
        test score after ``k`` adaptation steps and the half-width of its 95% normal
        confidence interval over the test tasks (``after_0_steps`` only, for protonet).
    test_tasks : int
    test_split_classes : int or None
        Classes of the test split (images).
    out_dir : Path or None
    calibration : dict of str to dict of str to float, optional
        The Bayesian learner's (alpaca) predictive calibration on the test tasks:
        ``{"nll": {"mean", "ci95"}, "coverage90": {"mean", "ci95"}}``, the query negative
        log-likelihood and the fraction of query targets inside the central 90% predictive
        interval (0.9 when calibrated); None for the other learners.
    """

    learner: BaseMetaLearner
    settings: dict[str, Any]
    iterations: int
    resumed_from: int
    seconds: float
    device: str
    metric: str
    test: dict[str, dict[str, float]]
    test_tasks: int
    test_split_classes: int | None = None
    out_dir: Path | None = None
    calibration: dict[str, dict[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The content of ``results.json``."""
        results: dict[str, Any] = {
            "settings": self.settings, "iterations": self.iterations, "train_seconds_this_call": self.seconds,
            "device": self.device, "test_tasks": self.test_tasks, f"test_{self.metric}": self.test,
        }
        if self.test_split_classes is not None:
            results["test_split_classes"] = self.test_split_classes
        if self.calibration is not None:
            results["test_calibration"] = self.calibration
        return results


@dataclass(frozen=True)
class _Run:
    """The resolved pieces of one run."""

    learner: BaseMetaLearner
    train: TaskDistribution
    val: TaskDistribution
    test: Any  # a TaskDistribution; the image ones also have n_classes
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    metric_name: str
    images: bool
    settings: dict[str, Any]
    steps: int | None  # adaptation steps scored; None for protonet
    test_tasks: int
    meta_batch: int


def fit_meta(
    algo: str = "maml",
    tasks: str = "sinusoid",
    *,
    iterations: int = 2000,
    ways: int = 5,
    shots: int | None = None,
    queries: int | None = None,
    meta_batch: int | None = None,
    inner_steps: int | None = None,
    inner_lr: float | None = None,
    outer_lr: float = 1e-3,
    width: int = 32,
    full_context: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    test_tasks: int | None = None,
    device: str = "cpu",
    amp: bool = False,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    eval_every: int | None = None,
    callbacks: Sequence[Callable[[MetaLearnProgress], None]] = (),
) -> MetaLearnResult:
    """Meta-learn an initialization, resumably, and score it on held-out tasks.

    Regression families meta-learn a 2-layer MLP of 40 units (Finn et al. 2017); image
    episodes a 4-block convnet (the embedding network of the metric and black-box
    learners, which add their own layers). The outer optimizer is Adam. Training runs in chunks of
    ``eval_every`` meta-iterations; after each, the checkpoint and a ``metrics.csv`` row
    are written (with ``out_dir``) and the learner is scored on 25 fixed validation
    tasks. At the end the learner is scored on ``test_tasks`` fixed held-out tasks.

    Parameters
    ----------
    algo : str
        One of :data:`ALGORITHMS`: maml, fomaml, reptile, anil, metasgd, protonet, imaml,
        snail, matching, relation, alpaca. protonet, matching and relation classify (image
        tasks only); alpaca, the Bayesian learner, regresses (regression tasks only) and
        also reports its predictive calibration. imaml uses 5 conjugate-gradient steps and
        proximal strength 1.0 on images, 10.0 on regression (at 1.0 the sinusoid MLP's
        ``I + H / lambda`` is far from positive definite and iMAML learns nothing:
        experiments/bench_metalearn_seeds.py).
    tasks : str
        One of :data:`TASK_FAMILIES`: sinusoid, harmonic, line (regression) or glyphs,
        omniglot (N-way K-shot images; omniglot needs ``data_dir``).
    iterations : int
        Meta-iterations (outer updates) in total; a resumed run trains up to this count.
    ways : int
        Classes per episode (images).
    shots : int, optional
        Support points per task (regression; default 10) or images per class (default 1).
    queries : int, optional
        Query points per task (regression; default ``shots``) or images per class (default 15).
    meta_batch : int, optional
        Tasks per meta-batch (default 25 for regression, 8 for images).
    inner_steps : int, optional
        Inner SGD steps per task (default 1; 5 for reptile, anil and imaml); the learners
        without an inner loop (protonet, snail, matching, relation, alpaca) ignore it.
    inner_lr : float, optional
        Inner SGD step size (default 0.01 for regression, 0.4 for images).
    outer_lr : float
        Adam step size of the outer loop.
    width : int
        Channels of each of the 4 conv blocks (images).
    full_context : bool
        Matching Networks with full-context embeddings (matching only).
    data_dir : path-like, optional
        Omniglot root with ``images_background/`` and ``images_evaluation/``.
    test_tasks : int, optional
        Held-out tasks scored at the end (default 1000 for regression, 600 for images).
    device : {"cpu", "cuda"}
    amp : bool
        bfloat16 autocast on CUDA (ignored on CPU).
    seed : int
        Seeds the model's initialization and the meta-batches (a resumed run draws the
        batches an uninterrupted one would have drawn).
    out_dir : path-like, optional
        Where ``checkpoint.pt``, ``metrics.csv``, ``init.pt`` and ``results.json`` go; a
        directory holding a checkpoint of the same settings is resumed. Nothing is
        written without it.
    eval_every : int, optional
        Meta-iterations per chunk (between checkpoints, metrics rows and callbacks); by
        default a twentieth of ``iterations``, between 1 and 500.
    callbacks : sequence of callable
        Each called with a :class:`MetaLearnProgress` before training and after every chunk.

    Returns
    -------
    MetaLearnResult

    Raises
    ------
    InputError
        A parameter is out of range or names no known algorithm, task family or device.
    ResumeError
        ``out_dir`` holds a checkpoint of a run with other settings.

    Examples
    --------
    >>> result = fit_meta("fomaml", "sinusoid", iterations=2000, out_dir="runs/fomaml")  # doctest: +SKIP
    >>> result.test["after_10_steps"]  # test MSE after 10 steps, and its 95% half-width  # doctest: +SKIP
    """
    _check_int("iterations", iterations)
    if eval_every is not None:
        _check_int("eval_every", eval_every)
    run = _build(algo, tasks, ways=ways, shots=shots, queries=queries, meta_batch=meta_batch, inner_steps=inner_steps,
                 inner_lr=inner_lr, outer_lr=outer_lr, width=width, full_context=full_context, data_dir=data_dir,
                 test_tasks=test_tasks, device=device, amp=amp, seed=seed)  # fmt: skip
    chunk = eval_every if eval_every is not None else max(1, min(500, iterations // 20 or 1))
    learner = run.learner
    optimizer = torch.optim.Adam(learner.meta_parameters().values(), lr=outer_lr)
    out = Path(out_dir) if out_dir is not None else None
    checkpoint = Checkpoint(out / "checkpoint.pt", run.settings) if out is not None else None
    done = 0
    state = checkpoint.load(map_location=device) if checkpoint is not None else None
    if state is not None:
        learner.load_state_dict(state["learner"] if "learner" in state else state["model"])
        optimizer.load_state_dict(state["optimizer"])
        done = int(state["iterations"])
        logger.info("resuming at meta-iteration %d of %d from %s", done, iterations, out)
    resumed_from = done
    metrics_path = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        metrics_path = out / "metrics.csv"
        if not metrics_path.is_file() or done == 0:
            metrics_path.write_text(f"iteration,seconds,train_query_loss,val_{run.metric_name}\n")
    t0 = time.perf_counter()
    _notify(callbacks, MetaLearnProgress(done, iterations, 0.0, None, None, run.metric_name))
    val_batch = None
    while done < iterations:
        n = min(chunk, iterations - done)
        hist = learner.meta_train(run.train, iterations=n, meta_batch_size=run.meta_batch,
                                  seed=seed * 1_000_003 + done, optimizer=optimizer)  # fmt: skip
        done += n
        if checkpoint is not None:
            checkpoint.save({"learner": learner.state_dict(), "optimizer": optimizer.state_dict(), "iterations": done})
        if val_batch is None:
            val_batch = run.val.sample(_VAL_TASKS, torch.Generator().manual_seed(seed + _VAL_SEED_OFFSET))
        scores = learner.evaluate(val_batch, steps=None if run.steps is None else (run.steps,), metric=run.metric)
        val = float(next(iter(scores.values())).mean())
        loss = float(np.mean(hist.query_losses))
        seconds = time.perf_counter() - t0
        if metrics_path is not None:
            with metrics_path.open("a") as log:
                log.write(f"{done},{seconds:.2f},{loss:.5f},{val:.5f}\n")
        logger.info("meta-iteration %d/%d: train query loss %.4f, validation %s %.4f",
                    done, iterations, loss, run.metric_name, val)  # fmt: skip
        _notify(callbacks, MetaLearnProgress(done, iterations, seconds, loss, val, run.metric_name))
    test = run.test.sample(run.test_tasks, torch.Generator().manual_seed(_TEST_SEED))
    report_steps = None if run.steps is None else ((0, run.steps, 10) if not run.images else (run.steps,))
    summary: dict[str, dict[str, float]] = {}
    for k, v in sorted(learner.evaluate(test, steps=report_steps, metric=run.metric).items()):
        summary[f"after_{k}_steps"] = _mean_ci(v)
    calibration = None
    if isinstance(learner, ALPaCA):
        calibrated = learner.calibration(test, level=0.9)
        calibration = {"nll": _mean_ci(calibrated["nll"]), "coverage90": _mean_ci(calibrated["coverage"])}
    result = MetaLearnResult(
        learner=learner, settings=run.settings, iterations=done, resumed_from=resumed_from,
        seconds=round(time.perf_counter() - t0, 2), device=str(device), metric=run.metric_name, test=summary,
        test_tasks=run.test_tasks, test_split_classes=run.test.n_classes if run.images else None, out_dir=out,
        calibration=calibration,
    )  # fmt: skip
    if out is not None:
        torch.save(learner.state_dict(), out / "init.pt")
        (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result


def _mean_ci(values: torch.Tensor) -> dict[str, float]:
    """Mean and the half-width of its 95% normal confidence interval, rounded to 4 decimals."""
    half = float(1.96 * values.double().std(unbiased=True) / (len(values) ** 0.5))
    return {"mean": round(float(values.double().mean()), 4), "ci95": round(half, 4)}


def _notify(callbacks: Sequence[Callable[[MetaLearnProgress], None]], progress: MetaLearnProgress) -> None:
    for callback in callbacks:
        callback(progress)


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"The '{name}' parameter of fit_meta must be an int, at least 1; got {value!r}.")


def _build(
    algo: str,
    tasks: str,
    *,
    ways: int,
    shots: int | None,
    queries: int | None,
    meta_batch: int | None,
    inner_steps: int | None,
    inner_lr: float | None,
    outer_lr: float,
    width: int,
    full_context: bool,
    data_dir: str | os.PathLike[str] | None,
    test_tasks: int | None,
    device: str,
    amp: bool,
    seed: int,
) -> _Run:
    """Validate the names, resolve the defaults, build the learner and the task families."""
    if algo not in _LEARNERS:
        raise InputError(f"The 'algo' parameter of fit_meta must be one of {', '.join(ALGORITHMS)}; got {algo!r}.")
    if tasks not in TASK_FAMILIES:
        raise InputError(f"The 'tasks' parameter of fit_meta must be one of {', '.join(TASK_FAMILIES)}; got {tasks!r}.")
    images = tasks in _IMAGES
    if algo in _CLASSIFIERS and not images:
        raise InputError(f"The 'algo' parameter of fit_meta is {algo!r}, which classifies: use tasks 'glyphs' or "
                         f"'omniglot'; got tasks {tasks!r}.")
    if algo in _REGRESSORS and images:
        raise InputError(f"The 'algo' parameter of fit_meta is {algo!r}, which regresses: use tasks "
                         f"{', '.join(repr(t) for t in _REGRESSION)}; got tasks {tasks!r}.")
    if full_context and algo != "matching":
        raise InputError(f"The 'full_context' parameter of fit_meta applies to algo 'matching' only; got algo {algo!r}.")
    if device not in ("cpu", "cuda"):
        raise InputError(f"The 'device' parameter of fit_meta must be 'cpu' or 'cuda'; got {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("The 'device' parameter of fit_meta is 'cuda', but torch sees no CUDA GPU "
                         "(torch.cuda.is_available() is False).")
    if tasks == "omniglot" and data_dir is None:
        raise InputError("The 'data_dir' parameter of fit_meta must name the folder holding images_background/ and "
                         "images_evaluation/ for tasks 'omniglot'; got None.")
    if not outer_lr > 0:
        raise InputError(f"The 'outer_lr' parameter of fit_meta must be > 0; got {outer_lr!r}.")
    shots = shots if shots is not None else (1 if images else 10)
    queries = queries if queries is not None else (15 if images else shots)
    meta_batch = meta_batch if meta_batch is not None else (8 if images else 25)
    inner_steps = inner_steps if inner_steps is not None else (5 if algo in ("reptile", "anil", "imaml") else 1)
    inner_lr = inner_lr if inner_lr is not None else (0.4 if images else 0.01)
    test_tasks = test_tasks if test_tasks is not None else (600 if images else 1000)
    for name, value in (("shots", shots), ("queries", queries), ("meta_batch", meta_batch),
                        ("test_tasks", test_tasks), ("width", width)):  # fmt: skip
        _check_int(name, value)
    settings: dict[str, Any] = {"algo": algo, "tasks": tasks, "shots": shots, "meta_batch": meta_batch,
                                "inner_steps": inner_steps, "inner_lr": inner_lr, "outer_lr": outer_lr, "seed": seed}
    if images:
        settings |= {"ways": ways, "queries": queries, "width": width}
    elif queries != shots:
        settings["queries"] = queries
    if algo == "imaml":
        settings |= {"regularization": _imaml_regularization(images), "cg_steps": _IMAML_CG_STEPS}
    if full_context:
        settings["full_context"] = True
    train: TaskDistribution
    val: TaskDistribution
    test: Any
    loss_fn: LossFn
    if images:
        def episodes(split: str, n_queries: int) -> GlyphTasks | OmniglotTasks:
            if tasks == "glyphs":
                return GlyphTasks(ways=ways, shots=shots, queries=n_queries, split=split)
            return OmniglotTasks(root=str(data_dir), ways=ways, shots=shots, queries=n_queries, split=split)

        train, val, test = episodes("train", queries), episodes("val", queries), episodes("test", 15)
        embeds = algo in _NO_INNER_LOOP
        model = make_convnet(None if embeds else ways, channels=(width,) * 4, seed=seed)
        loss_fn, metric, metric_name = cross_entropy_loss, accuracy, "accuracy"
    else:
        family = _REGRESSION[tasks]
        train = val = family(k_support=shots, k_query=queries)
        test = family(k_support=shots, k_query=100)
        if algo == "snail":
            model = make_mlp(1, (40,), 40, seed=seed)
        elif algo == "alpaca":
            model = make_mlp(1, (40, 40), 32, seed=seed)
        else:
            model = make_mlp(seed=seed)
        loss_fn, metric, metric_name = mse_loss, None, "mse"
    model = model.to(device)
    learner = _make_learner(algo, model, images=images, ways=ways, shots=shots, inner_steps=inner_steps,
                            inner_lr=inner_lr, loss_fn=loss_fn, full_context=full_context, seed=seed, amp=amp)  # fmt: skip
    return _Run(learner=learner, train=train, val=val, test=test, metric=metric, metric_name=metric_name,
                images=images, settings=settings, steps=None if algo in _NO_INNER_LOOP else inner_steps,
                test_tasks=test_tasks, meta_batch=meta_batch)  # fmt: skip


def _make_learner(algo: str, model: torch.nn.Module, *, images: bool, ways: int, shots: int, inner_steps: int,
                  inner_lr: float, loss_fn: LossFn, full_context: bool, seed: int, amp: bool) -> BaseMetaLearner:  # fmt: skip
    """The learner of ``algo`` around ``model`` (the whole network, or the embedding network)."""
    if algo in _NO_INNER_LOOP:
        first = next(model.parameters())
        with torch.no_grad():
            probe = torch.zeros((1, 1, 28, 28) if images else (1, 1), dtype=first.dtype, device=first.device)
            dim = int(model(probe).shape[-1])
    if algo == "protonet":
        return ProtoNet(model, amp=amp)
    if algo == "matching":
        return MatchingNet(model, embedding_dim=dim, full_context=full_context, seed=seed, amp=amp)
    if algo == "relation":
        return RelationNet(model, embedding_dim=dim, seed=seed, amp=amp)
    if algo == "snail":
        return SNAIL(model, embedding_dim=dim, support_size=ways * shots if images else shots,
                     ways=ways if images else None, seed=seed, amp=amp)  # fmt: skip
    if algo == "alpaca":
        return ALPaCA(model, feature_dim=dim, seed=seed, amp=amp)
    if algo == "imaml":
        return IMAML(model, inner_steps=inner_steps, inner_lr=inner_lr, regularization=_imaml_regularization(images),
                     cg_steps=_IMAML_CG_STEPS, loss_fn=loss_fn, amp=amp)  # fmt: skip
    return _LEARNERS[algo](model, inner_steps=inner_steps, inner_lr=inner_lr, loss_fn=loss_fn, amp=amp)
