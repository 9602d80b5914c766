"""The learners of issue 19: implicit MAML, SNAIL, Matching and Relation Networks and the
Bayesian ALPaCA — exactness checks (finite differences, closed forms, vmap against the
per-task loop) and short real runs that must beat chance or a trivial predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_metalearn_algorithms import clusters  # noqa: E402

from autometa.exceptions import InputError  # noqa: E402
from autometa.metalearn import (  # noqa: E402
    IMAML,
    MAML,
    SNAIL,
    ALPaCA,
    MatchingNet,
    RelationNet,
    SinusoidTasks,
    StudentTPredictor,
    TaskBatch,
    accuracy,
    conjugate_gradient,
    cross_entropy_loss,
    make_convnet,
    make_mlp,
    mse_loss,
)


def sinusoids(n_tasks: int = 3, *, seed: int = 0, k: int = 5, dtype=torch.float64) -> TaskBatch:
    return SinusoidTasks(k_support=k).sample(n_tasks, torch.Generator().manual_seed(seed), dtype=dtype)


# --- iMAML ----------------------------------------------------------------------------


def test_conjugate_gradient_solves_a_positive_definite_system_in_n_steps():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = {"u": torch.randn(4, generator=g, dtype=torch.float64), "v": torch.randn(2, generator=g, dtype=torch.float64)}

    def apply(x):
        y = a @ torch.cat([x["u"], x["v"]])
        return {"u": y[:4], "v": y[4:]}

    x = conjugate_gradient(apply, b, steps=6)
    torch.testing.assert_close(torch.cat([x["u"], x["v"]]), torch.linalg.solve(a, torch.cat([b["u"], b["v"]])))


def test_imaml_meta_gradient_matches_finite_differences():
    # the implicit gradient is exact at the regularized inner optimum: many inner steps, CG to convergence
    model = make_mlp(hidden=(5,), seed=0, dtype=torch.float64)  # 16 parameters
    learner = IMAML(model, inner_steps=150, inner_lr=0.1, regularization=5.0, cg_steps=16)
    batch = sinusoids(2, seed=3)
    grads = learner.meta_gradient(batch).grads
    theta = learner.state_dict()

    def objective(state):  # the mean query loss after the regularized inner loop (float64, via adapt)
        learner.load_state_dict(state)
        losses = [mse_loss(learner.adapt(batch.support_x[i], batch.support_y[i])(batch.query_x[i]), batch.query_y[i])
                  for i in range(len(batch))]  # fmt: skip
        return float(torch.stack(losses).mean())

    g = torch.Generator().manual_seed(1)
    eps = 1e-5
    for _ in range(2):
        direction = {n: torch.randn(v.shape, generator=g, dtype=v.dtype) for n, v in theta.items()}
        plus = objective({n: v + eps * direction[n] for n, v in theta.items()})
        minus = objective({n: v - eps * direction[n] for n, v in theta.items()})
        finite = (plus - minus) / (2 * eps)
        analytic = sum(float((grads[n] * direction[n]).sum()) for n in theta)
        assert analytic == pytest.approx(finite, rel=1e-4, abs=1e-7)
    # and it is not the naive first-order gradient (the correction (I + H / lambda)^-1 matters)
    first_order = IMAML(make_mlp(hidden=(5,), seed=0, dtype=torch.float64), inner_steps=150, inner_lr=0.1,
                        regularization=5.0, cg_steps=1)  # fmt: skip
    assert not torch.allclose(first_order.meta_gradient(batch).grads["0.weight"], grads["0.weight"], rtol=1e-3)


def test_imaml_vmap_equals_the_loop_and_adapt_runs_the_regularized_loop():
    model = make_mlp(hidden=(8,), seed=1, dtype=torch.float64)
    batch = sinusoids(4, seed=2)
    fast = IMAML(model, inner_steps=3, inner_lr=0.02, cg_steps=3).meta_gradient(batch)
    slow = IMAML(model, inner_steps=3, inner_lr=0.02, cg_steps=3, vectorize=False).meta_gradient(batch)
    for name in fast.grads:
        torch.testing.assert_close(fast.grads[name], slow.grads[name])
    assert fast.query_loss == pytest.approx(slow.query_loss)
    def moved(regularization: float) -> float:  # distance of the adapted parameters from theta
        adapted = IMAML(model, inner_steps=3, inner_lr=0.02, regularization=regularization).adapt(
            batch.support_x[0], batch.support_y[0], steps=30)
        return float(sum(((adapted.params[n] - p.detach()) ** 2).sum() for n, p in model.named_parameters()))

    assert 0 < moved(40.0) < 0.2 * moved(0.01)  # the proximal term keeps phi near theta


@pytest.mark.parametrize(("kwargs", "message"), [({"regularization": 0.0}, "'regularization'"),
                                                 ({"cg_steps": 0}, "'cg_steps'")])  # fmt: skip
def test_imaml_refuses_bad_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        IMAML(make_mlp(), **kwargs)


# --- the episodic learners: vmap against the loop ---------------------------------------


def _learners_on_clusters():
    embed = lambda: make_mlp(2, (16,), 8, seed=0, dtype=torch.float64)  # noqa: E731
    return [
        MatchingNet(embed()),
        MatchingNet(embed(), embedding_dim=8, full_context=True, processing_steps=2),
        RelationNet(embed(), embedding_dim=8, hidden=8),
        SNAIL(embed(), embedding_dim=8, support_size=6, ways=3, filters=4, key_size=4, value_size=4),
    ]


@pytest.mark.parametrize("index", range(4), ids=["matching", "matching-fce", "relation", "snail"])
def test_episodic_learners_vmap_equals_the_loop(index):
    learner = _learners_on_clusters()[index]
    batch = clusters(3, ways=3, shots=2, queries=4, seed=1)
    fast = learner.meta_gradient(batch)
    learner.vectorize = False
    slow = learner.meta_gradient(batch)
    assert set(fast.grads) == set(learner.meta_parameters())
    for name in fast.grads:
        torch.testing.assert_close(fast.grads[name], slow.grads[name])
    assert float(sum(g.abs().sum() for g in fast.grads.values())) > 0
    predictor = learner.adapt(batch.support_x[0], batch.support_y[0])
    assert predictor(batch.query_x[0]).shape == (12, 3)


def test_snail_and_alpaca_regress_with_vmap_equal_to_the_loop():
    batch = sinusoids(3, seed=4)
    for learner in (SNAIL(make_mlp(1, (8,), 8, seed=0, dtype=torch.float64), embedding_dim=8, support_size=5),
                    ALPaCA(make_mlp(1, (8,), 6, seed=0, dtype=torch.float64), feature_dim=6)):  # fmt: skip
        fast = learner.meta_gradient(batch)
        learner.vectorize = False
        slow = learner.meta_gradient(batch)
        for name in fast.grads:
            torch.testing.assert_close(fast.grads[name], slow.grads[name])


def test_matching_net_attention_copies_the_label_of_the_closest_support_point():
    class Identity(torch.nn.Module):  # parameter-free stand-in embedding, plus one dummy parameter
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, x):
            return x

    learner = MatchingNet(Identity())
    with torch.no_grad():
        learner.model.log_scale.fill_(math.log(100.0))
    sx = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    sy = torch.tensor([2, 0, 1])
    probs = learner.adapt(sx, sy)(torch.tensor([[0.9, 0.1], [-0.2, 0.98]], dtype=torch.float64)).exp()
    assert probs.argmax(dim=1).tolist() == [2, 0]
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, dtype=torch.float64))


def test_classifiers_refuse_regression_targets_and_alpaca_refuses_labels():
    for learner in _learners_on_clusters()[:2]:
        with pytest.raises(InputError, match="int64 class labels"):
            learner.meta_gradient(sinusoids(2))
    with pytest.raises(InputError, match="regresses"):
        ALPaCA(make_mlp(2, (4,), 4, dtype=torch.float64), feature_dim=4).meta_gradient(clusters(2))
    with pytest.raises(InputError, match="'embedding_dim' parameter of RelationNet"):
        RelationNet(make_mlp(), embedding_dim=0)
    with pytest.raises(InputError, match="'ways' parameter of SNAIL"):
        SNAIL(make_mlp(), embedding_dim=1, support_size=5, ways=1)


# --- ALPaCA: the posterior is exact, the uncertainty calibrated ---------------------------


def test_alpaca_predictive_is_the_normal_inverse_gamma_posterior():
    features = make_mlp(1, (6,), 4, seed=2, dtype=torch.float64)
    learner = ALPaCA(features, feature_dim=4)  # prior: mean 0, precision I, a0 = 2, b0 = 0.2
    batch = sinusoids(1, seed=7, k=8)
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    predictor = learner.adapt(sx, sy)
    dist = predictor.distribution(qx)
    with torch.no_grad():
        phi, phi_q = features(sx).numpy(), features(qx).numpy()
    y = sy.numpy()
    precision = np.eye(4) + phi.T @ phi
    weights = np.linalg.solve(precision, phi.T @ y)  # the ridge solution
    an = 2.0 + len(y) / 2
    bn = 0.2 + 0.5 * float((y.T @ y - weights.T @ precision @ weights).item())
    quad = np.einsum("ij,jk,ik->i", phi_q, np.linalg.inv(precision), phi_q)
    np.testing.assert_allclose(dist.loc.numpy(), phi_q @ weights, rtol=1e-8)
    np.testing.assert_allclose(dist.scale.numpy()[:, 0] ** 2, bn / an * (1 + quad), rtol=1e-8)
    np.testing.assert_allclose(dist.df.numpy(), 2 * an)
    torch.testing.assert_close(predictor(qx), dist.loc)
    assert isinstance(predictor, StudentTPredictor)
    # the noise is inferred per task: the same features on a 10x louder task give 10x wider intervals (nearly)
    loud = learner.adapt(sx, 10 * sy).distribution(qx).scale
    assert 5 < float((loud / dist.scale).median()) <= 10


def test_short_alpaca_sinusoid_run_is_accurate_and_calibrated():
    learner = ALPaCA(make_mlp(1, (40, 40), 32, seed=0), feature_dim=32)
    learner.meta_train(SinusoidTasks(k_support=10), iterations=300, meta_batch_size=8, outer_lr=3e-3, seed=0)
    test = SinusoidTasks(k_support=10, k_query=50).sample(200, torch.Generator().manual_seed(11))
    scores = learner.calibration(test, level=0.9)
    assert float(scores["mse"].mean()) < 1.0  # predicting the mean curve: 3.0
    torch.testing.assert_close(scores["mse"], learner.evaluate(test)[0])
    assert 0.75 < float(scores["coverage"].mean()) < 0.99
    assert math.isfinite(float(scores["nll"].mean()))
    wider = learner.calibration(test, level=0.99)["coverage"].mean()
    assert float(wider) > float(scores["coverage"].mean())


# --- short real glyph runs beat chance ---------------------------------------------------


def _glyph_accuracy(learner, *, iterations: int, meta_batch: int = 4, test_tasks: int = 60) -> float:
    from autometa.metalearn import GlyphTasks

    learner.meta_train(GlyphTasks(ways=5, shots=1, queries=5), iterations=iterations, meta_batch_size=meta_batch,
                       outer_lr=3e-3, seed=0)  # fmt: skip
    test = GlyphTasks(ways=5, shots=1, queries=5, split="test").sample(test_tasks, torch.Generator().manual_seed(1))
    scores = learner.evaluate(test, metric=accuracy)
    return float(scores[max(scores)].mean())


def test_short_matching_glyph_run_beats_chance():
    pytest.importorskip("HersheyFonts")
    assert _glyph_accuracy(MatchingNet(make_convnet(None, channels=(8,) * 4, seed=0)), iterations=15) > 0.4


def test_short_relation_glyph_run_beats_chance():
    pytest.importorskip("HersheyFonts")
    learner = RelationNet(make_convnet(None, channels=(8,) * 4, seed=0), embedding_dim=8)
    assert _glyph_accuracy(learner, iterations=40) > 0.3  # chance: 0.2


def test_short_imaml_glyph_run_beats_chance():
    pytest.importorskip("HersheyFonts")
    learner = IMAML(make_convnet(5, channels=(8,) * 4, seed=0), inner_steps=3, inner_lr=0.4, cg_steps=3,
                    loss_fn=cross_entropy_loss)  # fmt: skip
    assert _glyph_accuracy(learner, iterations=20, test_tasks=40) > 0.3


def test_short_snail_run_learns_to_read_the_support_set():
    # clusters of 2-d points around random centres: only the support set tells which cluster is which class
    class Clusters:
        def sample(self, n, generator, *, dtype=torch.float32):
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            return clusters(n, ways=3, shots=2, queries=4, seed=seed, spread=0.5).to(dtype)

    learner = SNAIL(make_mlp(2, (32,), 32, seed=0), embedding_dim=32, support_size=6, ways=3)
    learner.meta_train(Clusters(), iterations=150, meta_batch_size=8, outer_lr=3e-3, seed=0)
    test = clusters(100, ways=3, shots=2, queries=4, seed=999, spread=0.5).to(torch.float32)
    assert float(learner.evaluate(test, metric=accuracy)[0].mean()) > 0.8  # chance: 1/3


# --- the folded conv-net path ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["MAML", "FOMAML", "Reptile", "ANIL", "MetaSGD", "ProtoNet"])
def test_the_folded_conv_net_path_equals_vmap_and_the_loop(name):
    import autometa.metalearn as ml

    g = torch.Generator().manual_seed(0)
    batch = TaskBatch(torch.rand(3, 6, 1, 12, 12, generator=g, dtype=torch.float64),
                      torch.arange(3).repeat(2).expand(3, -1).contiguous(),
                      torch.rand(3, 9, 1, 12, 12, generator=g, dtype=torch.float64),
                      torch.arange(3).repeat(3).expand(3, -1).contiguous())  # fmt: skip
    steps = {}
    for path in ("fold", "vmap", "loop"):
        kwargs = {"vectorize": path != "loop", "fold": None if path == "fold" else False}
        if name == "ProtoNet":
            learner = ml.ProtoNet(make_convnet(None, channels=(4, 4), image_size=12, seed=1, dtype=torch.float64),
                                  **kwargs)  # fmt: skip
        else:
            learner = getattr(ml, name)(make_convnet(3, channels=(4, 4), image_size=12, seed=1, dtype=torch.float64),
                                        inner_steps=2, inner_lr=0.3, loss_fn=cross_entropy_loss, **kwargs)  # fmt: skip
        assert learner.folds == (path == "fold")
        steps[path] = learner.meta_gradient(batch)
    for other in ("vmap", "loop"):
        for key, value in steps["fold"].grads.items():
            torch.testing.assert_close(value, steps[other].grads[key])
        assert steps["fold"].query_loss == pytest.approx(steps[other].query_loss)


def test_folding_is_refused_where_it_cannot_hold_and_skipped_for_other_losses():
    with pytest.raises(InputError, match="not a foldable conv net"):
        MAML(make_mlp(), fold=True)
    with pytest.raises(InputError, match="no folded path"):
        IMAML(make_convnet(5, channels=(4, 4)), loss_fn=cross_entropy_loss, fold=True)
    bn_tracked = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                     torch.nn.Linear(2 * 26 * 26, 3))  # fmt: skip
    assert not MAML(bn_tracked, loss_fn=cross_entropy_loss).folds  # running statistics: buffers

    def own_loss(logits, target):
        return cross_entropy_loss(logits, target)

    assert not MAML(make_convnet(5, channels=(4, 4)), loss_fn=own_loss).folds  # a loss we cannot vouch is a mean
    assert MAML(make_convnet(5, channels=(4, 4)), loss_fn=own_loss, fold=True).folds


def test_folded_evaluation_scores_what_the_vmapped_adaptation_scores():
    from autometa.metalearn import MetaSGD

    g = torch.Generator().manual_seed(3)
    batch = TaskBatch(torch.rand(4, 6, 1, 12, 12, generator=g, dtype=torch.float64),
                      torch.arange(3).repeat(2).expand(4, -1).contiguous(),
                      torch.rand(4, 9, 1, 12, 12, generator=g, dtype=torch.float64),
                      torch.arange(3).repeat(3).expand(4, -1).contiguous())  # fmt: skip
    for fold in (None, False):
        learner = MetaSGD(make_convnet(3, channels=(4, 4), image_size=12, seed=2, dtype=torch.float64), inner_lr=0.1,
                          loss_fn=cross_entropy_loss, fold=fold)  # fmt: skip
        scores = learner.evaluate(batch, steps=(0, 2))
        if fold is None:
            assert learner.folds
            folded = scores
    for k in (0, 2):
        torch.testing.assert_close(folded[k], scores[k])
    fitted = learner.evaluate(TaskBatch(batch.support_x, batch.support_y, batch.support_x, batch.support_y), steps=(0, 2))
    assert float(fitted[2].mean()) < float(fitted[0].mean())  # the steps fit the support set
