"""autometa.metalearn: task sampler, MAML / FOMAML / Reptile meta-gradients (against finite
differences, hand computations and the per-task loop), the adapter, and a short sinusoid run."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from autometa.exceptions import AutometaError, InputError  # noqa: E402
from autometa.extras import MissingDependencyError  # noqa: E402
from autometa.metalearn import (  # noqa: E402
    FOMAML,
    MAML,
    AdaptedModel,
    Reptile,
    SinusoidTasks,
    TaskBatch,
    adapt,
    evaluate_adaptation,
    make_mlp,
    mse_loss,
)

ALGORITHMS = [MAML, FOMAML, Reptile]



def make_batch(n_tasks: int = 4, *, seed: int = 0, k: int = 10, dtype: torch.dtype = torch.float64) -> TaskBatch:
    return SinusoidTasks(k_support=k).sample(n_tasks, torch.Generator().manual_seed(seed), dtype=dtype)


def make_linear(w: float = 0.5, b: float = -0.3) -> nn.Linear:
    model = nn.Linear(1, 1, dtype=torch.float64)
    with torch.no_grad():
        model.weight.fill_(w)
        model.bias.fill_(b)
    return model


def make_tanh_net(seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1)).double()


# --- optional dependency --------------------------------------------------------------


def test_import_without_torch_raises_autometa_error_with_hint(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("autometa.metalearn")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" fail
    with pytest.raises(AutometaError, match=r"autometa\.metalearn needs torch.*pip install torch==2\.13\.0") as info:
        import autometa.metalearn  # noqa: F401
    assert isinstance(info.value, MissingDependencyError) and isinstance(info.value, ImportError)


@pytest.mark.slow  # a fresh interpreter imports scikit-learn and friends: 1.5-3 s
def test_importing_autometa_does_not_import_torch():
    code = "import sys, autometa, autometa.checkpoint, autometa.extras; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- tasks ----------------------------------------------------------------------------


def test_sinusoid_tasks_shapes_ranges_and_formula():
    tasks = SinusoidTasks(k_support=10, k_query=7)
    batch, amplitude, phase = tasks.sample_with_params(50, torch.Generator().manual_seed(3))
    assert batch.support_x.shape == batch.support_y.shape == (50, 10, 1)
    assert batch.query_x.shape == batch.query_y.shape == (50, 7, 1)
    assert batch.support_x.dtype == torch.float32 and len(batch) == 50
    assert float(amplitude.min()) >= 0.1 and float(amplitude.max()) <= 5.0
    assert float(phase.min()) >= 0.0 and float(phase.max()) <= math.pi
    assert float(batch.support_x.abs().max()) <= 5.0 and float(batch.query_x.abs().max()) <= 5.0
    expected = amplitude.view(-1, 1, 1) * torch.sin(batch.query_x - phase.view(-1, 1, 1))
    torch.testing.assert_close(batch.query_y, expected)


def test_sinusoid_tasks_are_seeded_by_the_generator():
    tasks = SinusoidTasks()
    a = tasks.sample(5, torch.Generator().manual_seed(1))
    b = tasks.sample(5, torch.Generator().manual_seed(1))
    c = tasks.sample(5, torch.Generator().manual_seed(2))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    assert not torch.equal(a.support_x, c.support_x)
    assert tasks.k_query is None and a.query_x.shape == (5, 10, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"k_support": 0}, "k_support"), ({"k_query": 0}, "k_query"), ({"x_range": (5.0, -5.0)}, "x_range")],
)
def test_sinusoid_tasks_reject_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        SinusoidTasks(**kwargs)


def test_task_batch_rejects_mismatched_tensors():
    x = torch.zeros(3, 5, 1)
    with pytest.raises(InputError, match="query_y"):
        TaskBatch(x, x, x, torch.zeros(2, 5, 1))


# --- meta-gradients -------------------------------------------------------------------


@pytest.mark.parametrize("vectorize", [True, False])
def test_maml_meta_gradient_equals_finite_differences(vectorize):
    model = make_tanh_net()
    batch = make_batch(3, seed=1, k=5)
    steps, lr = 2, 0.1
    learner = MAML(model, inner_steps=steps, inner_lr=lr, vectorize=vectorize)
    grads = learner.meta_gradient(batch).grads
    params = {name: p.detach().clone() for name, p in model.named_parameters()}

    def objective(p: dict[str, torch.Tensor]) -> float:
        return float(evaluate_adaptation(model, batch, steps=(steps,), lr=lr, params=p)[steps].mean())

    eps = 1e-6
    for name, value in params.items():
        numeric = torch.zeros_like(value)
        for i in range(value.numel()):
            plus, minus = dict(params), dict(params)
            plus[name] = (
                value.clone()
                .view(-1)
                .index_add(0, torch.tensor([i]), torch.tensor([eps], dtype=value.dtype))
                .view_as(value)
            )
            minus[name] = (
                value.clone()
                .view(-1)
                .index_add(0, torch.tensor([i]), torch.tensor([-eps], dtype=value.dtype))
                .view_as(value)
            )
            numeric.view(-1)[i] = (objective(plus) - objective(minus)) / (2 * eps)
        torch.testing.assert_close(grads[name], numeric, rtol=1e-6, atol=1e-8)
    # the second-order terms matter here, so a first-order gradient would fail this test
    first_order = FOMAML(model, inner_steps=steps, inner_lr=lr).meta_gradient(batch).grads
    assert max(float((first_order[n] - grads[n]).abs().max()) for n in grads) > 1e-3


def _hand_sgd(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float):
    """SGD on the MSE of y ~ w x + b, written out: d/dw = 2 mean(r x), d/db = 2 mean(r)."""
    for _ in range(steps):
        r = w * x + b - y
        w, b = w - lr * 2 * (r * x).mean(), b - lr * 2 * r.mean()
    return w, b


@pytest.mark.parametrize("vectorize", [True, False])
@pytest.mark.parametrize("steps", [1, 3])
def test_fomaml_and_reptile_equal_hand_computed_updates_on_a_linear_model(vectorize, steps):
    lr, w0, b0 = 0.05, 0.5, -0.3
    batch = make_batch(4, seed=2)
    fomaml = FOMAML(make_linear(w0, b0), inner_steps=steps, inner_lr=lr, vectorize=vectorize).meta_gradient(batch)
    reptile = Reptile(make_linear(w0, b0), inner_steps=steps, inner_lr=lr, vectorize=vectorize).meta_gradient(batch)
    fo_w, fo_b, rep_w, rep_b, losses = [], [], [], [], []
    for i in range(len(batch)):
        w0_, b0_ = torch.tensor(w0, dtype=torch.float64), torch.tensor(b0, dtype=torch.float64)
        w, b = _hand_sgd(w0_, b0_, batch.support_x[i], batch.support_y[i], steps, lr)
        rq = w * batch.query_x[i] + b - batch.query_y[i]
        fo_w.append(2 * (rq * batch.query_x[i]).mean())
        fo_b.append(2 * rq.mean())
        rep_w.append(w0_ - w)
        rep_b.append(b0_ - b)
        losses.append((rq**2).mean())
    mean = lambda values: torch.stack(values).mean()  # noqa: E731
    torch.testing.assert_close(fomaml.grads["weight"], mean(fo_w).view(1, 1))
    torch.testing.assert_close(fomaml.grads["bias"], mean(fo_b).view(1))
    torch.testing.assert_close(reptile.grads["weight"], mean(rep_w).view(1, 1))
    torch.testing.assert_close(reptile.grads["bias"], mean(rep_b).view(1))
    assert fomaml.query_loss == pytest.approx(float(mean(losses)), rel=1e-12)
    assert reptile.query_loss == pytest.approx(float(mean(losses)), rel=1e-12)


def test_reptile_with_outer_sgd_moves_toward_the_mean_adapted_parameters():
    epsilon, lr, steps = 0.25, 0.05, 3
    batch = make_batch(4, seed=3)
    learner = Reptile(make_linear(), inner_steps=steps, inner_lr=lr)
    learner.meta_step(batch, torch.optim.SGD(learner.model.parameters(), lr=epsilon))
    adapted = [_hand_sgd(torch.tensor(0.5, dtype=torch.float64), torch.tensor(-0.3, dtype=torch.float64),
                         batch.support_x[i], batch.support_y[i], steps, lr) for i in range(len(batch))]  # fmt: skip
    w_mean = torch.stack([w for w, _ in adapted]).mean()
    b_mean = torch.stack([b for _, b in adapted]).mean()
    assert float(learner.model.weight.detach()) == pytest.approx(float(0.5 + epsilon * (w_mean - 0.5)), rel=1e-12)
    assert float(learner.model.bias.detach()) == pytest.approx(float(-0.3 + epsilon * (b_mean + 0.3)), rel=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_vmap_path_equals_per_task_loop(algorithm):
    batch = make_batch(5, seed=4)
    model = make_mlp(seed=1, dtype=torch.float64)
    vmapped = algorithm(model, inner_steps=3, inner_lr=0.01, vectorize=True).meta_gradient(batch)
    looped = algorithm(model, inner_steps=3, inner_lr=0.01, vectorize=False).meta_gradient(batch)
    assert vmapped.grads.keys() == looped.grads.keys() == dict(model.named_parameters()).keys()
    for name in vmapped.grads:
        torch.testing.assert_close(vmapped.grads[name], looped.grads[name], rtol=1e-10, atol=1e-12)
    assert vmapped.query_loss == pytest.approx(looped.query_loss, rel=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_meta_train_is_seeded_and_path_independent(algorithm):
    runs = []
    for vectorize in (True, True, False):
        learner = algorithm(make_mlp(seed=0, dtype=torch.float64), inner_steps=2, vectorize=vectorize)
        history = learner.meta_train(SinusoidTasks(), iterations=3, meta_batch_size=4, seed=5)
        runs.append((history, torch.cat([p.detach().view(-1) for p in learner.model.parameters()])))
    assert runs[0][0].iterations == 3 and runs[0][0].meta_batch_size == 4 and runs[0][0].tasks_per_second > 0
    assert runs[0][0].query_losses == runs[1][0].query_losses
    torch.testing.assert_close(runs[0][1], runs[2][1], rtol=1e-9, atol=1e-12)
    assert not torch.equal(
        runs[0][1], torch.cat([p.detach().view(-1) for p in make_mlp(seed=0, dtype=torch.float64).parameters()])
    )


def test_meta_gradient_does_not_change_the_model():
    model = make_mlp(seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    MAML(model).meta_gradient(make_batch(2, dtype=torch.float32))
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"inner_steps": 0}, "inner_steps"), ({"inner_lr": 0.0}, "lr"), ({"inner_steps": 1.5}, "steps")],
)
def test_learners_reject_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        MAML(make_mlp(), **kwargs)


def test_learner_rejects_a_non_module():
    with pytest.raises(InputError, match="torch.nn.Module"):
        FOMAML(lambda x: x)  # type: ignore[arg-type]


# --- adapter --------------------------------------------------------------------------


def test_adapt_equals_hand_computed_sgd_and_leaves_the_model_alone():
    batch = make_batch(1, seed=6)
    model = make_linear()
    adapted = adapt(model, batch.support_x[0], batch.support_y[0], steps=3, lr=0.05)
    w, b = _hand_sgd(torch.tensor(0.5, dtype=torch.float64), torch.tensor(-0.3, dtype=torch.float64),
                     batch.support_x[0], batch.support_y[0], 3, 0.05)  # fmt: skip
    assert isinstance(adapted, AdaptedModel)
    assert float(adapted.params["weight"]) == pytest.approx(float(w), rel=1e-12)
    assert float(adapted.params["bias"]) == pytest.approx(float(b), rel=1e-12)
    torch.testing.assert_close(adapted(batch.query_x[0]), w * batch.query_x[0] + b)
    assert float(model.weight.detach()) == 0.5 and float(model.bias.detach()) == -0.3
    assert not adapted(batch.query_x[0]).requires_grad


def test_adapt_zero_steps_and_explicit_params():
    batch = make_batch(1, seed=7)
    model = make_mlp(seed=0, dtype=torch.float64)
    x = batch.query_x[0]
    torch.testing.assert_close(adapt(model, batch.support_x[0], batch.support_y[0], steps=0)(x), model(x).detach())
    other = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    assert torch.equal(
        adapt(model, batch.support_x[0], batch.support_y[0], steps=0, params=other)(x), torch.zeros_like(x)
    )
    with pytest.raises(InputError, match="steps"):
        adapt(model, batch.support_x[0], batch.support_y[0], steps=-1)
    with pytest.raises(InputError, match="support_y"):
        adapt(model, batch.support_x[0], batch.support_y[0][:3])


def test_adapt_agrees_with_batched_evaluation_and_learner_adapt():
    batch = make_batch(3, seed=8)
    model = make_mlp(seed=2, dtype=torch.float64)
    losses = evaluate_adaptation(model, batch, steps=(0, 1, 5), lr=0.01)
    assert set(losses) == {0, 1, 5} and losses[5].shape == (3,)
    for i in range(len(batch)):
        for steps in (0, 1, 5):
            predictor = adapt(model, batch.support_x[i], batch.support_y[i], steps=steps, lr=0.01)
            loss = mse_loss(predictor(batch.query_x[i]), batch.query_y[i])
            assert float(losses[steps][i]) == pytest.approx(float(loss), rel=1e-10)
    learner = MAML(model, inner_steps=5, inner_lr=0.01)
    via_learner = learner.adapt(batch.support_x[0], batch.support_y[0])
    assert float(mse_loss(via_learner(batch.query_x[0]), batch.query_y[0])) == pytest.approx(
        float(losses[5][0]), rel=1e-10
    )


# --- a short sinusoid run -------------------------------------------------------------


def _pretrained(iterations: int) -> nn.Module:
    """The baseline of Finn et al.: one network regressed on all tasks pooled."""
    model = make_mlp(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(iterations):
        batch = SinusoidTasks().sample(25, generator)
        x, y = torch.cat([batch.support_x, batch.query_x], 1), torch.cat([batch.support_y, batch.query_y], 1)
        optimizer.zero_grad()
        mse_loss(model(x), y).backward()
        optimizer.step()
    return model


def _short_run_beats_baselines(learner, iterations: int) -> None:
    test = SinusoidTasks(k_support=10, k_query=50).sample(200, torch.Generator().manual_seed(123))
    learner.meta_train(SinusoidTasks(k_support=10), iterations=iterations, meta_batch_size=25, outer_lr=1e-3, seed=0)
    meta = evaluate_adaptation(learner.model, test, steps=(0, 1, 10), lr=0.01)
    pretrained = evaluate_adaptation(_pretrained(iterations), test, steps=(1, 10), lr=0.01)
    for steps in (1, 10):
        assert float(meta[steps].mean()) < float(meta[0].mean()) - 0.2  # adaptation helps
        assert float(meta[steps].mean()) < float(pretrained[steps].mean()) - 0.1  # and beats pretraining


@pytest.mark.slow  # about 2 s of CPU (300 meta-iterations + 300 pretraining steps)
def test_short_maml_sinusoid_run_beats_zero_shot_and_pretrained():
    _short_run_beats_baselines(MAML(make_mlp(seed=0), inner_steps=1, inner_lr=0.01), iterations=300)


@pytest.mark.slow
@pytest.mark.parametrize(("algorithm", "inner_steps"), [(FOMAML, 1), (Reptile, 5)])
def test_short_first_order_sinusoid_runs_beat_zero_shot_and_pretrained(algorithm, inner_steps):
    _short_run_beats_baselines(algorithm(make_mlp(seed=0), inner_steps=inner_steps, inner_lr=0.01), iterations=500)
