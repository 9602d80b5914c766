"""One contract for every backend (ask/tell, warm start, unasked results), and each backend
tuning real data."""

from __future__ import annotations

import warnings

import pytest

from autometa import Task, tune
from autometa.optimizers import BACKENDS, make_optimizer
from autometa.spaces import config_key, family_defaults, get_space

KNN7 = {"family": "knn", "knn:n_neighbors": 7, "knn:p": 1, "knn:weights": "distance"}


@pytest.fixture(params=list(BACKENDS))
def backend(request):
    return request.param


def test_initial_configs_come_first_in_order(backend):
    cs = get_space("binary", seed=0)
    warm = [KNN7] + [dict(c) for c in family_defaults(cs)[:2]]
    opt = make_optimizer(backend, cs, seed=0, initial_configs=warm)
    asked = []
    for _ in range(3):
        c = opt.ask()
        asked.append(config_key(c))
        opt.tell(c, 0.0)
    assert asked == [config_key(c) for c in warm]


def test_proposals_are_valid_configurations_and_learn_from_tells(backend):
    cs = get_space("binary", seed=0)
    opt = make_optimizer(backend, cs, seed=3)
    seen = set()
    for i in range(12):
        c = opt.ask()
        c.check_valid_configuration()  # active values only, inside their ranges
        seen.add(c["family"])
        loss = -1.0 if c["family"] == "linear" else 0.0
        opt.tell(c, loss, ok=i != 4)  # one failed trial among them
    assert len(seen) >= 2  # it explores families


def test_results_of_unasked_configs_can_be_told(backend):
    """Resuming: past results go in before the first ask, and the warm start skips nothing else."""
    cs = get_space("binary", seed=0)
    opt = make_optimizer(backend, cs, seed=0, initial_configs=[KNN7])
    opt.tell_many([(dict(family_defaults(cs)[3]), -0.7, True), (dict(family_defaults(cs)[4]), 0.0, False)])
    first = opt.ask()
    first.check_valid_configuration()


def test_unknown_backend():
    from autometa import InputError

    with pytest.raises(InputError, match="Unknown backend 'hyperopt'"):
        make_optimizer("hyperopt", get_space("binary"))


@pytest.mark.parametrize("name", list(BACKENDS))
def test_each_backend_tunes_real_data(name, breast_cancer):
    task = Task(breast_cancer, label="target", time_budget_s=120, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = tune(task, backend=name, n_trials=10, families=["linear", "knn", "decision_tree"], isolation="none")
    assert result.n_trials == 10 and result.backend == name
    assert result.best_score == max(r.scores["balanced_accuracy"] for r in result.history if r.ok)
    assert result.best_score > 0.93  # breast cancer is easy for a tuned linear model or kNN
    # the family defaults went first
    assert [r.family for r in result.history[:3]] == ["linear", "knn", "decision_tree"]
    assert result.model is not None and result.model.score(task.X, task.y) > 0.9
