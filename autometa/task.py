"""Task: a frozen description of one learning problem, and the table reader behind it.

A :class:`Task` holds validated data (features ``X`` and label ``y``), the problem type,
the metric to optimize, a seed and a time budget. Every problem found in the input is
either repaired with an :class:`~autometa.exceptions.AutometaWarning` (rows with a
missing label, ID columns, constant columns) or refused with a one-line
:class:`~autometa.exceptions.InputError` that names the problem and the fix.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autometa.exceptions import AutometaWarning, InputError
from autometa.metrics import PROBLEM_TYPES, Metric, default_metric, get_metric

__all__ = ["Task", "read_table", "PROBLEM_TYPES", "MIN_CLASS_COUNT", "DEFAULT_FOLDS"]

#: A class needs this many rows, or stratified resampling cannot keep it in every split.
MIN_CLASS_COUNT = 2
#: Cross-validation folds used when every class has enough rows.
DEFAULT_FOLDS = 5

_DELIMITERS = (",", ";", "\t", "|")
_PARQUET_SUFFIXES = (".parquet", ".pq")
# In-memory size of a parsed table relative to its file; parquet is compressed.
_MEMORY_FACTOR = {"csv": 3.0, "parquet": 8.0}
_ID_NAME = re.compile(r"^(id|ids|index|rownames|row|row_?id|unnamed: ?\d+|.*[_ .-]id)$", re.IGNORECASE)


def _available_memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _sniff_delimiter(text: str) -> str | None:
    """The candidate delimiter that splits every sampled line into the same >1 fields."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return None
    best, best_fields = None, 1
    for delim in _DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delim)]
        except csv.Error:
            continue
        n_fields = Counter(counts).most_common(1)[0][0]
        consistent = sum(c == n_fields for c in counts) >= 0.9 * len(counts)
        if consistent and n_fields > best_fields:
            best, best_fields = delim, n_fields
    return best


def read_table(path: str | os.PathLike[str], *, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame, refusing bad files with a clear error.

    Parameters
    ----------
    path : path-like
        A ``.csv`` (any delimiter among ``, ; TAB |``) or ``.parquet`` file. A CSV file
        may be UTF-8, UTF-16 or UTF-32 with a byte-order mark (what spreadsheet programs
        export), UTF-16 without one, or UTF-8; a file that is not valid UTF-8 is read as
        cp1252, else latin-1, with a warning.
    sep : str, optional
        CSV delimiter. By default it is detected from the first lines.

    Warns
    -----
    AutometaWarning
        A CSV file read in a fallback encoding because it is not valid UTF-8.

    Raises
    ------
    InputError
        Missing, empty, binary or unparseable file; a delimiter that does not split the
        header; duplicated column names; a file too large for the available memory.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"Data file '{p}' does not exist; check the path.")
    if p.is_dir():
        raise InputError(f"Data path '{p}' is a directory; give a CSV or Parquet file.")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"Data file '{p}' is empty (0 bytes); give a CSV or Parquet file with a header and rows.")
    with p.open("rb") as fh:
        head = fh.read(65536)
    kind = "parquet" if head[:4] == b"PAR1" or p.suffix.lower() in _PARQUET_SUFFIXES else "csv"

    available = _available_memory_bytes()
    needed = size * _MEMORY_FACTOR[kind]
    if needed > 0.8 * available:
        raise InputError(
            f"Data file '{p}' is {size / 2**30:.1f} GiB, which needs about {needed / 2**30:.1f} GiB of "
            f"memory but only {available / 2**30:.1f} GiB is free; subsample the file or use a larger machine."
        )

    try:
        if kind == "parquet":
            df = _read_parquet(p)
        else:
            df = _read_csv(p, head, sep)
    except MemoryError:
        raise InputError(
            f"Data file '{p}' does not fit in memory; subsample the file or use a larger machine."
        ) from None
    if df.shape[0] == 0:
        raise InputError(f"Data file '{p}' has a header but no rows; give a file with data rows.")
    return df


def _read_parquet(p: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises many types for corrupt files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"Data file '{p}' is not a readable Parquet file ({first}); re-export it.") from None


# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one. The
# "utf-8-sig", "utf-16" and "utf-32" codecs drop the mark, so no column name keeps "\ufeff".
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# A file that is not valid UTF-8 is read as Windows-1252 (what spreadsheets save on Western
# European Windows), and one that is not valid Windows-1252 either as Latin-1 (any byte).
_FALLBACK_ENCODING = {"utf-8": "cp1252", "cp1252": "latin-1"}
# Control characters a text table never holds (tab, line feed and carriage return it does).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _decode_head(head: bytes, codec: str) -> str | None:
    """The first bytes of a file as text, or None when they are not valid ``codec``; a
    multi-byte character cut at the end of the sample is dropped."""
    try:
        return head.decode(codec)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return None
        return head[: exc.start].decode(codec)


def _utf16_without_bom(head: bytes) -> tuple[str, str] | None:
    """``(codec, text)`` for UTF-16 without a byte-order mark, recognised by the NUL byte
    that follows (little-endian) or precedes (big-endian) every character below U+0100 of
    mostly-ASCII text in lines (a header and rows); None when the bytes are not such text."""
    sample = head[: len(head) // 2 * 2]
    units = len(sample) // 2
    nul_even, nul_odd = sample[0::2].count(0), sample[1::2].count(0)
    if units == 0 or max(nul_even, nul_odd) < 0.5 * units:
        return None
    codec = "utf-16-le" if nul_odd > nul_even else "utf-16-be"
    text = _decode_head(sample, codec)
    if text is None or "\n" not in text and "\r" not in text or _CONTROL_CHARS.search(text):
        return None
    return codec, text


def _detect_encoding(head: bytes) -> tuple[str, str] | None:
    """``(codec, text)`` of a CSV file from its first bytes: the codec its byte-order mark
    names; else UTF-16 when NUL bytes alternate with ASCII; else UTF-8, or the first
    fallback encoding the bytes are valid in. None when the bytes are not text."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            text = _decode_head(head, codec)
            return None if text is None or "\x00" in text else (codec, text)
    if b"\x00" in head:
        return _utf16_without_bom(head)
    codec = "utf-8"
    text = _decode_head(head, codec)
    while text is None:
        codec = _FALLBACK_ENCODING[codec]
        try:
            text = head.decode(codec)
        except UnicodeDecodeError:
            continue
    return codec, text


def _read_csv(p: Path, head: bytes, sep: str | None) -> pd.DataFrame:
    detected = _detect_encoding(head)
    if detected is None:
        raise InputError(
            f"Data file '{p}' looks binary, not like a CSV text file; give a CSV or Parquet file."
        )
    encoding, text = detected
    sniffed = _sniff_delimiter(text)
    header_line = text.splitlines()[0] if text.splitlines() else ""
    if sep is None:
        sep = sniffed or ","
    elif len(next(csv.reader([header_line], delimiter=sep), [])) <= 1 and sniffed and sniffed != sep:
        raise InputError(
            f"Data file '{p}' has a single column with delimiter {sep!r} but looks {sniffed!r}-separated; "
            f"pass --sep {sniffed!r} (or sep={sniffed!r})."
        )
    header = next(csv.reader([header_line], delimiter=sep), [])
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise InputError(
            f"Data file '{p}' has duplicated column names {dupes}; rename them so each column is unique."
        )
    df, encoding = _parse_csv(p, sep, encoding)
    if encoding in _FALLBACK_ENCODING.values():
        warnings.warn(
            f"Data file '{p}' is not valid UTF-8; read it as {encoding}. If accented characters look "
            "wrong, save the file as UTF-8.",
            AutometaWarning,
            stacklevel=3,
        )
    return df


def _parse_csv(p: Path, sep: str, encoding: str) -> tuple[pd.DataFrame, str]:
    """The parsed file and the encoding it was read in: a file not valid in ``encoding``
    is read again in the next fallback encoding, when there is one."""
    try:
        return pd.read_csv(p, sep=sep, encoding=encoding, low_memory=False), encoding
    except pd.errors.EmptyDataError:
        raise InputError(f"Data file '{p}' has no columns; give a CSV file with a header row.") from None
    except (pd.errors.ParserError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        if isinstance(exc, UnicodeDecodeError) and encoding in _FALLBACK_ENCODING:
            return _parse_csv(p, sep, _FALLBACK_ENCODING[encoding])
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"Data file '{p}' could not be parsed as CSV with delimiter {sep!r} ({first}); "
            "check the delimiter and quoting."
        ) from None


def _is_id_column(name: str, col: pd.Series) -> bool:
    """A column whose values identify rows rather than describe them."""
    values = col.dropna()
    n = len(values)
    if n < 20 or values.nunique() < n:
        return False
    if _ID_NAME.match(str(name).strip()):
        return True
    if pd.api.types.is_integer_dtype(values):
        diffs = np.diff(np.sort(values.to_numpy()))
        return bool(np.all(diffs == 1))  # a row counter
    # Every row a different string: names, keys, free text. Not a usable feature.
    return bool(pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values))


def _infer_problem_type(y: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "binary" if y.nunique() == 2 else "multiclass"
    values = y.to_numpy(dtype=float)
    n_unique = y.nunique()
    integral = bool(np.all(np.isclose(values, np.round(values))))
    if n_unique == 2:
        return "binary"
    if integral and n_unique <= max(10, min(20, int(0.05 * len(y)))):
        return "multiclass"
    return "regression"


@dataclass(frozen=True, eq=False)
class Task:
    """One supervised learning problem, validated on construction.

    Parameters
    ----------
    data : DataFrame or path-like
        The table: a pandas DataFrame, or the path of a CSV or Parquet file.
    label : str
        Name of the target column.
    problem_type : {"binary", "multiclass", "regression"}, optional
        Inferred from the label when not given.
    metric : str, optional
        Metric to optimize (see :data:`autometa.metrics.METRICS`). Defaults to balanced
        accuracy for classification and RMSE for regression.
    seed : int
        Seed for resampling, models and optimizers.
    time_budget_s : float
        Wall-clock budget in seconds for a whole tuning run.
    sep : str, optional
        CSV delimiter; detected when not given.
    categorical_columns : tuple of str
        Numeric columns to treat as categorical (e.g. integer codes).
    drop_id_columns : bool
        Drop columns that identify rows (all-unique IDs, row counters) with a warning.
    name : str, optional
        A name for reports; the file stem by default.

    Attributes
    ----------
    X : DataFrame
        Feature columns after validation (ID and constant columns removed).
    y : Series
        The label, rows with a missing label removed.
    classes : tuple or None
        Sorted class labels for classification.
    n_splits : int
        Cross-validation folds the smallest class allows (at most ``DEFAULT_FOLDS``).
    dropped_columns : dict
        Column name -> reason, for every column removed.
    notes : tuple of str
        One line per repair made to the input (also issued as warnings).
    """

    data: Any = field(repr=False)
    label: str
    problem_type: str | None = None
    metric: str | None = None
    seed: int = 0
    time_budget_s: float = 60.0
    sep: str | None = None
    categorical_columns: tuple[str, ...] = ()
    drop_id_columns: bool = True
    name: str | None = None

    X: pd.DataFrame = field(init=False, repr=False)
    y: pd.Series = field(init=False, repr=False)
    classes: tuple[Any, ...] | None = field(init=False, repr=False)
    n_splits: int = field(init=False, repr=False)
    dropped_columns: dict[str, str] = field(init=False, repr=False)
    notes: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        notes: list[str] = []

        def note(msg: str) -> None:
            notes.append(msg)
            warnings.warn(msg, AutometaWarning, stacklevel=4)

        if self.time_budget_s is None or not np.isfinite(self.time_budget_s) or self.time_budget_s <= 0:
            raise InputError(
                f"The time budget must be a positive number of seconds; got {self.time_budget_s!r}."
            )
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise InputError(f"The seed must be an integer; got {self.seed!r}.")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise InputError(
                f"Unknown problem type {self.problem_type!r}; choose one of: {', '.join(PROBLEM_TYPES)}."
            )
        if self.metric is not None:
            get_metric(self.metric)  # unknown names fail before the data is read

        if isinstance(self.data, pd.DataFrame):
            df = self.data.copy(deep=False)  # never rename or drop in the caller's frame
            dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
            if dupes:
                raise InputError(f"The data has duplicated column names {dupes}; rename them so each column is unique.")
            if df.shape[0] == 0:
                raise InputError("The data has no rows; give a table with data rows.")
            name = self.name or "data"
        elif isinstance(self.data, (str, os.PathLike)):
            df = read_table(self.data, sep=self.sep)
            name = self.name or Path(self.data).stem
        else:
            raise InputError(
                f"The data must be a pandas DataFrame or the path of a CSV/Parquet file; got {type(self.data).__name__}."
            )
        set_(self, "name", name)
        df.columns = [str(c) for c in df.columns]

        if self.label not in df.columns:
            cols = ", ".join(df.columns[:30]) + (", ..." if df.shape[1] > 30 else "")
            hint = ""
            if df.shape[1] == 1 and any(d in df.columns[0] for d in _DELIMITERS):
                hint = " The header was read as one column: check the delimiter (--sep)."
            raise InputError(f"Label column {self.label!r} is not in the data; the columns are: {cols}.{hint}")

        y = df[self.label]
        missing = y.isna() | y.astype(str).str.strip().eq("")
        if missing.all():
            raise InputError(f"Label column {self.label!r} has no values (all missing); choose another label column.")
        if missing.any():
            note(f"Dropped {int(missing.sum())} of {len(y)} rows whose label {self.label!r} is missing.")
            df = df.loc[~missing]
            y = y.loc[~missing]
        X = df.drop(columns=[self.label])
        y = y.reset_index(drop=True)
        X = X.reset_index(drop=True)

        problem_type = self.problem_type
        if problem_type == "regression":
            y_num = pd.to_numeric(y, errors="coerce")
            if y_num.isna().any():
                bad = _jsonable(y[y_num.isna()].iloc[0])
                raise InputError(
                    f"Label column {self.label!r} is not numeric (e.g. {bad!r}) but the problem type is regression; "
                    "use a classification problem type or clean the label."
                )
            y = y_num.astype(float)
        elif problem_type is None:
            problem_type = _infer_problem_type(y)

        classes = None
        n_splits = DEFAULT_FOLDS
        if problem_type != "regression":
            counts = y.value_counts()
            if len(counts) < 2:
                raise InputError(
                    f"Label column {self.label!r} has a single class ({_jsonable(counts.index[0])!r}); "
                    "classification needs at least two classes."
                )
            if problem_type == "binary" and len(counts) > 2:
                raise InputError(
                    f"Label column {self.label!r} has {len(counts)} classes but the problem type is binary; "
                    "use multiclass."
                )
            if problem_type == "multiclass" and len(counts) == 2:
                problem_type = "binary"
            smallest = _jsonable(counts.idxmin())
            n_small = int(counts.min())
            if n_small < MIN_CLASS_COUNT:
                raise InputError(
                    f"Class {smallest!r} of label {self.label!r} has only {n_small} row; each class needs at "
                    f"least {MIN_CLASS_COUNT} for cross-validation: remove those rows or merge the class."
                )
            if n_small < DEFAULT_FOLDS:
                n_splits = n_small
                note(
                    f"Class {smallest!r} has only {n_small} rows; cross-validation uses {n_splits} folds "
                    f"instead of {DEFAULT_FOLDS}."
                )
            try:
                classes = tuple(sorted(counts.index.tolist()))
            except TypeError:  # mixed types
                classes = tuple(sorted(counts.index.tolist(), key=str))
        set_(self, "problem_type", problem_type)

        metric = self.metric or default_metric(problem_type)
        set_(self, "metric", get_metric(metric, problem_type).name)

        dropped: dict[str, str] = {}
        for col in list(X.columns):
            if self.drop_id_columns and col not in self.categorical_columns and _is_id_column(col, X[col]):
                dropped[col] = "identifier (all values unique)"
            elif X[col].nunique(dropna=False) <= 1:
                dropped[col] = "constant"
        kept = [c for c in X.columns if c not in dropped]
        if not kept:
            raise InputError(
                "No usable feature column: every column besides the label is constant or an identifier "
                f"({', '.join(f'{c}: {r}' for c, r in dropped.items()) or 'no other columns'})."
            )
        ids = [c for c, r in dropped.items() if r.startswith("identifier")]
        if ids:
            note(f"Dropped identifier column(s) {ids}: every value is unique, so they cannot generalize.")
        consts = [c for c, r in dropped.items() if r == "constant"]
        if consts:
            note(f"Dropped constant column(s) {consts}.")
        X = X[kept]
        unknown_cat = [c for c in self.categorical_columns if c not in X.columns]
        if unknown_cat:
            raise InputError(f"categorical_columns names column(s) {unknown_cat} that are not features of the data.")
        X = _normalize_dtypes(X, self.categorical_columns)

        set_(self, "X", X)
        set_(self, "y", y)
        set_(self, "classes", classes)
        set_(self, "n_splits", n_splits)
        set_(self, "dropped_columns", dropped)
        set_(self, "categorical_columns", tuple(self.categorical_columns))
        set_(self, "notes", tuple(notes))

    # ------------------------------------------------------------------ derived views
    @property
    def metric_obj(self) -> Metric:
        """The :class:`~autometa.metrics.Metric` this task optimizes."""
        return get_metric(str(self.metric), self.problem_type)

    @property
    def is_classification(self) -> bool:
        return self.problem_type != "regression"

    @property
    def categorical_features(self) -> list[str]:
        """Feature columns treated as categorical."""
        return [c for c in self.X.columns if isinstance(self.X[c].dtype, pd.CategoricalDtype)]

    @property
    def numeric_features(self) -> list[str]:
        return [c for c in self.X.columns if not isinstance(self.X[c].dtype, pd.CategoricalDtype)]

    def fingerprint(self) -> str:
        """A hash of the data, label and settings that define what a trial means."""
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.X, index=False).to_numpy().tobytes())
        h.update(pd.util.hash_pandas_object(self.y.astype(str), index=False).to_numpy().tobytes())
        h.update(f"{self.label}|{self.problem_type}|{self.metric}|{self.seed}|{self.n_splits}".encode())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary of the task."""
        return {
            "name": self.name,
            "label": self.label,
            "problem_type": self.problem_type,
            "metric": self.metric,
            "n_rows": int(self.X.shape[0]),
            "n_features": int(self.X.shape[1]),
            "n_numeric": len(self.numeric_features),
            "n_categorical": len(self.categorical_features),
            "classes": None if self.classes is None else [_jsonable(c) for c in self.classes],
            "dropped_columns": self.dropped_columns,
            "seed": int(self.seed),
            "time_budget_s": float(self.time_budget_s),
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _normalize_dtypes(X: pd.DataFrame, categorical: tuple[str, ...]) -> pd.DataFrame:
    """Numeric columns to float, everything else (strings, bools, declared codes) to category."""
    out = {}
    for col in X.columns:
        s = X[col]
        if col in categorical or not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
                num = pd.to_numeric(s, errors="coerce")
                # A numeric column with a few unparseable cells stays numeric.
                if col not in categorical and num.notna().sum() >= 0.95 * s.notna().sum() and s.notna().any():
                    out[col] = num.astype(float)
                    continue
            out[col] = s.astype(str).where(s.notna(), None).astype("category")
        else:
            out[col] = s.astype(float)
    return pd.DataFrame(out, index=X.index)
