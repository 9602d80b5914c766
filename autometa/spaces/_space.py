"""The combined search space: the family as a top-level choice, each family's
hyperparameters conditional on it (``"<family>:<name>"``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from ConfigSpace import Categorical, Configuration, ConfigurationSpace, EqualsCondition
from ConfigSpace.util import deactivate_inactive_hyperparameters

from autometa.exceptions import InputError
from autometa.spaces._families import FAMILIES

__all__ = ["get_space", "family_defaults", "fixed_design", "config_to_dict", "split_config", "FAMILY_KEY", "SPACE_VERSION"]

FAMILY_KEY = "family"
#: Bump when a family's hyperparameters or ranges change: stored evaluations refer to it.
SPACE_VERSION = "1"


def _check_families(families: Iterable[str] | None, problem_type: str) -> list[str]:
    names = [n for n, f in FAMILIES.items() if problem_type in f.problem_types]
    if families is None:
        return names
    chosen = list(dict.fromkeys(families))
    unknown = [f for f in chosen if f not in names]
    if unknown or not chosen:
        raise InputError(
            f"Unknown model famil{'y' if len(unknown) == 1 else 'ies'} {unknown or chosen} for a "
            f"{problem_type} task; choose from: {', '.join(names)}."
        )
    return chosen


def get_space(
    problem_type: str, *, families: Iterable[str] | None = None, seed: int | None = None
) -> ConfigurationSpace:
    """The combined search space of the given families (all by default).

    Hyperparameters are named ``"<family>:<name>"`` and active only when ``family`` takes
    that value; the default configuration is the first family's default
    (histogram gradient boosting unless ``families`` says otherwise).
    """
    names = _check_families(families, problem_type)
    cs = ConfigurationSpace(seed=seed)
    fam = Categorical(FAMILY_KEY, names, default=names[0])
    cs.add(fam)
    for name in names:
        hps = FAMILIES[name].hyperparameters(problem_type)
        by_name = {}
        for hp, _, _ in hps:
            hp.name = f"{name}:{hp.name}"
            by_name[hp.name] = hp
            cs.add(hp)
        for hp, parent, value in hps:
            if parent is None:
                cs.add(EqualsCondition(hp, fam, name))
            else:
                cs.add(EqualsCondition(hp, by_name[f"{name}:{parent}"], value))
    return cs


def family_defaults(space: ConfigurationSpace) -> list[Configuration]:
    """One configuration per family with every hyperparameter at its default, in the
    order of the space's family choices."""
    out = []
    fam = space[FAMILY_KEY]
    for name in fam.choices:  # type: ignore[attr-defined]
        values: dict[str, Any] = {FAMILY_KEY: name}
        prefix = f"{name}:"
        for hp in space.values():
            if hp.name.startswith(prefix):
                values[hp.name] = hp.default_value
        out.append(_complete(space, values))
    return out


def fixed_design(problem_type: str, family: str, *, n: int = 32, seed: int = 0) -> list[dict[str, Any]]:
    """A deterministic design of ``n`` configurations of one family: its default first,
    then ``n - 1`` space-filling points (SMAC3's scrambled Sobol design), duplicates removed.

    The same arguments give the same list on every machine, so a stored evaluation
    matrix and a new task's lookups refer to the same configurations.
    """
    import warnings

    from smac import Scenario
    from smac.initial_design import SobolInitialDesign

    if n < 1:
        raise InputError(f"n must be at least 1; got {n}.")
    space = get_space(problem_type, families=[family], seed=seed)
    default = config_to_dict(family_defaults(space)[0])
    out, seen = [default], {json.dumps(default, sort_keys=True)}
    if n > 1:
        scenario = Scenario(space, n_trials=100 * n, seed=seed, deterministic=True)  # SMAC caps designs at 25% of n_trials
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # twice the points needed: small discrete spaces (kNN) repeat some of them
            points = SobolInitialDesign(scenario, n_configs=2 * n, seed=seed).select_configurations()
        for c in points:
            d = config_to_dict(c)
            key = json.dumps(d, sort_keys=True)
            if key not in seen and len(out) < n:
                seen.add(key)
                out.append(d)
    return out


def _complete(space: ConfigurationSpace, values: Mapping[str, Any]) -> Configuration:
    """Build a configuration from a possibly over-full mapping, keeping active values only."""
    return deactivate_inactive_hyperparameters(dict(values), space)


def config_to_dict(config: Configuration | Mapping[str, Any]) -> dict[str, Any]:
    """A configuration as a JSON-friendly dict of its active values, keys sorted."""
    out = {}
    for k, v in dict(config).items():
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return dict(sorted(out.items()))


def split_config(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(family, params)`` with the family prefix removed from parameter names."""
    cfg = config_to_dict(config)
    family = str(cfg.get(FAMILY_KEY, ""))
    if family not in FAMILIES:
        raise InputError(f"Configuration has no known family (got {family!r}); choose from: {', '.join(FAMILIES)}.")
    prefix = f"{family}:"
    return family, {k[len(prefix):]: v for k, v in cfg.items() if k.startswith(prefix)}
