"""autometa.metalearn.fit_meta: the run of ``autometa metalearn`` in Python (checkpoint and
resume, metrics.csv, validation, test scores with 95% CIs, init.pt, results.json)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from autometa.exceptions import InputError, ResumeError  # noqa: E402
from autometa.metalearn import ALGORITHMS, TASK_FAMILIES, MetaLearnProgress, fit_meta  # noqa: E402

FAST = {"meta_batch": 4, "test_tasks": 20}


def _rows(out):
    return (out / "metrics.csv").read_text().splitlines()


def test_a_run_writes_its_files_and_one_metrics_row_per_chunk(tmp_path):
    seen: list[MetaLearnProgress] = []
    result = fit_meta("fomaml", "line", iterations=5, eval_every=2, out_dir=tmp_path, callbacks=[seen.append], **FAST)
    assert _rows(tmp_path)[0] == "iteration,seconds,train_query_loss,val_mse"
    assert [row.split(",")[0] for row in _rows(tmp_path)[1:]] == ["2", "4", "5"]
    assert [p.iteration for p in seen] == [0, 2, 4, 5] and seen[0].val_score is None
    assert all(p.train_query_loss is not None and p.val_score is not None and p.metric == "mse" for p in seen[1:])
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(result.to_dict()))
    assert set(result.test) == {"after_0_steps", "after_1_steps", "after_10_steps"}
    assert all(stat["ci95"] > 0 for stat in result.test.values())
    assert result.settings == {"algo": "fomaml", "tasks": "line", "shots": 10, "meta_batch": 4, "inner_steps": 1,
                               "inner_lr": 0.01, "outer_lr": 1e-3, "seed": 0}  # fmt: skip
    init = torch.load(tmp_path / "init.pt")
    assert all(torch.equal(init[k], v) for k, v in result.learner.state_dict().items())


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    whole = fit_meta("maml", "sinusoid", iterations=4, eval_every=1, out_dir=tmp_path / "whole", **FAST)
    fit_meta("maml", "sinusoid", iterations=2, eval_every=1, out_dir=tmp_path / "parts", **FAST)
    resumed = fit_meta("maml", "sinusoid", iterations=4, eval_every=1, out_dir=tmp_path / "parts", **FAST)
    assert resumed.resumed_from == 2 and resumed.iterations == 4 and whole.resumed_from == 0
    for name, value in whole.learner.state_dict().items():  # the optimizer state and the batches are resumed too
        torch.testing.assert_close(resumed.learner.state_dict()[name], value)
    assert [r.split(",")[0] for r in _rows(tmp_path / "parts")[1:]] == ["1", "2", "3", "4"]
    assert resumed.test == whole.test
    again = fit_meta("maml", "sinusoid", iterations=4, eval_every=1, out_dir=tmp_path / "parts", **FAST)
    assert again.resumed_from == 4 and len(_rows(tmp_path / "parts")) == 5  # complete: nothing retrained


def test_a_run_of_other_settings_is_refused_with_the_differences_named(tmp_path):
    fit_meta("fomaml", "sinusoid", iterations=2, out_dir=tmp_path, **FAST)
    before = (tmp_path / "metrics.csv").read_text()
    with pytest.raises(ResumeError, match=r"other settings: algo \('fomaml' in the file, 'maml' now\); "
                                          r"seed \(0 in the file, 1 now\)"):
        fit_meta("maml", "sinusoid", iterations=3, seed=1, out_dir=tmp_path, **FAST)
    assert (tmp_path / "metrics.csv").read_text() == before


def test_a_checkpoint_of_the_earlier_cli_resumes(tmp_path):
    first = fit_meta("fomaml", "sinusoid", iterations=2, out_dir=tmp_path / "new", **FAST)
    old = {"settings": first.settings, "model": first.learner.state_dict(),  # the CLI once saved "model"
           "optimizer": torch.load(tmp_path / "new" / "checkpoint.pt", weights_only=False)["optimizer"], "iterations": 2}
    (tmp_path / "old").mkdir()
    torch.save(old, tmp_path / "old" / "checkpoint.pt")
    assert fit_meta("fomaml", "sinusoid", iterations=3, out_dir=tmp_path / "old", **FAST).resumed_from == 2


def test_without_an_output_directory_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = fit_meta("reptile", "harmonic", iterations=1, **FAST)
    assert result.out_dir is None and result.iterations == 1 and list(tmp_path.iterdir()) == []
    assert result.settings["inner_steps"] == 5  # reptile's default


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algo": "sgd"}, "'algo' parameter of fit_meta must be one of maml, fomaml"),
        ({"tasks": "mnist"}, "'tasks' parameter of fit_meta must be one of sinusoid"),
        ({"algo": "protonet"}, "protonet', which classifies"),
        ({"tasks": "omniglot"}, "'data_dir' parameter"),
        ({"device": "tpu"}, "'device' parameter of fit_meta must be 'cpu' or 'cuda'; got 'tpu'"),
        ({"iterations": 0}, "'iterations' parameter of fit_meta must be an int, at least 1; got 0"),
        ({"shots": 0}, "'shots' parameter"),
        ({"eval_every": 0}, "'eval_every' parameter"),
        ({"outer_lr": -1.0}, "'outer_lr' parameter of fit_meta must be > 0"),
        ({"algo": "matching"}, "'matching', which classifies"),
        ({"algo": "relation", "tasks": "line"}, "'relation', which classifies"),
        ({"algo": "alpaca", "tasks": "glyphs"}, "'alpaca', which regresses"),
        ({"algo": "maml", "full_context": True}, "'full_context' parameter of fit_meta applies to algo 'matching'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        fit_meta(**{"iterations": 1, **kwargs}, out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_the_names_are_public():
    assert ALGORITHMS == ("maml", "fomaml", "reptile", "anil", "metasgd", "protonet", "imaml", "snail", "matching",
                          "relation", "alpaca")  # fmt: skip
    assert TASK_FAMILIES == ("sinusoid", "harmonic", "line", "glyphs", "omniglot")


GLYPHS_TINY = {"ways": 3, "queries": 2, "width": 4, "meta_batch": 2, "test_tasks": 6}
NEW_LEARNERS = [("imaml", "line", {}), ("snail", "line", {}), ("alpaca", "sinusoid", {}),
                ("matching", "glyphs", {"full_context": True}), ("relation", "glyphs", {}),
                ("snail", "glyphs", {})]  # fmt: skip


@pytest.mark.parametrize(("algo", "tasks", "extra"), NEW_LEARNERS, ids=[f"{a}-{t}" for a, t, _ in NEW_LEARNERS])
def test_the_new_learners_resume_through_the_shared_trainer(tmp_path, algo, tasks, extra):
    if tasks == "glyphs":
        pytest.importorskip("HersheyFonts")
    kwargs = {**(GLYPHS_TINY if tasks == "glyphs" else FAST), **extra}
    whole = fit_meta(algo, tasks, iterations=3, eval_every=1, out_dir=tmp_path / "whole", **kwargs)
    fit_meta(algo, tasks, iterations=2, eval_every=1, out_dir=tmp_path / "parts", **kwargs)
    resumed = fit_meta(algo, tasks, iterations=3, eval_every=1, out_dir=tmp_path / "parts", **kwargs)
    assert resumed.resumed_from == 2 and resumed.iterations == 3
    for name, value in whole.learner.state_dict().items():
        torch.testing.assert_close(resumed.learner.state_dict()[name], value)
    assert resumed.test == whole.test
    init = torch.load(tmp_path / "parts" / "init.pt")
    assert set(init) == set(resumed.learner.meta_parameters())
    results = json.loads((tmp_path / "parts" / "results.json").read_text())
    assert results["settings"]["algo"] == algo
    if algo in ("snail", "alpaca", "matching", "relation"):  # one forward pass: no steps
        assert set(resumed.test) == {"after_0_steps"}
    else:
        assert set(resumed.test) == {"after_0_steps", "after_5_steps", "after_10_steps"}
        assert results["settings"]["regularization"] == 10.0 and results["settings"]["cg_steps"] == 5  # regression
    if algo == "alpaca":
        calibration = results["test_calibration"]
        assert set(calibration) == {"nll", "coverage90"} and 0 <= calibration["coverage90"]["mean"] <= 1
    else:
        assert "test_calibration" not in results and resumed.calibration is None


def test_full_context_is_part_of_the_settings_a_resume_must_match(tmp_path):
    pytest.importorskip("HersheyFonts")
    fit_meta("matching", "glyphs", iterations=1, out_dir=tmp_path, **GLYPHS_TINY)
    with pytest.raises(ResumeError, match="full_context"):
        fit_meta("matching", "glyphs", iterations=2, full_context=True, out_dir=tmp_path, **GLYPHS_TINY)
