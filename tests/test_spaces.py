"""Search spaces: structure, ranges, and that every family's sampled pipelines fit real data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ConfigSpace import UniformFloatHyperparameter

from autometa import InputError, Task
from autometa.spaces import FAMILIES, build_pipeline, config_to_dict, family_defaults, get_space, split_config


@pytest.fixture(scope="module")
def credit_regression(credit_small):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(credit_small, label="Amount", problem_type="regression")


def test_combined_space_has_all_families_as_conditional_choice():
    cs = get_space("binary")
    assert set(cs["family"].choices) == set(FAMILIES) and len(FAMILIES) >= 8
    for name in FAMILIES:
        hps = [h for h in cs if h.startswith(f"{name}:")]
        assert hps, name
        for h in hps:  # every family hyperparameter depends on the family choice (directly or via a parent)
            assert cs.parent_conditions_of[h]


def test_ranges_are_wide_and_log_scaled_where_multiplicative():
    cs = get_space("binary")
    assert cs["svm:C"].log and cs["svm:C"].lower <= 1e-3 and cs["svm:C"].upper >= 1e4
    assert cs["linear:C"].log and cs["hist_gradient_boosting:learning_rate"].log
    assert cs["knn:n_neighbors"].upper >= 30  # Probst et al.'s learned k = 30 is inside
    floats = [cs[h] for h in cs if isinstance(cs[h], UniformFloatHyperparameter)]
    assert all(h.lower < h.upper for h in floats)


def test_family_defaults_are_sklearn_defaults():
    defaults = {c["family"]: dict(c) for c in family_defaults(get_space("binary"))}
    assert defaults["hist_gradient_boosting"]["hist_gradient_boosting:learning_rate"] == 0.1
    assert defaults["hist_gradient_boosting"]["hist_gradient_boosting:max_leaf_nodes"] == 31
    assert defaults["random_forest"]["random_forest:n_estimators"] == 100
    assert defaults["knn"]["knn:n_neighbors"] == 5
    assert "linear:l1_ratio" not in defaults["linear"]  # inactive under the l2 default


def test_unknown_family_is_refused():
    with pytest.raises(InputError, match="Unknown model family"):
        get_space("binary", families=["xgboost"])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_fits_and_predicts_real_mixed_data(family, small_task, credit_regression):
    for task in (small_task, credit_regression):
        cs = get_space(task.problem_type, families=[family], seed=1)
        configs = family_defaults(cs) + [cs.sample_configuration()]
        for cfg in configs:
            fam, params = split_config(cfg)
            assert fam == family and all(":" not in k for k in params)
            pipe = build_pipeline(cfg, task.X, task.problem_type, seed=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pipe.fit(task.X.iloc[:400], task.y.iloc[:400])
            pred = pipe.predict(task.X.iloc[400:])
            assert len(pred) == len(task.X) - 400
            if task.is_classification:
                assert set(pred) <= set(task.classes)
            else:
                assert np.isfinite(pred).all()


def test_pipeline_handles_unseen_categories_and_missing_values(small_task):
    cfg = family_defaults(get_space("binary", families=["linear"]))[0]
    pipe = build_pipeline(cfg, small_task.X, "binary").fit(small_task.X, small_task.y)
    new = small_task.X.head(5).copy()
    new["Home"] = new["Home"].cat.add_categories(["castle"])
    new.loc[new.index[0], "Home"] = "castle"
    new.loc[new.index[1], "Income"] = np.nan
    assert len(pipe.predict(new)) == 5


@pytest.mark.parametrize("problem_type", ["binary", "regression"])
def test_fixed_design_is_deterministic_space_filling_and_starts_at_the_default(problem_type):
    from autometa.spaces import fixed_design

    for family in FAMILIES:
        design = fixed_design(problem_type, family, n=32)
        assert len(design) == 32
        assert design == fixed_design(problem_type, family, n=32)  # same on every call and machine
        assert design[0] == dict(family_defaults(get_space(problem_type, families=[family]))[0])
        keys = {tuple(sorted(c.items())) for c in design}
        assert len(keys) == 32
    # space-filling: a log-scaled range is covered across its decades
    cs = np.log10([c["svm:C"] for c in fixed_design(problem_type, "svm", n=32)[1:]])
    assert cs.min() < -1.5 and cs.max() > 2.5 and len(np.unique(np.floor(cs))) >= 6


def test_regression_start_adds_a_slow_boosting_after_every_family_default(small_task, credit_regression):
    from autometa.spaces import default_initial_configs, default_reason, in_space

    space = get_space("regression")
    configs = default_initial_configs(space, credit_regression)
    firsts = [config_to_dict(c) for c in family_defaults(space)]
    assert configs[: len(firsts)] == firsts  # every family's default first, in the space's order
    slow = configs[len(firsts):]
    assert len(slow) == 1 and slow[0]["family"] == "hist_gradient_boosting" and in_space(slow[0], space)
    assert slow[0]["hist_gradient_boosting:max_iter"] == 1000
    assert slow[0]["hist_gradient_boosting:learning_rate"] < firsts[0]["hist_gradient_boosting:learning_rate"]
    assert default_reason(slow[0], "regression").startswith("second package default of hist_gradient_boosting")
    assert default_reason(firsts[0], "regression") == "package default of hist_gradient_boosting"
    assert default_initial_configs(space, credit_regression, second_defaults=False) == firsts
    # classification has no second default, and a space without the family gets none
    assert len(default_initial_configs(get_space("binary"), small_task)) == len(FAMILIES)
    assert default_initial_configs(get_space("regression", families=["linear"]), credit_regression) == [
        config_to_dict(family_defaults(get_space("regression", families=["linear"]))[0])]


def test_second_default_is_left_out_where_a_pruned_or_boxed_space_cannot_hold_it(credit_regression):
    from autometa.spaces import default_initial_configs, in_space
    from autometa.transfer import bounding_box, fix_unimportant

    space = get_space("regression", families=["hist_gradient_boosting", "linear"])
    firsts = default_initial_configs(space, credit_regression, second_defaults=False)
    slow = default_initial_configs(space, credit_regression)[-1]
    assert slow["hist_gradient_boosting:max_iter"] == 1000 and in_space(slow, space)
    values = FAMILIES["hist_gradient_boosting"].second_defaults["regression"][1]
    assert all(slow[f"hist_gradient_boosting:{k}"] == v for k, v in values.items())  # each stated value, none dropped
    importance = {h: (0.0 if h == "hist_gradient_boosting:max_iter" else 1.0) for h in space if ":" in h}
    pruned, fixed = fix_unimportant(space, importance, {"hist_gradient_boosting:max_iter": 36})
    assert fixed == ["hist_gradient_boosting:max_iter"]
    boxed = bounding_box(space, firsts, seed=0)  # around the defaults only: 100 iterations, rate 0.1
    for sub in (pruned, boxed):
        got = default_initial_configs(sub, credit_regression)
        assert all(in_space(c, sub) for c in got)
        assert [c["family"] for c in got] == ["hist_gradient_boosting", "linear"]


def test_boosting_reads_categories_from_the_table_and_falls_back_to_ordinal_codes_beyond_its_bins(small_task):
    """Histogram boosting takes the DataFrame as it is (no float64 copy of the table in
    front of it); a column with more categories than its bins gets the ordinal encoder,
    which groups the rare ones. Both fit the same trees on the same data."""
    cfg = family_defaults(get_space("binary", families=["hist_gradient_boosting"]))[0]
    X, y = small_task.X, small_task.y
    native = build_pipeline(cfg, X, "binary").fit(X, y)
    assert native[0] == "passthrough" and native[-1].categorical_features == "from_dtype"
    wide = X.copy()
    wide["Home"] = wide["Home"].cat.add_categories([f"unused{i}" for i in range(300)])
    ordinal = build_pipeline(cfg, wide, "binary").fit(wide, y)
    assert ordinal[0] != "passthrough" and list(ordinal[-1].categorical_features[:4]) == [True] * 4
    new = X.tail(100).copy()
    new["Home"] = new["Home"].cat.add_categories(["castle"])
    new.loc[new.index[0], "Home"] = "castle"  # unseen: treated as missing by both
    new.loc[new.index[1], "Income"] = np.nan
    np.testing.assert_allclose(native.predict_proba(new), ordinal.predict_proba(new))
    # columns are picked by name, with or without categories: extra and reordered ones are fine
    numeric = X.select_dtypes("number")
    for data in (X, numeric):
        pipe = build_pipeline(cfg, data, "binary").fit(data, y)
        shuffled = data.tail(20)[list(reversed(data.columns))].assign(extra=1.0)
        np.testing.assert_allclose(pipe.predict_proba(shuffled), pipe.predict_proba(data.tail(20)))
