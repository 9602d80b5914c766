"""Task: inference on real data, and every kind of bad input refused or repaired."""

from __future__ import annotations

import codecs
import gzip
import warnings
import zlib

import numpy as np
import pandas as pd
import pytest

import autometa.task as task_module
from autometa import AutometaWarning, InputError, Task, read_table


def test_credit_csv_is_read_typed_and_cleaned(credit, make_csv):
    path = make_csv(credit)
    with pytest.warns(AutometaWarning, match="rownames"):
        task = Task(path, label="Status")
    assert task.problem_type == "binary"
    assert task.metric == "balanced_accuracy"
    assert task.classes == ("bad", "good")
    assert task.X.shape == (4454, 13)
    assert "rownames" in task.dropped_columns
    assert set(task.categorical_features) == {"Home", "Marital", "Records", "Job"}
    assert task.X["Income"].isna().sum() > 0  # missing values are kept for the pipeline
    assert task.name == "data"


def test_problem_types_are_inferred(iris, diabetes, breast_cancer):
    assert Task(iris, label="target").problem_type == "multiclass"
    assert Task(breast_cancer, label="target").problem_type == "binary"
    reg = Task(diabetes, label="target")
    assert reg.problem_type == "regression" and reg.metric == "rmse"


def test_parquet_and_other_delimiters_are_read(credit, make_csv, tmp_path):
    pq = tmp_path / "credit.parquet"
    credit.to_parquet(pq)
    assert read_table(pq).shape == credit.shape
    semi = make_csv(credit, name="semi.csv", sep=";")
    assert read_table(semi).shape == credit.shape


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is empty"),
        (b"PK\x03\x04\x00\x00binary\x00zip", "looks binary"),
        (b"a,b,y\n", "no rows"),
        (b'a,b,y\n1,"2,3\n', "could not be parsed"),
        (b"a,a,y\n1,2,0\n3,4,1\n", r"duplicated column names \['a'\]"),
    ],
    ids=["empty", "binary", "header-only", "unparseable", "duplicated-columns"],
)
def test_bad_files_are_refused_in_one_line(make_csv, content, match):
    path = make_csv(content)
    with pytest.raises(InputError, match=match) as info:
        Task(path, label="y")
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Task(tmp_path / "nope.csv", label="y")


def test_wrong_delimiter_is_named(credit, make_csv):
    path = make_csv(credit.head(50), sep=";")
    with pytest.raises(InputError, match="looks ';'-separated; pass --sep ';'"):
        Task(path, label="Status", sep=",")


def test_missing_label_lists_columns(iris):
    with pytest.raises(InputError, match="'species' is not in the data; the columns are: sepal length"):
        Task(iris, label="species")


def test_label_all_missing(iris):
    df = iris.assign(target=np.nan)
    with pytest.raises(InputError, match="no values"):
        Task(df, label="target")


def test_some_labels_missing_rows_dropped_with_warning(iris):
    df = iris.copy()
    df.loc[[0, 60, 120], "target"] = np.nan
    with pytest.warns(AutometaWarning, match="Dropped 3 of 150 rows"):
        task = Task(df, label="target")
    assert len(task.y) == 147 and task.y.notna().all()


def test_single_class(iris):
    with pytest.raises(InputError, match="single class"):
        Task(iris[iris.target == 0], label="target")


def test_class_with_one_row_is_refused(iris):
    df = pd.concat([iris[iris.target < 2], iris[iris.target == 2].head(1)])
    with pytest.raises(InputError, match="Class 2 .* only 1 row"):
        Task(df, label="target")


def test_small_class_reduces_folds_with_warning(iris):
    df = pd.concat([iris[iris.target < 2], iris[iris.target == 2].head(3)])
    with pytest.warns(AutometaWarning, match="3 folds"):
        task = Task(df, label="target")
    assert task.n_splits == 3


def test_non_numeric_regression_label(credit):
    with pytest.raises(InputError, match="not numeric .* regression"):
        Task(credit, label="Home", problem_type="regression")


def test_duplicated_column_names_in_frame(iris):
    df = iris.copy()
    df.columns = ["a", "a", "b", "c", "target"]
    with pytest.raises(InputError, match=r"duplicated column names \['a'\]"):
        Task(df, label="target")


def test_id_columns_are_dropped_with_warning(credit):
    df = credit.assign(customer_id=[f"C{i:05d}" for i in range(len(credit))])
    with pytest.warns(AutometaWarning, match="customer_id"):
        task = Task(df, label="Status")
    assert "customer_id" not in task.X and "rownames" not in task.X
    assert "Income" in task.X  # an ordinary numeric column is not an ID


def test_all_features_constant(iris):
    df = pd.DataFrame({"a": 1.0, "b": "x", "target": iris.target})
    with pytest.raises(InputError, match="No usable feature column"):
        Task(df, label="target")


def test_file_too_large_for_memory(credit, make_csv, monkeypatch):
    path = make_csv(credit)
    monkeypatch.setattr(task_module, "_available_memory_bytes", lambda: 100_000)
    with pytest.raises(InputError, match="needs about .* of memory but only"):
        Task(path, label="Status")


def test_unknown_metric_and_wrong_metric_for_problem(iris):
    with pytest.raises(InputError, match="Unknown metric 'f7'; choose one of: balanced_accuracy"):
        Task(iris, label="target", metric="f7")
    with pytest.raises(InputError, match="'rmse' does not apply to a multiclass task"):
        Task(iris, label="target", metric="rmse")


@pytest.mark.parametrize("budget", [0, -5, float("nan")])
def test_non_positive_budget(iris, budget):
    with pytest.raises(InputError, match="time budget must be a positive"):
        Task(iris, label="target", time_budget_s=budget)


def test_task_is_frozen_and_fingerprint_is_stable(iris):
    a, b = Task(iris, label="target"), Task(iris.copy(), label="target")
    with pytest.raises(AttributeError):
        a.seed = 3  # type: ignore[misc]
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != Task(iris, label="target", seed=1).fingerprint()


def test_the_callers_frame_is_not_modified(iris):
    df = iris.rename(columns={"sepal length (cm)": 0})
    before = df.copy()
    Task(df, label="target")
    pd.testing.assert_frame_equal(df, before)


# --------------------------------------------------------------- text encodings
# What spreadsheet programs export: UTF-8 with a byte-order mark (Excel "CSV UTF-8"), and
# UTF-16 LE with a mark, tab-separated (Excel "Unicode text"); UTF-16 without a mark from
# other tools. Each reads to the same table, so to the same task and fingerprint.


def _credit_text(credit: pd.DataFrame, sep: str = ",") -> str:
    return credit.to_csv(index=False, sep=sep, lineterminator="\r\n")


def _fingerprint(path) -> str:
    with pytest.warns(AutometaWarning, match="rownames"):
        return Task(path, label="Status").fingerprint()


@pytest.mark.parametrize("sep", [",", ";"])
def test_utf8_with_bom_is_read_without_the_mark(credit, make_csv, sep):
    path = make_csv(codecs.BOM_UTF8 + _credit_text(credit, sep).encode("utf-8"))
    df = read_table(path)
    assert list(df.columns) == list(credit.columns)  # "rownames", not "\ufeffrownames"
    pd.testing.assert_frame_equal(df, read_table(make_csv(credit, name="plain.csv")))


def test_utf16_le_with_bom_tab_separated_is_read(credit, make_csv):
    plain = make_csv(credit, name="plain.csv")
    path = make_csv(codecs.BOM_UTF16_LE + _credit_text(credit, "\t").encode("utf-16-le"))
    df = read_table(path)
    assert list(df.columns) == list(credit.columns)
    pd.testing.assert_frame_equal(df, read_table(plain))
    assert _fingerprint(path) == _fingerprint(plain)


@pytest.mark.parametrize("codec, sep", [("utf-16-le", "\t"), ("utf-16-be", ",")])
def test_utf16_without_bom_is_recognised(credit, make_csv, codec, sep):
    path = make_csv(_credit_text(credit, sep).encode(codec))
    df = read_table(path)
    assert list(df.columns) == list(credit.columns)
    pd.testing.assert_frame_equal(df, read_table(make_csv(credit, name="plain.csv")))


def test_text_that_is_not_utf8_is_read_as_cp1252_with_a_warning(credit, make_csv):
    df = credit.astype({"Home": str})
    df.loc[len(df) - 1, "Home"] = "propriété"  # past the first 64 KiB the sniffer reads
    path = make_csv(df.to_csv(index=False).encode("cp1252"))
    assert path.stat().st_size > 65536
    with pytest.warns(AutometaWarning, match="not valid UTF-8; read it as cp1252"):
        read = read_table(path)
    assert read["Home"].iloc[-1] == "propriété" and read.shape == credit.shape


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda text: gzip.compress(text.encode()), id="gzip"),
        pytest.param(lambda text: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + zlib.compress(text.encode()), id="png"),
        # 16-bit integers in the printable range: NUL bytes like UTF-16, but no lines.
        pytest.param(lambda text: np.arange(32, 127, dtype="<u2").tobytes() * 50, id="uint16-array"),
    ],
)
def test_binary_files_are_still_refused(credit, make_csv, content):
    path = make_csv(content(_credit_text(credit)))
    with pytest.raises(InputError, match="looks binary") as info:
        read_table(path)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ large files
def _tricky(credit: pd.DataFrame) -> pd.DataFrame:
    """credit plus every column kind a chunked read must reconcile across chunks."""
    n = len(credit)
    df = credit.copy()
    df["customer"] = [f"C{i:05d}" for i in range(n)]  # a string identifier
    df["counter"] = np.arange(n) + 7  # a row counter, integers
    late_word = df["Income"].astype(object)
    late_word.iloc[n - 3] = "unknown"  # numbers, then a word in the last chunk: text (mostly numbers)
    df["income_text"] = late_word
    late_nan = pd.Series(np.arange(n) % 9, dtype="float64")
    late_nan.iloc[n - 5] = np.nan  # integers, then a missing value
    df["late_nan"] = late_nan
    words = df["Home"].astype(object)
    words.iloc[: n // 2] = np.arange(n // 2) % 4  # numbers first, words later: text
    df["mixed"] = words
    df["flag"] = np.arange(n) % 3 == 0
    df["code"] = np.arange(n) % 5 + 10  # integer codes, declared categorical
    status = df["Status"].astype(object)
    status.iloc[-10:] = None  # at the end: the counter stays consecutive
    df["Status"] = status
    return df


def test_a_large_csv_is_read_in_chunks_into_the_same_task(credit, make_csv, monkeypatch):
    """Above _COMPACT_MIN_BYTES a Task reads its CSV in chunks, text as categoricals: the
    task is the same as one read at once (data, fingerprint, dropped columns, notes)."""
    path = make_csv(_tricky(credit))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = Task(path, label="Status", categorical_columns=("code",))
        monkeypatch.setattr(task_module, "_COMPACT_MIN_BYTES", 0)
        monkeypatch.setattr(task_module, "_CHUNK_ROWS", 500)
        chunked = Task(path, label="Status", categorical_columns=("code",))
    assert chunked.fingerprint() == whole.fingerprint()
    pd.testing.assert_frame_equal(chunked.X, whole.X)
    pd.testing.assert_series_equal(chunked.y, whole.y)
    assert chunked.dropped_columns == whole.dropped_columns
    assert {"customer", "counter", "rownames"} <= set(chunked.dropped_columns)
    assert chunked.notes == whole.notes
    assert whole.X["income_text"].dtype == float and isinstance(whole.X["mixed"].dtype, pd.CategoricalDtype)
    assert list(whole.X["code"].cat.categories) == ["10", "11", "12", "13", "14"]
    assert read_table(path).shape == (len(credit), credit.shape[1] + 7)  # the public reader: one read, strings

