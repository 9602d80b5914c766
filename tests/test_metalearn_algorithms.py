"""ANIL, Meta-SGD and Prototypical Networks; the line and harmonic task families; the conv
net; short runs on the glyph benchmark."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from autometa.exceptions import InputError  # noqa: E402
from autometa.metalearn import (  # noqa: E402
    ANIL,
    MAML,
    HarmonicTasks,
    LineTasks,
    MetaSGD,
    ProtoNet,
    PrototypeClassifier,
    SinusoidTasks,
    TaskBatch,
    accuracy,
    cross_entropy_loss,
    evaluate_adaptation,
    make_convnet,
    make_mlp,
)


def sinusoids(n_tasks: int = 4, *, seed: int = 0, k: int = 5) -> TaskBatch:
    return SinusoidTasks(k_support=k).sample(n_tasks, torch.Generator().manual_seed(seed), dtype=torch.float64)


def clusters(n_tasks: int, *, ways: int = 3, shots: int = 2, queries: int = 4, seed: int = 0, spread: float = 0.1):
    """Episodes of 2-d Gaussian clusters around random well-separated centres."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.rand(n_tasks, 1, generator=g) * 6.28 + torch.arange(ways) * (6.28 / ways)
    centres = 3 * torch.stack([angles.cos(), angles.sin()], dim=-1)  # (T, ways, 2)

    def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(ways).repeat_interleave(per_class)
        x = centres[:, y] + spread * torch.randn(n_tasks, ways * per_class, 2, generator=g)
        return x.double(), y.expand(n_tasks, -1).contiguous()

    return TaskBatch(*draw(shots), *draw(queries))


# --- ANIL -----------------------------------------------------------------------------


def test_anil_inner_loop_changes_only_the_head():
    model = make_mlp(seed=0, dtype=torch.float64)  # Linear 0, Linear 2, Linear 4 (the head)
    learner = ANIL(model, inner_steps=3, inner_lr=0.05)
    assert learner.head == {"4.weight", "4.bias"}
    batch = sinusoids(1)
    adapted = learner.adapt(batch.support_x[0], batch.support_y[0])
    for name, p in model.named_parameters():
        changed = not torch.equal(adapted.params[name], p.detach())
        assert changed == name.startswith("4."), name
    # the outer loop still learns the body: its meta-gradient is not zero
    grads = learner.meta_gradient(sinusoids(3)).grads
    assert float(grads["0.weight"].abs().sum()) > 0 and float(grads["4.weight"].abs().sum()) > 0


def test_anil_equals_maml_when_the_head_is_everything():
    model = make_mlp(hidden=(8,), seed=1, dtype=torch.float64)
    batch = sinusoids(3, seed=2)
    everything = [name for name, _ in model.named_parameters()]
    anil = ANIL(model, head=everything, inner_steps=2, inner_lr=0.02).meta_gradient(batch)
    maml = MAML(model, inner_steps=2, inner_lr=0.02).meta_gradient(batch)
    for name in maml.grads:
        torch.testing.assert_close(anil.grads[name], maml.grads[name])


class Wrapped(nn.Module):
    """The same network outside a Sequential: ANIL takes its generic (uncached) path."""

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("vectorize", [True, False])
def test_anil_cached_features_path_equals_the_generic_path(vectorize):
    batch = sinusoids(3, seed=4)
    fast = ANIL(make_mlp(hidden=(8, 8), seed=3, dtype=torch.float64), inner_steps=3, inner_lr=0.05, vectorize=vectorize)
    generic = ANIL(Wrapped(make_mlp(hidden=(8, 8), seed=3, dtype=torch.float64)), inner_steps=3, inner_lr=0.05,
                   vectorize=vectorize)  # fmt: skip
    assert fast._head_prefix == "4." and generic._head_prefix is None and generic.head == {"net.4.weight", "net.4.bias"}
    a, b = fast.meta_gradient(batch), generic.meta_gradient(batch)
    for name in a.grads:
        torch.testing.assert_close(a.grads[name], b.grads["net." + name], rtol=1e-10, atol=1e-12)
    assert a.query_loss == pytest.approx(b.query_loss, rel=1e-12)
    fast_scores, generic_scores = fast.evaluate(batch, steps=(0, 2)), generic.evaluate(batch, steps=(0, 2))
    for k in (0, 2):
        torch.testing.assert_close(fast_scores[k], generic_scores[k])


def test_anil_rejects_an_unknown_head():
    with pytest.raises(InputError, match="head"):
        ANIL(make_mlp(), head=["classifier.weight"])


def test_anil_on_a_convnet_adapts_the_linear_classifier():
    learner = ANIL(make_convnet(5, channels=(4, 4)), loss_fn=cross_entropy_loss)
    assert learner.head == {"9.weight", "9.bias"}  # 2 blocks x 4 layers, Flatten, then the Linear


# --- Meta-SGD -------------------------------------------------------------------------


def test_metasgd_learned_rates_receive_gradients_and_match_finite_differences():
    model = make_mlp(hidden=(4,), seed=0, dtype=torch.float64)
    learner = MetaSGD(model, inner_steps=1, inner_lr=0.05)
    meta = learner.meta_parameters()
    assert {n for n in meta if n.startswith("inner_lr:")} == {f"inner_lr:{n}" for n, _ in model.named_parameters()}
    assert all(float(p.detach().min()) == float(p.detach().max()) == 0.05 for n, p in meta.items() if "inner_lr:" in n)
    batch = sinusoids(3, seed=3)
    grads = learner.meta_gradient(batch).grads
    for name in meta:
        if name.startswith("inner_lr:"):
            assert float(grads[name].abs().sum()) > 0, name
    # d(query loss)/d(rate of the output bias) by central differences
    rates = {n[len("inner_lr:") :]: p.detach().clone() for n, p in meta.items() if n.startswith("inner_lr:")}

    def objective(bias_rate: float) -> float:
        lr = dict(rates)
        lr["2.bias"] = torch.full_like(rates["2.bias"], bias_rate)
        return float(evaluate_adaptation(model, batch, steps=(1,), lr=lr)[1].mean())

    eps = 1e-6
    numeric = (objective(0.05 + eps) - objective(0.05 - eps)) / (2 * eps)
    assert float(grads["inner_lr:2.bias"]) == pytest.approx(numeric, rel=1e-5)


def test_metasgd_meta_step_updates_the_rates_and_adapts_with_them():
    learner = MetaSGD(make_mlp(hidden=(4,), seed=0, dtype=torch.float64), inner_lr=0.05)
    optimizer = torch.optim.SGD(learner.meta_parameters().values(), lr=0.1)
    learner.meta_step(sinusoids(4), optimizer)
    rates = learner.inner_lrs["0.weight"].detach()
    assert not torch.allclose(rates, torch.full_like(rates, 0.05))
    batch = sinusoids(1, seed=5)
    adapted = learner.adapt(batch.support_x[0], batch.support_y[0], steps=1)
    expected = evaluate_adaptation(
        learner.model, batch, steps=(1,), lr={n: p.detach() for n, p in learner.inner_lrs.items()}
    )[1]
    loss = torch.mean((adapted(batch.query_x[0]) - batch.query_y[0]) ** 2)
    assert float(loss) == pytest.approx(float(expected[0]), rel=1e-10)


def test_state_dict_round_trip_holds_the_rates():
    a = MetaSGD(make_mlp(hidden=(4,), seed=0))
    b = MetaSGD(make_mlp(hidden=(4,), seed=1))
    with torch.no_grad():
        a.inner_lrs["0.bias"].fill_(0.3)
    b.load_state_dict(a.state_dict())
    assert all(torch.equal(p, b.meta_parameters()[n]) for n, p in a.meta_parameters().items())
    with pytest.raises(InputError, match="meta-parameters"):
        b.load_state_dict({"0.weight": torch.zeros(4, 1)})


@pytest.mark.parametrize("algorithm", [ANIL, MetaSGD])
def test_vmap_path_equals_per_task_loop(algorithm):
    batch = sinusoids(4, seed=6)
    model = make_mlp(hidden=(8, 8), seed=1, dtype=torch.float64)
    vmapped = algorithm(model, inner_steps=2, inner_lr=0.03, vectorize=True).meta_gradient(batch)
    looped = algorithm(model, inner_steps=2, inner_lr=0.03, vectorize=False).meta_gradient(batch)
    assert vmapped.grads.keys() == looped.grads.keys()
    for name in vmapped.grads:
        torch.testing.assert_close(vmapped.grads[name], looped.grads[name], rtol=1e-10, atol=1e-12)
    assert vmapped.query_loss == pytest.approx(looped.query_loss, rel=1e-12)


# --- Prototypical Networks ------------------------------------------------------------


def identity_embedding() -> nn.Linear:
    model = nn.Linear(2, 2, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    return model


def test_protonet_classifies_separable_clusters():
    batch = clusters(20, seed=1)
    learner = ProtoNet(identity_embedding())
    accuracies = learner.evaluate(batch, metric=accuracy)[0]
    assert accuracies.shape == (20,) and float(accuracies.min()) == 1.0
    classifier = learner.adapt(batch.support_x[0], batch.support_y[0])
    assert isinstance(classifier, PrototypeClassifier) and classifier.prototypes.shape == (3, 2)
    torch.testing.assert_close(classifier.prototypes[1], batch.support_x[0][batch.support_y[0] == 1].mean(0))
    assert torch.equal(classifier(batch.query_x[0]).argmax(1), batch.query_y[0])


def test_protonet_learns_an_embedding_that_ignores_a_noise_dimension():
    """Clusters separable in x only, with large noise in a third coordinate: a random
    embedding mixes the noise in; meta-training learns to drop it."""

    def episodes(n: int, seed: int) -> TaskBatch:
        base = clusters(n, ways=2, shots=3, queries=5, seed=seed, spread=0.2)
        g = torch.Generator().manual_seed(seed + 100)

        def widen(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x[..., :1], 4 * torch.randn(*x.shape[:-1], 1, generator=g, dtype=x.dtype)], dim=-1)

        return TaskBatch(widen(base.support_x), base.support_y, widen(base.query_x), base.query_y)

    class Episodes:
        def sample(self, n_tasks, generator, *, dtype=torch.float32):
            return episodes(n_tasks, int(torch.randint(0, 10**6, (1,), generator=generator)))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        learner = ProtoNet(nn.Linear(2, 2, dtype=torch.float64))
    test = episodes(200, seed=12345)
    before = float(learner.evaluate(test, metric=accuracy)[0].mean())
    history = learner.meta_train(Episodes(), iterations=60, meta_batch_size=8, outer_lr=0.05, seed=0)
    after = float(learner.evaluate(test, metric=accuracy)[0].mean())
    assert history.query_losses[-1] < history.query_losses[0]
    assert after > before + 0.1 and after > 0.85


def test_protonet_vmap_equals_loop_and_rejects_float_labels():
    batch = clusters(5, seed=2)
    a = ProtoNet(make_mlp(2, (6,), 3, seed=0, dtype=torch.float64)).meta_gradient(batch)
    b = ProtoNet(make_mlp(2, (6,), 3, seed=0, dtype=torch.float64), vectorize=False).meta_gradient(batch)
    for name in a.grads:
        torch.testing.assert_close(a.grads[name], b.grads[name], rtol=1e-10, atol=1e-12)
    with pytest.raises(InputError, match="int64"):
        ProtoNet(identity_embedding()).meta_gradient(sinusoids(2))


# --- task families, conv net, batches -------------------------------------------------


def test_line_tasks_are_exactly_linear_and_seeded():
    batch = LineTasks(k_support=6, k_query=4).sample(5, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert batch.support_x.shape == (5, 6, 1) and batch.query_y.shape == (5, 4, 1)
    for t in range(5):
        design = torch.cat([batch.support_x[t], torch.ones(6, 1, dtype=torch.float64)], 1)
        coef = torch.linalg.lstsq(design, batch.support_y[t]).solution
        assert -3 <= float(coef[0]) <= 3 and -3 <= float(coef[1]) <= 3
        prediction = torch.cat([batch.query_x[t], torch.ones(4, 1, dtype=torch.float64)], 1) @ coef
        torch.testing.assert_close(prediction, batch.query_y[t])
    again = LineTasks(k_support=6, k_query=4).sample(5, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(batch.support_y, again.support_y)


def test_harmonic_tasks_shapes_and_bounded_values():
    batch = HarmonicTasks(k_support=10).sample(50, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (50, 10, 1) and batch.query_x.shape == (50, 10, 1)
    assert float(batch.support_x.abs().max()) <= 1.0
    assert float(batch.support_y.std()) > 0.3  # amplitudes ~ N(0, 1)
    with pytest.raises(InputError, match="frequency_range"):
        HarmonicTasks(frequency_range=(7.0, 5.0))
    with pytest.raises(InputError, match="k_support"):
        LineTasks(k_support=0)


def test_make_convnet_shapes_and_errors():
    x = torch.rand(7, 1, 28, 28)
    assert make_convnet(5)(x).shape == (7, 5)
    assert make_convnet(None, channels=(8, 8, 8, 8))(x).shape == (7, 8)
    assert not list(make_convnet(5).buffers())  # no running statistics: vmap-safe
    with pytest.raises(InputError, match="pooling"):
        make_convnet(5, channels=(8,) * 6)


def test_task_batch_to_keeps_integer_labels():
    batch = clusters(2).to(torch.float32)
    assert batch.support_x.dtype == torch.float32 and batch.support_y.dtype == torch.int64


# --- glyph runs -----------------------------------------------------------------------


def _glyph_run(learner, *, iterations: int, meta_batch: int, test_tasks: int = 100) -> float:
    from autometa.metalearn import GlyphTasks

    learner.meta_train(GlyphTasks(ways=5, shots=1, queries=5), iterations=iterations, meta_batch_size=meta_batch,
                       outer_lr=3e-3, seed=0)  # fmt: skip
    test = GlyphTasks(ways=5, shots=1, queries=5, split="test").sample(test_tasks, torch.Generator().manual_seed(1))
    scores = learner.evaluate(test, metric=accuracy)
    return float(scores[max(scores)].mean())


def test_short_protonet_glyph_run_beats_chance():
    pytest.importorskip("HersheyFonts")
    learner = ProtoNet(make_convnet(None, channels=(8, 8, 8, 8), seed=0))
    assert _glyph_run(learner, iterations=20, meta_batch=4) > 0.4  # chance: 0.2


@pytest.mark.slow  # about 5-10 s
def test_short_anil_glyph_run_beats_chance():
    pytest.importorskip("HersheyFonts")
    learner = ANIL(make_convnet(5, channels=(16, 16, 16, 16), seed=0), inner_steps=3, inner_lr=0.3,
                   loss_fn=cross_entropy_loss)  # fmt: skip
    assert _glyph_run(learner, iterations=60, meta_batch=4) > 0.35


@pytest.mark.parametrize("algorithm", [MetaSGD, ProtoNet])
def test_glyph_meta_training_is_deterministic_on_cpu(algorithm):
    pytest.importorskip("HersheyFonts")
    from autometa.metalearn import GlyphTasks

    states = []
    for _ in range(2):
        if algorithm is ProtoNet:
            learner = ProtoNet(make_convnet(None, channels=(4, 4), seed=3))
        else:
            learner = MetaSGD(make_convnet(5, channels=(4, 4), seed=3), inner_lr=0.1, loss_fn=cross_entropy_loss)
        learner.meta_train(GlyphTasks(ways=5, shots=1, queries=2), iterations=3, meta_batch_size=2, seed=7)
        states.append(learner.state_dict())
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])
