"""The combined search space: the family as a top-level choice, each family's
hyperparameters conditional on it (``"<family>:<name>"``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from ConfigSpace import Categorical, Configuration, ConfigurationSpace, EqualsCondition
from ConfigSpace.util import deactivate_inactive_hyperparameters

from autometa.exceptions import InputError
from autometa.spaces._families import FAMILIES

__all__ = [
    "FAMILY_KEY",
    "SPACE_VERSION",
    "config_hash",
    "config_key",
    "config_to_dict",
    "default_initial_configs",
    "default_reason",
    "encode_configs",
    "family_defaults",
    "fixed_design",
    "get_space",
    "in_space",
    "split_config",
]

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
    parts: list[Any] = [fam]
    conditions = []
    for name in names:
        hps = FAMILIES[name].hyperparameters(problem_type)
        by_name = {}
        for hp, _, _ in hps:
            hp.name = f"{name}:{hp.name}"
            by_name[hp.name] = hp
            parts.append(hp)
        for hp, parent, value in hps:
            conditions.append(EqualsCondition(hp, fam if parent is None else by_name[f"{name}:{parent}"],
                                              name if parent is None else value))
    cs.add(*parts, *conditions)  # at once: ConfigSpace rebuilds its condition tree on every add (2 s -> 0.1 s)
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


def config_key(config: Configuration | Mapping[str, Any]) -> str:
    """The canonical JSON of a configuration (active values, sorted keys, compact): equal
    configurations, equal keys. The one identity of a configuration in memory (duplicate
    asks, resume) and, hashed by :func:`config_hash`, in the meta-database."""
    return json.dumps(config_to_dict(config), sort_keys=True, separators=(",", ":"), default=str)


def trial_key(config: Configuration | Mapping[str, Any], budget: float | None = None) -> str:
    """One trial's identity: :func:`config_key`, and below all the rows its row budget
    (successive halving evaluates one configuration at several budgets)."""
    key = config_key(config)
    return key if budget is None or budget >= 1.0 else f"{key}@{budget:.6g}"


def config_hash(config: Configuration | Mapping[str, Any]) -> str:
    """SHA-1 of :func:`config_key`: a configuration's id in the meta-database."""
    return hashlib.sha1(config_key(config).encode()).hexdigest()


def default_initial_configs(space: ConfigurationSpace, task: Any, *, second_defaults: bool = True) -> list[dict[str, Any]]:
    """Each family's default, in the space's order, then the families' second defaults for
    the task's problem type (:class:`~autometa.spaces.Family`'s ``second_defaults``: for
    regression, a slow histogram boosting): the package's default start.

    When the task's metric weighs classes equally (balanced accuracy) and its classes are
    imbalanced (smallest below 80% of the largest), families that can weight classes
    start from ``class_weight="balanced"``: the default that matches the metric.

    Parameters
    ----------
    space : ConfigurationSpace
        An autometa search space (:func:`get_space`).
    task : Task
        Read for its ``problem_type``, ``metric`` and label counts (``task.y``) only.
    second_defaults : bool, default=True
        Add the second defaults (each only where ``space`` holds it: a pruned or boxed
        space may not); ``False`` gives one default per family.
    """
    firsts = [config_to_dict(c) for c in family_defaults(space)]
    configs = list(firsts)
    problem_type = getattr(task, "problem_type", None)
    if second_defaults and problem_type is not None:
        for first in firsts:
            fam = first[FAMILY_KEY]
            extra = FAMILIES[fam].second_defaults.get(str(problem_type))
            if extra is None:
                continue
            values = {**first, **{f"{fam}:{k}": v for k, v in extra[1].items()}}
            # a pruned, boxed or custom space may fix or leave out these values: no second default there
            if in_space(values, space):
                configs.append(config_to_dict(values))
    if getattr(task, "metric", None) == "balanced_accuracy":
        counts = task.y.value_counts()
        if counts.min() < 0.8 * counts.max():
            for c in configs:
                key = f"{c[FAMILY_KEY]}:class_weight"
                if key in c:
                    c[key] = "balanced"
    return configs


def default_reason(config: Mapping[str, Any], problem_type: str | None) -> str:
    """Why :func:`default_initial_configs` holds ``config``: ``"package default of <family>"``,
    or the family's stated reason for its second default."""
    fam = str(config[FAMILY_KEY])
    extra = FAMILIES[fam].second_defaults.get(str(problem_type))
    if extra is not None and all(config.get(f"{fam}:{k}") == v for k, v in extra[1].items()):
        return f"second package default of {fam}: {extra[0]}"
    return f"package default of {fam}"


def encode_configs(space: ConfigurationSpace, configs: Sequence[Mapping[str, Any] | Configuration]) -> np.ndarray:
    """The vector encoding of configurations in ``space`` (``Configuration.get_array()``:
    the representation SMAC's models see; NaN where inactive).

    A mapping is taken to hold active values only, as :func:`config_to_dict` and the
    meta-database give them, and is encoded value by value (about 70 times faster than
    building a ``Configuration``); a key the space does not have raises ``KeyError``.
    """
    hps = list(space.values())
    out = np.full((len(configs), len(hps)), np.nan)
    for i, c in enumerate(configs):
        if isinstance(c, Configuration):
            out[i] = (c if c.config_space is space else deactivate_inactive_hyperparameters(dict(c), space)).get_array()
            continue
        unknown = [k for k in c if k not in space]
        if unknown:
            raise KeyError(f"Hyperparameters {unknown} are not in the search space.")
        for j, hp in enumerate(hps):
            if hp.name in c:
                out[i, j] = hp.to_vector(c[hp.name])
    return out


def in_space(config: Mapping[str, Any], space: ConfigurationSpace) -> bool:
    """Whether ``config`` is a point of ``space`` (a pruned or restricted space drops some)."""
    try:  # ConfigSpace refuses unknown names, illegal values, inactive or missing active ones, forbiddens
        Configuration(space, values=dict(config)).check_valid_configuration()
        return True
    except Exception:  # noqa: BLE001 - any ConfigSpace refusal means: outside the space
        return False


def split_config(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(family, params)`` with the family prefix removed from parameter names."""
    cfg = config_to_dict(config)
    family = str(cfg.get(FAMILY_KEY, ""))
    if family not in FAMILIES:
        raise InputError(f"Configuration has no known family (got {family!r}); choose from: {', '.join(FAMILIES)}.")
    prefix = f"{family}:"
    return family, {k[len(prefix):]: v for k, v in cfg.items() if k.startswith(prefix)}
