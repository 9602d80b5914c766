"""autometa.nas.MetaNAS: Reptile over weights and architecture, task adaptation, pruning."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from autometa.exceptions import InputError, ResumeError  # noqa: E402
from autometa.metalearn import TaskBatch  # noqa: E402
from autometa.nas import (  # noqa: E402
    FEWSHOT_OPS,
    BNSettings,
    GenotypeNetwork,
    MetaNAS,
    MetaNASEvaluation,
    SearchNetwork,
    mean_ci,
)
from autometa.nas._metanas import _task_steps  # noqa: E402


class BlobTasks:
    """2-way tasks: class c images are noise plus a bright quadrant chosen per task."""

    def sample(self, n_tasks, generator, *, dtype=torch.float32):
        def images(quadrants, k):
            x = 0.3 * torch.randn(n_tasks, 2 * k, 1, 6, 6, generator=generator, dtype=dtype)
            for t in range(n_tasks):
                for c in range(2):
                    r, col = divmod(int(quadrants[t, c]), 2)
                    x[t, c * k : (c + 1) * k, 0, 3 * r : 3 * r + 3, 3 * col : 3 * col + 3] += 1.0
            return x, torch.arange(2).repeat_interleave(k).expand(n_tasks, -1).clone()

        quadrants = torch.stack([torch.randperm(4, generator=generator)[:2] for _ in range(n_tasks)])
        sx, sy = images(quadrants, 2)
        qx, qy = images(quadrants, 3)
        return TaskBatch(sx, sy, qx, qy)


def tiny_metanas(**kwargs) -> MetaNAS:
    net = SearchNetwork(1, 2, channels=2, n_cells=2, n_nodes=1, ops=FEWSHOT_OPS, stem_multiplier=1,
                        bn=BNSettings(affine=False, track_running_stats=False), seed=0)
    return MetaNAS(net, **{"task_steps": 2, "device": "cpu", **kwargs})


def test_reptile_moves_weights_and_architecture_by_their_own_meta_rates():
    batch = BlobTasks().sample(1, torch.Generator().manual_seed(0))

    class Fixed:
        def sample(self, n_tasks, generator, *, dtype=torch.float32):
            return batch

    probe = tiny_metanas(temperature=(1.0, 1.0))
    before = {n: p.detach().clone() for n, p in probe.network.named_parameters()}
    _task_steps(probe.network, batch.support_x[0], batch.support_y[0], 2, probe.task_lr, probe.task_arch_lr)
    adapted = {n: p.detach() for n, p in probe.network.named_parameters()}

    learner = tiny_metanas(meta_lr=1.0, meta_arch_lr=0.5, temperature=(1.0, 1.0))
    learner.meta_train(Fixed(), iterations=1, meta_batch_size=1)  # one iteration: no meta-rate annealing yet
    for name, p in learner.network.named_parameters():
        rate = 0.5 if name.startswith("alpha") else 1.0
        torch.testing.assert_close(p.detach(), before[name] + rate * (adapted[name] - before[name]))
    assert not torch.equal(learner.network.alpha_normal, before["alpha_normal"])


def test_temperature_is_annealed_and_records_are_logged():
    learner = tiny_metanas(temperature=(1.0, 0.05))
    records = learner.meta_train(BlobTasks(), iterations=4, meta_batch_size=2, log_every=2)
    assert [r.iteration for r in records] == [2, 4]
    assert records[-1].temperature == pytest.approx(0.05)
    assert 0.0 <= records[-1].query_accuracy <= 1.0


def test_adapt_returns_a_pruned_network_with_the_adapted_architecture():
    learner = tiny_metanas()
    batch = BlobTasks().sample(1, torch.Generator().manual_seed(1))
    adapted = learner.adapt(batch.support_x[0], batch.support_y[0], steps=3, finetune_steps=1)
    assert isinstance(adapted.network, GenotypeNetwork)
    assert adapted.genotype.n_nodes == 1 and all(op in FEWSHOT_OPS for op, _ in adapted.genotype.normal)
    assert adapted(batch.query_x[0]).shape == (6, 2)
    before = learner.network.alpha_normal.detach().clone()
    result = learner.evaluate(batch, steps=1, finetune_steps=2)
    assert len(result.pruned) == len(result.unpruned) == len(result.finetuned) == len(result.genotypes) == 1
    assert torch.equal(learner.network.alpha_normal, before)  # the meta state is untouched


def test_hard_fraction_meta_trains_and_adapts_the_network_that_is_pruned():
    """The first half of meta-training is soft, the second hard; adaptation runs the pruned network."""
    def alphas_by_iteration(learner):
        seen = {}
        learner.meta_train(BlobTasks(), iterations=4, meta_batch_size=1, log_every=1,
                           callback=lambda r: seen.setdefault(r.iteration, learner.network.alpha_normal.detach().clone()))
        return seen

    hard, soft = tiny_metanas(hard_fraction=0.5), tiny_metanas()
    hard_alphas, soft_alphas = alphas_by_iteration(hard), alphas_by_iteration(soft)
    torch.testing.assert_close(hard_alphas[2], soft_alphas[2])
    assert not torch.allclose(hard_alphas[4], soft_alphas[4])
    batch = BlobTasks().sample(4, torch.Generator().manual_seed(4))
    result = hard.evaluate(batch, steps=2)
    assert result.pruned == result.unpruned  # the adapted network is the pruned one
    assert soft.evaluate(batch, steps=2).pruned != soft.evaluate(batch, steps=2).unpruned


def test_metanas_resumes_from_its_checkpoint(tmp_path):
    full = tiny_metanas()
    full.meta_train(BlobTasks(), iterations=4, meta_batch_size=1, log_every=2)
    ckpt = tmp_path / "metanas.pt"

    def interrupt(record):
        if record.iteration == 4:  # after the iteration-2 checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_metanas().meta_train(BlobTasks(), iterations=4, meta_batch_size=1, log_every=2, checkpoint=ckpt,
                                  callback=interrupt)
    assert torch.load(ckpt, weights_only=False)["iterations"] == 2
    resumed = tiny_metanas()
    records = resumed.meta_train(BlobTasks(), iterations=4, meta_batch_size=1, log_every=2, checkpoint=ckpt)
    assert [r.iteration for r in records] == [2, 4]
    for (_, a), (_, b) in zip(resumed.network.state_dict().items(), full.network.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ResumeError, match=r"other settings: task_lr \([0-9.]+ in the file, 0\.5 now\)"):
        tiny_metanas(task_lr=0.5).meta_train(BlobTasks(), iterations=4, meta_batch_size=1, checkpoint=ckpt)
    with pytest.raises(ResumeError, match=r"other settings: iterations \(4 in the file, 6 now\)"):
        tiny_metanas().meta_train(BlobTasks(), iterations=6, meta_batch_size=1, checkpoint=ckpt)


def test_the_evaluation_summary_holds_means_and_95_percent_half_widths():
    evaluation = MetaNASEvaluation(unpruned=(0.5, 0.7), pruned=(0.4, 0.4, 0.7), finetuned=None, genotypes=())
    summary = evaluation.summary()
    assert summary["unpruned"] == {"mean": 0.6, "ci95": round(1.96 * (0.02 / 2) ** 0.5, 4)}
    assert summary["pruned"] == {"mean": 0.5, "ci95": round(mean_ci([0.4, 0.4, 0.7])[1], 4)}
    assert math.isnan(summary["pruned_finetuned"]["mean"])


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="'network'"):
        MetaNAS(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="'task_steps'"):
        tiny_metanas(task_steps=0)
    with pytest.raises(InputError, match="'hard_fraction'"):
        tiny_metanas(hard_fraction=1.5)


def test_first_order_maml_outer_loop_takes_an_adam_step_along_the_query_gradient():
    batch = BlobTasks().sample(1, torch.Generator().manual_seed(2))

    class Fixed:
        def sample(self, n_tasks, generator, *, dtype=torch.float32):
            return batch

    probe = tiny_metanas(temperature=(1.0, 1.0))
    before = {n: p.detach().clone() for n, p in probe.network.named_parameters()}
    _task_steps(probe.network, batch.support_x[0], batch.support_y[0], 2, probe.task_lr, probe.task_arch_lr)
    probe.network.zero_grad()
    torch.nn.functional.cross_entropy(probe.network(batch.query_x[0]), batch.query_y[0]).backward()
    grads = {n: p.grad for n, p in probe.network.named_parameters()}

    learner = tiny_metanas(outer="fomaml", meta_lr=1e-2, meta_arch_lr=1e-3, temperature=(1.0, 1.0))
    learner.meta_train(Fixed(), iterations=1, meta_batch_size=1)
    for name, p in learner.network.named_parameters():
        g = grads[name]
        if g is None:
            continue
        lr = 1e-3 if name.startswith("alpha") else 1e-2
        expected = before[name] - lr * g / (g.abs() + 1e-8)  # Adam's first step
        torch.testing.assert_close(p.detach(), expected, atol=1e-6, rtol=1e-4)
    with pytest.raises(InputError, match="'outer'"):
        tiny_metanas(outer="maml2")
