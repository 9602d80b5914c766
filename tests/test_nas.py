"""autometa.nas: search space, bilevel gradients (against exact unrolling and finite
differences), discretization, genotype JSON, the search loop with resume and guards."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call  # noqa: E402

from autometa.exceptions import AutometaError, InputError, ResumeError  # noqa: E402
from autometa.nas import (  # noqa: E402
    DARTS_OPS,
    FEWSHOT_OPS,
    AuxiliarySkip,
    DARTSSearch,
    Genotype,
    GenotypeNetwork,
    HessianEarlyStop,
    ImageData,
    SearchNetwork,
    arch_gradient,
    count_parameters,
    digits_data,
    digits_task,
    discretize,
    dominant_hessian_eigenvalue,
    edge_count,
    load_data,
    split_data,
    split_rows,
    train_genotype,
)

SMOOTH_OPS = ("skip_connect", "sep_conv_3x3", "avg_pool_3x3")  # no max pool: finite differences need smoothness



def make_images(n: int = 12, classes: int = 3, size: int = 4, seed: int = 0, dtype=torch.float32) -> ImageData:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 1, size, size, generator=gen, dtype=dtype) + y.view(-1, 1, 1, 1).to(dtype)
    return ImageData(x, y)


def tiny_net(ops=SMOOTH_OPS, n_cells=1, n_nodes=2, classes=3, seed=0) -> SearchNetwork:
    return SearchNetwork(1, classes, channels=2, n_cells=n_cells, n_nodes=n_nodes, ops=ops, stem_multiplier=1, seed=seed)


GENOTYPE = Genotype(
    normal=(("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 2), ("sep_conv_3x3", 1)),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("avg_pool_3x3", 0)),
)


# --- optional dependency ---------------------------------------------------------------------------


def test_import_without_torch_raises_autometa_error_naming_nas(monkeypatch):
    for name in [m for m in sys.modules if m.startswith(("autometa.metalearn", "autometa.nas"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" fail
    with pytest.raises(AutometaError, match=r"autometa\.nas needs torch.*pip install torch==2\.13\.0") as info:
        import autometa.nas  # noqa: F401
    assert isinstance(info.value, ImportError)


# --- search space ----------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.05, 7.0])
def test_mixed_edge_weights_sum_to_one(temperature):
    net = tiny_net(ops=DARTS_OPS, n_nodes=4)
    with torch.no_grad():
        net.alpha_normal.normal_(0, 3)
        net.alpha_reduce.normal_(0, 3)
    net.temperature = temperature
    for weights in net.edge_weights():
        assert weights.shape == (edge_count(4), len(DARTS_OPS)) == (14, 8)
        assert torch.all(weights >= 0)
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(14))


def test_low_temperature_sharpens_the_edge_weights():
    net = tiny_net()
    with torch.no_grad():
        net.alpha_normal.copy_(torch.tensor([0.0, 0.1, 0.0]).repeat(edge_count(2), 1))
    net.temperature = 0.01
    assert float(net.edge_weights()[0][:, 1].min().detach()) > 0.99


@pytest.mark.parametrize("ops", [DARTS_OPS, FEWSHOT_OPS])
def test_every_op_keeps_shapes_in_normal_and_reduction_cells(ops):
    net = SearchNetwork(1, 4, channels=4, n_cells=3, n_nodes=2, ops=ops, seed=0)
    assert [c.reduction for c in net.cells] == [False, True, True]
    out = net(torch.randn(3, 1, 7, 7))  # odd sizes exercise the factorised reduction
    assert out.shape == (3, 4)
    assert len(DARTS_OPS) == 8 and len(FEWSHOT_OPS) == 7 and "none" not in FEWSHOT_OPS


def test_architecture_and_weight_parameters_are_disjoint_and_cover_the_network():
    net = tiny_net()
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert len(arch) == 2
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in weights)
    assert len(arch) + len(weights) == len(list(net.parameters()))


def test_bad_settings_name_the_parameter():
    with pytest.raises(InputError, match="unknown operations"):
        SearchNetwork(1, 3, ops=("sep_conv_3x3", "conv_9x9"))
    with pytest.raises(InputError, match="'channels'"):
        SearchNetwork(1, 3, channels=1)
    with pytest.raises(InputError, match="'order'"):
        DARTSSearch(order="third")
    with pytest.raises(InputError, match="'device'.*cuda"):
        if torch.cuda.is_available():
            raise InputError("The 'device' parameter is 'cuda' (skipped: a GPU is present)")
        DARTSSearch(device="cuda")


# --- gradients -------------------------------------------------------------------------------------


def _unrolled_valid_loss(net, alphas, xi, train, valid):
    """L_val(w - xi * grad_w L_train(w, alpha), alpha), differentiable in alpha (and exact)."""
    weights = {n: p.detach().requires_grad_(True) for n, p in net.named_weight_parameters().items()}
    params = {**weights, "alpha_normal": alphas[0], "alpha_reduce": alphas[1]}
    train_loss = F.cross_entropy(functional_call(net, params, (train.x,)), train.y)
    grads = torch.autograd.grad(train_loss, list(weights.values()), create_graph=True, allow_unused=True)
    virtual = {n: w - xi * (g if g is not None else 0) for (n, w), g in zip(weights.items(), grads, strict=True)}
    return F.cross_entropy(functional_call(net, {**virtual, "alpha_normal": alphas[0], "alpha_reduce": alphas[1]}, (valid.x,)), valid.y)


def test_second_order_arch_gradient_matches_exact_unrolling_and_finite_differences():
    net = tiny_net(n_cells=2, n_nodes=2).double()  # one normal, one reduction cell
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    train, valid = make_images(seed=1, dtype=torch.float64), make_images(seed=2, dtype=torch.float64)
    xi = 0.1
    # float64 allows a far smaller difference step than DARTS's 0.01 / ||v||, and the
    # central difference is then exact to rounding
    approx = arch_gradient(net, (train.x, train.y), (valid.x, valid.y), order="second", xi=xi, epsilon_scale=1e-5)

    alphas = [a.detach().clone().requires_grad_(True) for a in net.arch_parameters()]
    exact = torch.autograd.grad(_unrolled_valid_loss(net, alphas, xi, train, valid), alphas)
    for a, e in zip(approx, exact, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-7)

    # central finite differences of the unrolled objective in a few coordinates of alpha
    h = 1e-5
    for which, index in [(0, (0, 1)), (0, (4, 2)), (1, (2, 0))]:
        plus = [a.detach().clone() for a in alphas]
        minus = [a.detach().clone() for a in alphas]
        plus[which][index] += h
        minus[which][index] -= h
        numeric = (_unrolled_valid_loss(net, plus, xi, train, valid) - _unrolled_valid_loss(net, minus, xi, train, valid)) / (2 * h)
        assert float(approx[which][index]) == pytest.approx(numeric.item(), rel=1e-4, abs=1e-8)


def test_first_order_arch_gradient_is_the_plain_validation_gradient():
    net = tiny_net().double()
    valid = make_images(seed=3, dtype=torch.float64)
    grads = arch_gradient(net, (valid.x, valid.y), (valid.x, valid.y), order="first")
    F.cross_entropy(net(valid.x), valid.y).backward()
    for g, a in zip(grads, net.arch_parameters(), strict=True):  # alpha_reduce is unused: no reduction cell
        torch.testing.assert_close(g, a.grad if a.grad is not None else torch.zeros_like(a))


def test_dominant_hessian_eigenvalue_of_a_known_curvature():
    net = tiny_net().double()
    data = make_images(seed=4, dtype=torch.float64)
    value = dominant_hessian_eigenvalue(net, (data.x, data.y), iterations=50)
    alphas = [a.detach().clone() for a in net.arch_parameters()]
    flat = torch.cat([a.flatten() for a in alphas]).requires_grad_(True)

    def loss(v):
        n = alphas[0].numel()
        params = {"alpha_normal": v[:n].view_as(alphas[0]), "alpha_reduce": v[n:].view_as(alphas[1])}
        return F.cross_entropy(functional_call(net, params, (data.x,)), data.y)

    eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))
    dominant = float(eigenvalues[eigenvalues.abs().argmax()])
    assert value == pytest.approx(dominant, rel=1e-3)


# --- discretization and genotypes -------------------------------------------------------------------


def test_discretization_keeps_the_two_strongest_inputs_and_their_best_non_none_op():
    ops = ("none", "skip_connect", "sep_conv_3x3", "avg_pool_3x3")
    weights = torch.full((edge_count(3), 4), 0.1)
    # node 0 (edges 0, 1): edge 1 holds sep_conv, edge 0 avg_pool; "none" is never chosen
    weights[0] = torch.tensor([0.9, 0.0, 0.0, 0.6])
    weights[1] = torch.tensor([0.0, 0.1, 0.8, 0.1])
    # node 1 (edges 2, 3, 4): inputs 2 (node 0) and 0 are strongest
    weights[2] = torch.tensor([0.0, 0.7, 0.0, 0.0])
    weights[3] = torch.tensor([0.0, 0.0, 0.2, 0.0])
    weights[4] = torch.tensor([0.0, 0.0, 0.0, 0.5])
    # node 2 (edges 5..8): a large "none" weight does not make an input strong
    weights[5:9] = torch.tensor([[0.99, 0.0, 0.01, 0.0], [0.0, 0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.2], [0.0, 0.4, 0.0, 0.0]])
    genotype = discretize(weights, weights, ops)
    assert genotype.normal == (
        ("avg_pool_3x3", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("avg_pool_3x3", 2),
        ("skip_connect", 1), ("skip_connect", 3),
    )
    assert genotype.n_nodes == 3
    assert genotype.skip_share() == pytest.approx(3 / 6)


def test_search_network_genotype_follows_its_alphas():
    net = tiny_net(ops=DARTS_OPS, n_nodes=2)
    with torch.no_grad():
        net.alpha_normal.zero_()
        net.alpha_normal[:, DARTS_OPS.index("sep_conv_5x5")] = 2.0
        net.alpha_normal[3, DARTS_OPS.index("dil_conv_3x3")] = 5.0
    genotype = net.genotype()
    assert genotype.normal[:2] == (("sep_conv_5x5", 0), ("sep_conv_5x5", 1))
    assert ("dil_conv_3x3", 1) in genotype.normal[2:]


def test_genotype_json_round_trips(tmp_path):
    assert Genotype.from_json(GENOTYPE.to_json()) == GENOTYPE
    GENOTYPE.save(tmp_path / "g.json")
    assert Genotype.load(tmp_path / "g.json") == GENOTYPE
    assert GENOTYPE.node_edges("reduce")[1] == (("skip_connect", 2), ("avg_pool_3x3", 0))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"normal": [["sep_conv_3x3", 0]], "reduce": [["sep_conv_3x3", 0]]}', "2 edges per node"),
        ('{"normal": [["sep_conv_3x3", 0], ["skip_connect", 2]], "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1]]}', "input 2"),
        ('{"normal": [["conv_9x9", 0], ["skip_connect", 1]], "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1]]}', "unknown"),
        ("[1, 2", "must be JSON"),
        ('{"cells": []}', "'normal' and 'reduce'"),
    ],
)
def test_invalid_genotypes_are_refused_with_a_clear_message(text, match):
    with pytest.raises(InputError, match=match):
        Genotype.from_json(text)


def test_genotype_network_runs_and_prune_copies_the_kept_ops():
    net = SearchNetwork(1, 3, channels=4, n_cells=3, n_nodes=2, ops=DARTS_OPS, seed=0)
    fixed = GenotypeNetwork(GENOTYPE, 1, 3, channels=4, n_cells=3)
    assert fixed(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    pruned = net.prune(GENOTYPE)
    assert count_parameters(pruned) < count_parameters(net)
    kept = pruned.cells[0].ops[0]  # sep_conv_3x3 on the edge from input 0 into node 0
    source = net.cells[0].edges[0].ops[DARTS_OPS.index("sep_conv_3x3")]
    for (_, a), (_, b) in zip(kept.state_dict().items(), source.state_dict().items(), strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(pruned.classifier.weight, net.classifier.weight)


def test_at_low_temperature_with_two_input_nodes_the_pruned_network_equals_the_search_network():
    """With one node (two inputs, both kept) and one-hot weights, pruning changes nothing."""
    net = SearchNetwork(1, 3, channels=4, n_cells=1, n_nodes=1, ops=FEWSHOT_OPS, seed=0)
    with torch.no_grad():
        net.alpha_normal.copy_(torch.eye(len(FEWSHOT_OPS))[[3, 5]] * 10)
    net.temperature = 1e-3
    x = torch.randn(5, 1, 6, 6)
    torch.testing.assert_close(net.prune()(x), net(x), rtol=1e-4, atol=1e-5)


def test_hard_search_network_runs_the_pruned_network_and_still_moves_its_alphas():
    """Two nodes: the second node drops one of its three inputs at pruning. At temperature 1
    the soft network differs from the pruned one; the hard (straight-through) one does not."""
    net = SearchNetwork(1, 3, channels=4, n_cells=2, n_nodes=2, ops=FEWSHOT_OPS, seed=0).eval()
    with torch.no_grad():
        net.alpha_normal.normal_(generator=torch.Generator().manual_seed(1))
        net.alpha_reduce.normal_(generator=torch.Generator().manual_seed(2))
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    pruned = net.prune().eval()
    assert not torch.allclose(net(x), pruned(x), atol=1e-3)
    net.hard = True
    torch.testing.assert_close(net(x), pruned(x), rtol=1e-5, atol=1e-6)
    net(x).square().sum().backward()
    kept = [edge_count(i // 2) + j for i, (_, j) in enumerate(net.genotype().normal)]
    dropped = [e for e in range(edge_count(2)) if e not in kept]
    assert len(dropped) == 1
    # straight-through: every edge, the dropped one too, learns what adding it would do
    assert (net.alpha_normal.grad[kept].abs().sum(dim=1) > 0).all()
    assert net.alpha_normal.grad[dropped].abs().sum() > 0


# --- the search loop --------------------------------------------------------------------------------


def _tiny_search(**kwargs) -> DARTSSearch:
    settings = {"ops": SMOOTH_OPS, "channels": 2, "n_cells": 1, "n_nodes": 2, "batch_size": 6, "eval_every": 2,
                "arch_lr": 0.05, "device": "cpu", "seed": 0}
    return DARTSSearch(**{**settings, **kwargs})


@pytest.mark.parametrize("order", ["first", "second"])
def test_search_moves_the_alphas_and_records_history(order):
    train, valid = make_images(seed=5), make_images(seed=6)
    result = _tiny_search(order=order, temperature=(1.0, 0.1)).search(train, valid, steps=4)
    assert result.steps == 4 and [r.step for r in result.history] == [2, 4]
    assert not torch.allclose(result.alpha_normal, torch.zeros_like(result.alpha_normal), atol=1e-2)
    assert result.history[-1].temperature == pytest.approx(0.1)
    assert 0.0 <= result.history[-1].skip_share <= 1.0
    assert Genotype.from_dict(result.to_dict()["genotype"]) == result.genotype


def test_search_resumes_from_its_checkpoint_to_the_uninterrupted_result(tmp_path):
    train, valid = make_images(seed=7), make_images(seed=8)
    full = _tiny_search().search(train, valid, steps=4)
    ckpt = tmp_path / "search.pt"

    def interrupt(record):
        if record.step == 4:  # after the step-2 checkpoint, before the step-4 one
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _tiny_search().search(train, valid, steps=4, checkpoint=ckpt, checkpoint_every=2, callback=interrupt)
    assert torch.load(ckpt, weights_only=False)["step"] == 2
    resumed = _tiny_search().search(train, valid, steps=4, checkpoint=ckpt, checkpoint_every=2)
    torch.testing.assert_close(resumed.alpha_normal, full.alpha_normal)
    assert [r.valid_accuracy for r in resumed.history] == [r.valid_accuracy for r in full.history]
    with pytest.raises(ResumeError, match=r"other settings: arch_lr \([0-9.e-]+ in the file, 0\.01 now\)"):
        _tiny_search(arch_lr=0.01).search(train, valid, steps=4, checkpoint=ckpt)
    with pytest.raises(ResumeError, match=r"other settings: steps \(4 in the file, 5 now\)"):
        _tiny_search().search(train, valid, steps=5, checkpoint=ckpt)


def test_search_resumes_a_checkpoint_of_the_earlier_format(tmp_path):
    train, valid = make_images(seed=7), make_images(seed=8)
    ckpt = tmp_path / "search.pt"
    search = _tiny_search()
    search.search(train, valid, steps=2, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=False)
    settings = state.pop("settings")  # the earlier format: one settings string under "key"
    torch.save({**state, "key": search.settings.key() + f"|steps=2|init=False|data={settings['data']}"}, ckpt)
    logged = _tiny_search().search(train, valid, steps=2, checkpoint=ckpt)
    assert logged.steps == 2 and [r.step for r in logged.history] == [r.step for r in state["history"]]
    torch.save({**state, "key": "another search"}, ckpt)
    with pytest.raises(ResumeError, match="other settings"):
        _tiny_search().search(train, valid, steps=2, checkpoint=ckpt)


def test_warm_start_alphas_are_the_starting_point():
    train, valid = make_images(seed=9), make_images(seed=10)
    start = (torch.full((edge_count(2), 3), 2.0), torch.zeros(edge_count(2), 3))
    start[0][:, 1] = 4.0
    search = _tiny_search(arch_lr=1e-6)
    result = search.search(train, valid, steps=2, init_alphas=start)
    torch.testing.assert_close(result.alpha_normal, start[0], atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="warm-start 'alpha_normal' must have shape"):
        search.search(train, valid, steps=2, init_alphas=(torch.zeros(3, 3), torch.zeros(3, 3)))


def test_auxiliary_skip_decays_to_zero_and_is_recorded():
    train, valid = make_images(seed=11), make_images(seed=12)
    result = _tiny_search(guard=AuxiliarySkip(beta=1.0)).search(train, valid, steps=4)
    assert [r.aux_skip for r in result.history] == pytest.approx([0.75, 0.25])


def test_hessian_guard_stops_when_the_curvature_grows():
    log = [(i, v, torch.zeros(1), torch.zeros(1)) for i, v in enumerate([1.0, 1.0, 1.1, 1.5, 2.5])]
    guard = HessianEarlyStop(every=1, window=2, lag=2, ratio=0.75)
    assert DARTSSearch._hessian_stop(log[:4], guard) is None  # 1.0 / 1.3 > 0.75
    assert DARTSSearch._hessian_stop(log, guard) == 2  # 1.05 / 2.0 < 0.75: keep estimate 2
    train, valid = make_images(seed=13), make_images(seed=14)
    result = _tiny_search(guard=HessianEarlyStop(every=1, power_iterations=3)).search(train, valid, steps=3)
    assert all(r.eigenvalue is not None for r in result.history)


def test_train_genotype_from_scratch_learns_digits():
    data = digits_task([0, 1])
    train, valid = data.split(0.5, seed=0)
    genotype = Genotype(normal=(("sep_conv_3x3", 0), ("skip_connect", 1)), reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1)))
    _, result = train_genotype(genotype, train, valid, steps=30, channels=4, n_cells=2, eval_every=15, device="cpu", batch_size=32)
    assert result.valid_accuracy > 0.9
    assert result.valid_curve[-1][0] == 30


def test_digits_tasks_relabel_their_classes():
    full = digits_data()
    assert full.x.shape == (1797, 1, 8, 8) and full.n_classes == 10
    task = digits_task([7, 3], full)
    assert set(task.y.tolist()) == {0, 1} and len(task) == int(((full.y == 7) | (full.y == 3)).sum())
    with pytest.raises(InputError, match="distinct digits"):
        digits_task([3, 3])


def test_split_rows_is_seeded_50_25_25_and_disjoint():
    train, valid, test = split_rows(40, seed=1)
    assert (len(train), len(valid), len(test)) == (20, 10, 10)
    assert sorted(torch.cat([train, valid, test]).tolist()) == list(range(40))
    assert all(torch.equal(a, b) for a, b in zip(split_rows(40, seed=1), (train, valid, test), strict=True))
    assert not torch.equal(split_rows(40, seed=2)[2], test)
    data = make_images(n=40)
    parts = split_data(data, seed=1)
    assert all(torch.equal(part.x, data.x[rows]) for part, rows in zip(parts, (train, valid, test), strict=True))


def test_load_data_reads_digits_and_npz_files_and_refuses_what_does_not_fit(tmp_path):
    data, task = load_data("digits", classes=[3, 5])
    assert task is None and data.n_classes == 2 and len(data) == len(digits_task([3, 5]))
    np.savez(tmp_path / "d.npz", x=np.zeros((6, 4, 4)), y=np.array([7, 3, 7, 3, 9, 9]))
    data, _ = load_data(tmp_path / "d.npz")
    assert data.x.shape == (6, 1, 4, 4) and data.y.tolist() == [1, 0, 1, 0, 2, 2]  # sorted labels, a channel added
    np.savez(tmp_path / "f.npz", x=np.zeros((2, 4, 4)), y=np.array([0.5, 1.0]))
    with pytest.raises(InputError, match="must be integers; got dtype float64"):
        load_data(tmp_path / "f.npz")
    with pytest.raises(InputError, match="must hold arrays 'x' and 'y'"):
        np.savez(tmp_path / "g.npz", images=np.zeros(2))
        load_data(tmp_path / "g.npz")
    with pytest.raises(InputError, match="'data' parameter of load_data must be 'digits'.*got 'nothing.csv'"):
        load_data("nothing.csv")
    with pytest.raises(InputError, match="'classes' parameter of load_data only applies"):
        load_data(tmp_path / "d.npz", classes=[0, 1])
    with pytest.raises(InputError, match="'label' parameter of load_data applies to a CSV or Parquet table"):
        load_data(tmp_path / "d.npz", label="y")
    (tmp_path / "t.csv").write_text("a,y\n1,0\n2,1\n")
    with pytest.raises(InputError, match="'classes' parameter of load_data only applies"):
        load_data(tmp_path / "t.csv", label="y", classes=[0, 1])


def test_glyph_tasks_take_the_named_classes_of_one_alphabet_in_order():
    from autometa.metalearn import load_glyph_dataset
    from autometa.nas import glyph_task

    glyphs = load_glyph_dataset(image_size=28, instances=20)  # the rendering the episode tests use
    members = np.flatnonzero(glyphs.alphabet == "Cyrillic")
    task = glyph_task("Cyrillic", [4, 1], image_size=28, instances=20)
    assert task.x.shape == (40, 1, 28, 28) and task.y.tolist() == [0] * 20 + [1] * 20
    assert torch.equal(task.x[20:, 0], torch.tensor(glyphs.images[members[1]], dtype=torch.float32) / 255)
    assert task.x[:20].sum() > 0 and not torch.equal(task.x[:20], task.x[20:])
    assert glyph_task("Cyrillic", image_size=28, instances=20).n_classes == len(members)
    with pytest.raises(InputError, match="Unknown glyph alphabet 'Klingon'; choose one of: .*Cyrillic"):
        glyph_task("Klingon", image_size=28, instances=20)
    with pytest.raises(InputError, match=f"positions in 0..{len(members) - 1}"):
        glyph_task("Cyrillic", [0, len(members)], image_size=28, instances=20)


# --- warm start ------------------------------------------------------------------------------------

from autometa.nas import ArchitectureStore, SearchResult, image_task_embedding  # noqa: E402


def _result(value: float, ops=SMOOTH_OPS, n_nodes=2) -> SearchResult:
    normal = torch.full((edge_count(n_nodes), len(ops)), value)
    normal[:, 1] += 1.0
    return SearchResult(discretize(normal, normal, ops), normal, normal.clone() * 2, tuple(ops), (), steps=1)


def test_warm_start_loads_the_nearest_tasks_parameters(tmp_path):
    store = ArchitectureStore(tmp_path / "store")
    shape = (edge_count(2), 3)
    for name, descriptor, value in [("a", [0.0, 0.0], 1.0), ("b", [5.0, 5.0], 2.0), ("c", [10.0, 0.0], 3.0)]:
        weights = {"stem.0.weight": torch.full((2, 2), value), "classifier.weight": torch.zeros(3, 2)}
        store.add(name, descriptor, _result(value), weights=weights)
    start = store.warm_start([4.8, 5.1], ops=SMOOTH_OPS, shape=shape, with_weights=True)
    assert start.sources[0][0] == "b"
    torch.testing.assert_close(start.alphas[0], _result(2.0).alpha_normal)
    torch.testing.assert_close(start.alphas[1], _result(2.0).alpha_reduce)
    assert set(start.weights) == {"stem.0.weight"} and float(start.weights["stem.0.weight"][0, 0]) == 2.0

    reopened = ArchitectureStore(tmp_path / "store")  # persisted: index.json and weights/
    assert [r.name for r, _ in reopened.nearest([9.0, 1.0], k=2)] == ["c", "b"]
    assert reopened.warm_start([9.0, 1.0], ops=SMOOTH_OPS, shape=shape, with_weights=True).weights is not None
    assert reopened.warm_start([9.0, 1.0], ops=SMOOTH_OPS, shape=shape, exclude=["c"]).sources[0][0] != "c"
    assert reopened.warm_start([0.0, 0.0], ops=DARTS_OPS, shape=(5, 8)) is None  # other search space: cold start
    averaged = reopened.warm_start([2.5, 2.5], ops=SMOOTH_OPS, shape=shape, k=2)  # halfway between a and b
    torch.testing.assert_close(averaged.alphas[0], _result(1.5).alpha_normal)
    with pytest.raises(InputError, match="already holds"):
        store.add("a", [0.0, 0.0], _result(1.0))


def test_image_task_embedding_tells_related_tasks_apart():
    data = digits_data()
    same_a, same_b = digits_task([0, 1, 2], data).split(0.5, seed=0)
    other = digits_task([7, 8, 9], data)
    emb = [image_task_embedding(d) for d in (same_a, same_b, other)]
    assert emb[0].shape == (66,)
    assert torch.dist(emb[0], emb[1]) < torch.dist(emb[0], emb[2])


def test_tabular_tasks_are_described_by_meta_features_and_matched(iris, breast_cancer):
    from autometa import Task
    from autometa.nas import table_descriptor

    iris_task = Task(iris, label="target", seed=0)
    cancer_task = Task(breast_cancer, label="target", seed=0)
    descriptors = {name: table_descriptor(t, groups=("simple",)) for name, t in (("iris", iris_task), ("cancer", cancer_task))}
    assert descriptors["iris"]["NumberOfClasses"] == 3
    store = ArchitectureStore()
    store.add("iris", descriptors["iris"], _result(1.0))
    store.add("cancer", descriptors["cancer"], _result(2.0))
    half_iris = Task(iris.sample(75, random_state=0), label="target", seed=0)
    assert store.nearest(table_descriptor(half_iris, groups=("simple",)))[0][0].name == "iris"


def test_random_genotype_is_seeded_valid_and_never_none():
    a, b, c = (Genotype.random(DARTS_OPS, 3, seed=s) for s in (7, 7, 8))
    assert a == b and a != c
    for cell in ("normal", "reduce"):
        for node, edges in enumerate(a.node_edges(cell)):
            sources = [j for _, j in edges]
            assert len(set(sources)) == 2 and all(0 <= j < 2 + node for j in sources)
    assert {op for op, _ in a.normal + a.reduce} <= set(DARTS_OPS) - {"none"}
    with pytest.raises(InputError, match="an operation besides 'none'"):
        Genotype.random(("none",), 2)
