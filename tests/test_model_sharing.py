"""Sharing models as skops files: ``export_model`` / ``autometa export`` write them,
``load_model`` / ``autometa predict`` read them back with the same predictions, trusting
only the types of autometa's pipelines and refusing anything else with one line."""

from __future__ import annotations

import operator
import os
import sys
import warnings
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.preprocessing import FunctionTransformer
from typer.testing import CliRunner

from autometa import Task, load_model, save_model, tune
from autometa.cli import app
from autometa.exceptions import InputError, ModelVersionError
from autometa.model import SKOPS_TRUSTED_TYPES, export_model
from autometa.spaces import FAMILIES, build_pipeline, config_to_dict, family_defaults, get_space

sio = pytest.importorskip("skops.io")
runner = CliRunner()

_META = ("feature_columns", "categorical_columns", "label", "problem_type", "classes", "metric", "best_config")


def _run(*args: str):
    return runner.invoke(app, list(args))


def _errors(res) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.strip()]


def _task(frame: pd.DataFrame, label: str) -> Task:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Task(frame, label=label)


def _assert_same_model(joblib_path: Path, skops_path: Path, data: pd.DataFrame) -> None:
    a, b = load_model(joblib_path), load_model(skops_path)
    for name in _META:
        assert getattr(b, name) == getattr(a, name), name
    assert b.package_versions["scikit-learn"] == a.package_versions["scikit-learn"]
    pd.testing.assert_frame_equal(b.predict(data), a.predict(data), check_exact=True)


@pytest.fixture(scope="module")
def diabetes_frame() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, credit_small) -> Path:
    """A real tuned run (2 random trials) on 450 rows of credit_data; its model a single
    pipeline (the tampering tests edit its steps)."""
    out = tmp_path_factory.mktemp("clf") / "run"
    tune(_task(credit_small.iloc[:450], "Status"), n_trials=2, optimizer="random", families=["hist_gradient_boosting"],
         isolation="none", out_dir=out, ensemble_size=0)
    return out


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, credit_small) -> Path:
    """A real tuned run whose final model is an ensemble (of trials of three families)."""
    out = tmp_path_factory.mktemp("ens") / "run"
    result = tune(_task(credit_small.iloc[:450], "Status"), n_trials=6, optimizer="random", isolation="none",
                  families=["linear", "knn", "decision_tree"], out_dir=out)
    assert result.ensemble is not None, result.setup["ensemble"]
    return out


@pytest.fixture(scope="module")
def regressor_run(tmp_path_factory, diabetes_frame) -> Path:
    out = tmp_path_factory.mktemp("reg") / "run"
    tune(_task(diabetes_frame, "target"), n_trials=2, optimizer="random", families=["svm"], isolation="none", out_dir=out)
    return out


@pytest.mark.parametrize("run", ["classifier_run", "regressor_run", "ensemble_run"])
def test_an_exported_run_predicts_exactly_like_its_joblib_model(run, request, credit_small, diabetes_frame):
    run_dir = request.getfixturevalue(run)
    path = export_model(run_dir)
    assert path == run_dir / "model.skops" and path.is_file()
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    data = (credit_small.iloc[450:] if run != "regressor_run" else diabetes_frame).drop(columns=["Status", "target"], errors="ignore")
    _assert_same_model(run_dir / "model.joblib", path, data)
    assert set(sio.get_untrusted_types(file=path)) <= SKOPS_TRUSTED_TYPES
    assert load_model(path).ensemble == load_model(run_dir / "model.joblib").ensemble
    if run != "regressor_run":
        assert {"proba_good", "proba_bad"} <= set(load_model(path).predict(data.head()).columns)


def _family_cases() -> list[tuple[str, str, dict]]:
    cases = [(kind, fam, {}) for kind in ("binary", "regression") for fam in FAMILIES]
    cases += [("binary", "svm", {"needs_proba": True}), ("binary", "knn", {"knn:p": 1}),
              ("binary", "linear", {"linear:penalty": "elasticnet", "linear:l1_ratio": 0.5}), ("multiclass", "hist_gradient_boosting", {})]
    return cases


@pytest.mark.parametrize(("kind", "family", "extra"), _family_cases(), ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(v) or "default")
def test_every_family_loads_from_skops_with_only_the_allow_list(kind, family, extra, tmp_path, credit_small, diabetes_frame):
    """Each family's pipeline (its default, and variants with other internal types) round-trips
    through skops, trusting nothing beyond SKOPS_TRUSTED_TYPES, with identical predictions."""
    if kind == "regression":
        frame, label = diabetes_frame, "target"
    elif kind == "multiclass":
        from sklearn.datasets import load_iris

        frame, label = load_iris(as_frame=True).frame, "target"
    else:
        frame, label = credit_small, "Status"
    task = _task(frame, label)
    extra = dict(extra)
    needs_proba = extra.pop("needs_proba", False)
    defaults = {c["family"]: config_to_dict(c) for c in family_defaults(get_space(task.problem_type))}
    config = {**defaults[family], **extra}
    pipeline = build_pipeline(config, task.X, task.problem_type, needs_proba=needs_proba).fit(task.X, task.y)
    save_model(pipeline, tmp_path / "model.joblib", task=task, best_config=config)
    path = export_model(tmp_path / "model.joblib")
    assert path == tmp_path / "model.skops"
    assert set(sio.get_untrusted_types(file=path)) <= SKOPS_TRUSTED_TYPES
    _assert_same_model(tmp_path / "model.joblib", path, frame.drop(columns=label))


def _tamper(src: Path, dest: Path, **changes) -> Path:
    bundle = sio.load(src, trusted=sio.get_untrusted_types(file=src))
    for key, value in changes.items():
        if key == "step":
            bundle["pipeline"].steps.insert(0, ("evil", value))
        else:
            bundle[key] = value
    sio.dump(bundle, dest)
    return dest


def test_predict_refuses_an_untrusted_type_with_one_line_and_writes_nothing(classifier_run, tmp_path, make_csv, credit_small):
    src = export_model(classifier_run, tmp_path / "good.skops")
    evil = _tamper(src, tmp_path / "evil.skops", step=FunctionTransformer(func=os.system))
    system = f"{os.system.__module__}.{os.system.__name__}"
    assert system in sio.get_untrusted_types(file=evil)
    new = make_csv(credit_small.iloc[450:].drop(columns="Status"), name="new.csv")
    preds = tmp_path / "preds.csv"
    res = _run("predict", str(evil), str(new), "--out", str(preds))
    assert res.exit_code == 2, res.output
    lines = _errors(res)
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert system in lines[0] and "skops.io.get_untrusted_types" in lines[0] and "--trust" in lines[0]
    assert "Traceback" not in res.output and res.stdout == ""
    assert not preds.exists() and not (tmp_path / ".preds.csv.tmp").exists()
    with pytest.raises(InputError, match="does not trust"):
        load_model(evil)


def test_trust_admits_a_named_type_and_only_that(classifier_run, tmp_path, make_csv, credit_small):
    src = export_model(classifier_run, tmp_path / "good.skops")
    odd = _tamper(src, tmp_path / "odd.skops", note=operator.neg)
    name = f"{operator.neg.__module__}.{operator.neg.__name__}"
    assert [t for t in sio.get_untrusted_types(file=odd) if t not in SKOPS_TRUSTED_TYPES] == [name]
    new = make_csv(credit_small.iloc[450:].drop(columns="Status"), name="new.csv")
    assert _run("predict", str(odd), str(new)).exit_code == 2
    res = _run("predict", str(odd), str(new), "--trust", name)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("prediction")
    assert load_model(odd, trusted=[name]).label == "Status"
    evil = _tamper(src, tmp_path / "evil.skops", note=operator.neg, step=FunctionTransformer(func=os.system))
    res = _run("predict", str(evil), str(new), "--trust", name)
    assert res.exit_code == 2
    unknown = _errors(res)[0].split("does not trust: ")[1].split(";")[0]
    assert unknown == f"{os.system.__module__}.{os.system.__name__}"


def test_a_pickle_named_skops_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"

    class Boom:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    joblib.dump(Boom(), tmp_path / "evil.skops")
    with pytest.raises(InputError, match="could not be read as a skops file"):
        load_model(tmp_path / "evil.skops")
    assert not marker.exists()


def test_version_checks_apply_to_skops_files(classifier_run, tmp_path, make_csv, credit_small):
    src = export_model(classifier_run, tmp_path / "good.skops")
    bundle = sio.load(src, trusted=sio.get_untrusted_types(file=src))
    old = _tamper(src, tmp_path / "old.skops", package_versions={**bundle["package_versions"], "scikit-learn": "0.24.2"})
    with pytest.raises(ModelVersionError, match="scikit-learn 0.24.2"):
        load_model(old)
    assert load_model(old, check_versions=False).problem_type == "binary"
    new = make_csv(credit_small.iloc[450:].drop(columns="Status"), name="new.csv")
    res = _run("predict", str(old), str(new))
    assert res.exit_code == 2 and len(_errors(res)) == 1 and "scikit-learn 0.24.2" in res.stderr
    res = _run("predict", str(old), str(new), "--ignore-versions")
    assert res.exit_code == 0 and res.stdout.startswith("prediction")


def test_cli_export_then_predict_matches_the_joblib_predictions(classifier_run, tmp_path, make_csv, credit_small):
    dest = tmp_path / "shared" / "credit.skops"
    dest.parent.mkdir()
    res = _run("export", str(classifier_run), "--format", "skops", "--out", str(dest))
    assert res.exit_code == 0, res.output
    assert str(dest) in res.stdout and dest.is_file()
    new = make_csv(credit_small.iloc[450:].drop(columns="Status"), name="new.csv")
    a = _run("predict", str(classifier_run / "model.joblib"), str(new))
    b = _run("predict", str(dest), str(new))
    assert a.exit_code == b.exit_code == 0 and a.stdout == b.stdout


@pytest.mark.parametrize("case", ["no-model", "missing", "bad-format", "bad-suffix", "no-such-directory"])
def test_export_refusals_exit_2_with_one_line_and_write_nothing(case, classifier_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = {
        "no-model": ([str(empty)], "holds no model.joblib"),
        "missing": ([str(tmp_path / "nope")], "does not exist"),
        "bad-format": ([str(classifier_run), "--format", "onnx", "--out", str(tmp_path / "m.skops")], "--format must be one of skops"),
        "bad-suffix": ([str(classifier_run), "--out", str(tmp_path / "m.joblib")], "must end in .skops"),
        "no-such-directory": ([str(classifier_run), "--out", str(tmp_path / "nope" / "m.skops")], "does not exist"),
    }[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = _run("export", *args[0])
    assert res.exit_code == 2, res.output
    lines = _errors(res)
    assert len(lines) == 1 and lines[0].startswith("error:") and args[1] in lines[0], lines
    assert "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_failed_export_leaves_the_previous_file_and_no_temp_file(classifier_run, tmp_path, monkeypatch):
    dest = tmp_path / "m.skops"
    dest.write_bytes(b"previous")

    def broken_dump(obj, file, **kw):
        file.write(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sio, "dump", broken_dump)
    with pytest.raises(RuntimeError):
        export_model(classifier_run, dest)
    assert dest.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["m.skops"]


def test_without_skops_the_error_says_what_to_install(classifier_run, tmp_path, monkeypatch):
    src = export_model(classifier_run, tmp_path / "good.skops")
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    for call in (lambda: load_model(src), lambda: export_model(classifier_run, tmp_path / "again.skops")):
        with pytest.raises(InputError, match=r"pip install 'autometa\[share\]'"):
            call()
    assert not (tmp_path / "again.skops").exists()
