"""Search-space pruning from the meta-database: a bounding box around the best
configurations of similar tasks, and fixing hyperparameters of low importance."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ConfigSpace import (
    CategoricalHyperparameter,
    ConfigurationSpace,
    Constant,
    EqualsCondition,
    InCondition,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)
from ConfigSpace.hyperparameters import Hyperparameter

from autometa.exceptions import InputError
from autometa.spaces import FAMILY_KEY

__all__ = ["bounding_box", "fix_unimportant"]


def _rebuild(space: ConfigurationSpace, replace: Mapping[str, Hyperparameter | None], seed: int | None) -> ConfigurationSpace:
    """A copy of ``space`` with some hyperparameters replaced (``None``: removed, with every
    hyperparameter whose condition can no longer hold)."""
    new: dict[str, Hyperparameter] = {}
    for hp in space.values():
        if hp.name in replace:
            if replace[hp.name] is not None:
                new[hp.name] = replace[hp.name]  # type: ignore[assignment]
        else:
            new[hp.name] = hp
    conds: list[tuple[str, str, list[Any]]] = []
    changed = True
    conditions = list(space.conditions)
    while changed:  # drop children whose parent is gone or cannot take the required value
        changed = False
        conds = []
        for cond in conditions:
            # ConfigSpace types conditions as Condition | Conjunction; this code only handles plain
            # conditions (a Conjunction fails here, as before), so the Conjunction branch is ignored.
            child, parent = cond.child.name, cond.parent.name  # type: ignore[union-attr]
            if child not in new:
                continue
            par = new.get(parent)
            values = list(cond.values) if isinstance(cond, InCondition) else [cond.value]  # type: ignore[union-attr]  # see above
            options = (
                list(par.choices) if isinstance(par, CategoricalHyperparameter)
                else [par.value] if isinstance(par, Constant)
                else list(par.sequence) if isinstance(par, OrdinalHyperparameter)
                else None
            ) if par is not None else []
            alive = [v for v in values if options is None or v in options]
            if not alive:
                del new[child]
                changed = True
                continue
            conds.append((child, parent, alive))
    cs = ConfigurationSpace(seed=seed)
    cs.add(list(new.values()))
    for child, parent, alive in conds:
        if isinstance(new[parent], Constant):  # a condition on a constant always holds
            continue
        cs.add(EqualsCondition(new[child], new[parent], alive[0]) if len(alive) == 1 else InCondition(new[child], new[parent], alive))
    return cs


def _narrowed(hp: Hyperparameter, values: list[Any], margin: float) -> Hyperparameter:
    if isinstance(hp, (UniformFloatHyperparameter, UniformIntegerHyperparameter)):
        if hp.log:
            lo, hi = math.log(min(values)), math.log(max(values))
            pad = margin * max(hi - lo, 1e-9)
            lo, hi = math.exp(lo - pad), math.exp(hi + pad)
        else:
            lo, hi = float(min(values)), float(max(values))
            pad = margin * max(hi - lo, 1e-9)
            lo, hi = lo - pad, hi + pad
        lo, hi = max(lo, hp.lower), min(hi, hp.upper)
        if isinstance(hp, UniformIntegerHyperparameter):
            lo, hi = int(math.floor(lo)), int(math.ceil(hi))
            if lo == hi:
                return Constant(hp.name, int(lo))
            int_default = min(max(int(hp.default_value), lo), hi)
            return UniformIntegerHyperparameter(hp.name, lo, hi, default_value=int_default, log=hp.log)
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            return Constant(hp.name, float(lo))
        default = min(max(float(hp.default_value), lo), hi)
        return UniformFloatHyperparameter(hp.name, lo, hi, default_value=default, log=hp.log)
    if isinstance(hp, CategoricalHyperparameter):
        keep = [c for c in hp.choices if c in set(values)]
        if len(keep) == len(hp.choices):
            return hp
        default = hp.default_value if hp.default_value in keep else keep[0]
        return CategoricalHyperparameter(hp.name, keep, default_value=default)
    return hp


def bounding_box(
    space: ConfigurationSpace, configs: Iterable[Mapping[str, Any]], *, margin: float = 0.1, seed: int | None = None
) -> ConfigurationSpace:
    """The smallest sub-space of ``space`` holding ``configs`` (e.g. the best
    configurations of the nearest stored tasks), as Syne Tune's BoundingBox: numeric
    ranges shrink to the configurations' span (widened by ``margin`` of it, on the log
    scale where the hyperparameter is log-scaled), categorical choices to the values seen,
    and families that none of them uses are removed.

    A hyperparameter that none of the configurations sets (e.g. active only in an
    unused branch) keeps its range.
    """
    configs = [dict(c) for c in configs]
    if not configs:
        raise InputError("A bounding box needs at least one configuration; the meta-database gave none.")
    seen: dict[str, list[Any]] = {}
    for c in configs:
        for k, v in c.items():
            if k in space:
                seen.setdefault(k, []).append(v)
    if not seen.get(FAMILY_KEY):
        raise InputError("The configurations of a bounding box must name their model family.")
    replace: dict[str, Hyperparameter | None] = {}
    for hp in space.values():
        if hp.name in seen:
            replace[hp.name] = _narrowed(hp, seen[hp.name], margin)
    return _rebuild(space, replace, seed)


def fix_unimportant(
    space: ConfigurationSpace,
    importance: Mapping[str, float],
    values: Mapping[str, Any],
    *,
    threshold: float = 0.05,
    keep: Sequence[str] = (),
    seed: int | None = None,
) -> tuple[ConfigurationSpace, list[str]]:
    """Fix every hyperparameter whose importance (e.g. mean fANOVA share across stored
    tasks, :func:`autometa.defaults.hyperparameter_importance`) is below ``threshold`` to
    the value in ``values`` (a learned default; the package default where absent).

    Only leaf hyperparameters (no other hyperparameter depends on them) with a known
    importance are fixed. Returns the new space and the names fixed.
    """
    # Condition | Conjunction in ConfigSpace's types; only plain conditions are handled (as before).
    parents = {c.parent.name for c in space.conditions}  # type: ignore[union-attr]
    replace: dict[str, Hyperparameter | None] = {}
    fixed = []
    for hp in space.values():
        name = hp.name
        if name == FAMILY_KEY or name in parents or name in keep or name not in importance:
            continue
        if float(importance[name]) >= threshold:
            continue
        value = values.get(name, hp.default_value)
        if isinstance(value, float) and isinstance(hp, UniformIntegerHyperparameter):
            value = int(round(value))
        if isinstance(value, (bool, str)) or not isinstance(hp, (UniformFloatHyperparameter, UniformIntegerHyperparameter)):
            replace[name] = CategoricalHyperparameter(name, [value])
        else:
            replace[name] = Constant(name, value)
        fixed.append(name)
    return _rebuild(space, replace, seed), fixed
