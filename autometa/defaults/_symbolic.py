"""Symbolic defaults: a hyperparameter's default as a formula of the task's meta-features
(``c * NumberOfFeatures ** b``, ``c * NumberOfInstances ** b``), fitted across stored
tasks where it beats the best constant (Gijsbers, Pfisterer, van Rijn, Bischl &
Vanschoren 2021, "Meta-learning for symbolic hyperparameter defaults").

Each stored task's response surface is its fitted surrogate
(:class:`autometa.transfer.TaskSurrogate`, one Gaussian process per family on the
fixed design), so a candidate formula is scored on every task without new fits, as
Gijsbers et al. do. The rest of the configuration stays at the family's learned
default. A candidate's loss on a task is its predicted loss rescaled so that the best
and worst of the task's 32 stored configurations of the family are 0 and 1 (clipped to
[0, 1]), and formulas are compared leave-one-task-out: the one chosen without a task is
scored on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from ConfigSpace import UniformFloatHyperparameter, UniformIntegerHyperparameter

from autometa.exceptions import InputError
from autometa.spaces import get_space

__all__ = ["SymbolicDefault", "symbolic_defaults", "FORMULA_FEATURES"]

#: Meta-features a formula may use (OpenML names, as :func:`autometa.metafeatures.extract`).
FORMULA_FEATURES = ("NumberOfFeatures", "NumberOfInstances")
_EXPONENTS = (-1.0, -0.75, -0.5, -0.25, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class SymbolicDefault:
    """The fitted default of one hyperparameter.

    Attributes
    ----------
    feature : str or None
        Meta-feature of the formula ``coefficient * feature ** exponent``; None for a
        constant (``coefficient``).
    loss_package, loss_constant, loss_symbolic : float
        Mean over stored tasks of the rescaled predicted loss (0 = the task's best stored
        configuration of the family, 1 = its worst) at the package default, the best
        constant and the best formula (either of them chosen without the task scored).
    """

    family: str
    hyperparameter: str
    feature: str | None
    coefficient: float
    exponent: float
    package_default: float
    constant: float
    loss_package: float
    loss_constant: float
    loss_symbolic: float
    n_tasks: int
    lower: float
    upper: float
    integer: bool

    @property
    def formula(self) -> str:
        if self.feature is None:
            return f"{self.coefficient:.4g}"
        return f"{self.coefficient:.4g} * {self.feature} ** {self.exponent:g}"

    @property
    def beats_constant(self) -> bool:
        """Whether the formula has the lower leave-one-task-out loss (a constant never does)."""
        return self.feature is not None and self.loss_symbolic < self.loss_constant

    def value(self, metafeatures: Mapping[str, float]) -> float | int:
        """The default for a task with these meta-features, clipped to the range: the
        formula where it beats the best constant, that constant otherwise."""
        if not self.beats_constant:
            v = self.constant
        else:
            assert self.feature is not None  # beats_constant implies a feature
            x = float(metafeatures.get(self.feature, math.nan))
            if not math.isfinite(x) or x <= 0:
                raise InputError(f"The symbolic default of {self.hyperparameter} needs the meta-feature "
                                 f"{self.feature} (a positive number); got {x!r}.")
            v = self.coefficient * x ** self.exponent
        v = min(max(v, self.lower), self.upper)
        return int(round(v)) if self.integer else float(v)

    def as_row(self) -> dict[str, Any]:
        return {"family": self.family, "hyperparameter": self.hyperparameter, "package default": self.package_default,
                "best constant": round(self.constant, 4), "formula": self.formula,
                "loss package": round(self.loss_package, 4), "loss constant": round(self.loss_constant, 4),
                "loss formula": round(self.loss_symbolic, 4), "formula beats constant": self.beats_constant,
                "tasks": self.n_tasks}


def _candidates(hp: Any, x: np.ndarray, n_coefficients: int) -> tuple[list[tuple[str | None, float, float]], np.ndarray]:
    """Candidate (feature, coefficient, exponent) triples and their values on every task
    (tasks x candidates); ``x`` holds the tasks' formula features (tasks x features)."""
    lo, hi = float(hp.lower), float(hp.upper)
    log = bool(hp.log) or lo > 0 and hi / lo >= 100
    grid = np.geomspace(lo, hi, n_coefficients) if log and lo > 0 else np.linspace(lo, hi, n_coefficients)
    cands: list[tuple[str | None, float, float]] = [(None, float(c), 0.0) for c in grid]
    for j, feat in enumerate(FORMULA_FEATURES):
        med = float(np.median(x[:, j]))
        for b in _EXPONENTS:
            # coefficients that put the median task across the whole range
            for target in grid:
                cands.append((feat, float(target / med ** b), b))
    values = np.empty((x.shape[0], len(cands)))
    for k, (cand_feat, c, b) in enumerate(cands):
        values[:, k] = c if cand_feat is None else c * x[:, FORMULA_FEATURES.index(cand_feat)] ** b
    values = np.clip(values, lo, hi)
    if isinstance(hp, UniformIntegerHyperparameter):
        values = np.round(values)
    return cands, values


def _loto(loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-task-out choice: per task, the candidate with the lowest mean loss over
    the other tasks, and that candidate's loss on the task."""
    totals = loss.sum(axis=0)
    others = (totals[None, :] - loss) / max(len(loss) - 1, 1)
    choice = others.argmin(axis=1)
    return choice, loss[np.arange(len(loss)), choice]


def symbolic_defaults(
    metadb: Any,
    *,
    metric: str,
    problem_type: str,
    families: Sequence[str] | None = None,
    store: Any | None = None,
    n_coefficients: int = 24,
    exclude: Sequence[str] = (),
) -> list[SymbolicDefault]:
    """Fit a symbolic default for every numeric hyperparameter of each family.

    Parameters
    ----------
    metadb : SQLMetaDB
    metric, problem_type : str
    families : sequence of str, optional
        All families of the space by default.
    store : SurrogateStore, optional
        Fitted surrogates (:func:`autometa.transfer.fit_surrogate_store`, cached on disk);
        fitted or loaded here by default.
    exclude : sequence of str
        Stored tasks to leave out (leave-one-task-out studies).
    """
    from autometa.defaults._tunability import tunability
    from autometa.transfer import SpaceLayout, encode_configs, fit_surrogate_store

    if store is None:
        store = fit_surrogate_store(metadb, metric=metric, problem_type=problem_type)
    store = store.subset(exclude)
    kind = "regression" if problem_type == "regression" else "binary"
    space = get_space(kind)
    layout = SpaceLayout(space)
    mf = store.metafeatures
    names = [t for t in store.tasks if t in mf.index and all(f in mf.columns for f in FORMULA_FEATURES)]
    if len(names) < 3:
        raise InputError("Symbolic defaults need at least 3 stored tasks with surrogates and meta-features.")
    x = mf.loc[names, list(FORMULA_FEATURES)].astype(float).clip(lower=1.0).to_numpy()
    learned = {r.family: r.learned_default for r in tunability(metadb, metric=metric, problem_type=problem_type,
                                                                families=list(families) if families else None,
                                                                exclude=exclude)}
    configs = metadb.configurations()
    out = []
    for family, base in learned.items():
        fam_hashes = [h for h in metadb.performance_matrix(metric, family=family).columns if h in configs]
        design = encode_configs(space, [configs[h] for h in fam_hashes])
        z_base = encode_configs(space, [base])[0]
        usable = [t for t in names if family in store.surrogates[t].models]
        if len(usable) < 3:
            continue
        model_of = {t: store.surrogates[t].models[family] for t in usable}
        hp_names = model_of[usable[0]].hp_names
        xu = x[[names.index(t) for t in usable]]
        # each task's best and worst stored configuration of the family, as its surrogate sees them
        span = {}
        for t in usable:
            m = model_of[t]
            pred = m.predict(layout.block(design, family, m.hp_names))[0]
            span[t] = (float(pred.min()), float(pred.max()))
        for full in hp_names:
            name = full.split(":", 1)[1]
            hp = space[full]
            if not isinstance(hp, (UniformFloatHyperparameter, UniformIntegerHyperparameter)) or full not in base:
                continue
            cands, values = _candidates(hp, xu, n_coefficients)
            col = list(space.keys()).index(full)
            loss = np.empty((len(usable), len(cands) + 1))
            pkg = float(hp.default_value)
            for i, t in enumerate(usable):
                m = model_of[t]
                vals = np.append(values[i], pkg)
                Z = np.repeat(z_base[None, :], len(vals), axis=0)
                Z[:, col] = hp.to_vector(vals)
                pred = m.predict(layout.block(Z, family, m.hp_names))[0]
                lo, hi = span[t]
                loss[i] = np.clip((pred - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
            loss_pkg = loss[:, -1]
            loss = loss[:, :-1]
            const = np.array([c[0] is None for c in cands])
            _, loto_const = _loto(loss[:, const])
            _, loto_sym = _loto(loss)
            best = int(loss.mean(axis=0).argmin())
            best_const = int(np.flatnonzero(const)[loss[:, const].mean(axis=0).argmin()])
            feat, coef, expo = cands[best]
            out.append(SymbolicDefault(
                family=family, hyperparameter=name, feature=feat, coefficient=coef, exponent=expo,
                package_default=pkg, constant=cands[best_const][1], loss_package=float(loss_pkg.mean()),
                loss_constant=float(loto_const.mean()), loss_symbolic=float(loto_sym.mean()), n_tasks=len(usable),
                lower=float(hp.lower), upper=float(hp.upper), integer=isinstance(hp, UniformIntegerHyperparameter),
            ))
    if not out:
        raise InputError("No family has enough stored tasks with surrogates to fit symbolic defaults.")
    return out


def symbolic_table(rows: Sequence[SymbolicDefault]) -> pd.DataFrame:
    return pd.DataFrame([r.as_row() for r in rows])
