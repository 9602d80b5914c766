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
from pandas.api.types import union_categoricals

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
#: CSV files larger than this are read by a Task in chunks of ``_CHUNK_ROWS`` rows, text
#: columns stored as categoricals at once (a smaller peak than Python strings for all rows).
_COMPACT_MIN_BYTES = 64 * 2**20
_CHUNK_ROWS = 50_000
_TEXT_COLUMNS = "autometa_text_columns"
_INTEGER_COLUMNS = "autometa_integer_columns"
#: Checks that would scan a whole column (all values unique? constant? numbers?) look at an
#: evenly spaced sample of this many values first, and scan everything only when the
#: sample cannot decide.
_SAMPLE_VALUES = 2000
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
    return _read(Path(path), sep, compact_except=None)


def _read(p: Path, sep: str | None, *, compact_except: str | None) -> pd.DataFrame:
    """:func:`read_table`; with ``compact_except`` (a column name), a CSV file larger than
    ``_COMPACT_MIN_BYTES`` is read in chunks and its text columns other than that one are
    stored as categoricals chunk by chunk (named in ``df.attrs[_TEXT_COLUMNS]``), so the
    parse never holds the whole file as Python strings."""
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
            compact = compact_except if size > _COMPACT_MIN_BYTES else None
            df = _read_csv(p, head, sep, compact_except=compact)
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


def _read_csv(p: Path, head: bytes, sep: str | None, *, compact_except: str | None = None) -> pd.DataFrame:
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
    df, encoding = _parse_csv(p, sep, encoding, compact_except)
    if encoding in _FALLBACK_ENCODING.values():
        warnings.warn(
            f"Data file '{p}' is not valid UTF-8; read it as {encoding}. If accented characters look "
            "wrong, save the file as UTF-8.",
            AutometaWarning,
            stacklevel=3,
        )
    return df


def _parse_csv(p: Path, sep: str, encoding: str, compact_except: str | None = None) -> tuple[pd.DataFrame, str]:
    """The parsed file and the encoding it was read in: a file not valid in ``encoding``
    is read again in the next fallback encoding, when there is one."""
    try:
        if compact_except is not None:
            return _parse_csv_compact(p, sep, encoding, compact_except), encoding
        return pd.read_csv(p, sep=sep, encoding=encoding, low_memory=False), encoding
    except pd.errors.EmptyDataError:
        raise InputError(f"Data file '{p}' has no columns; give a CSV file with a header row.") from None
    except (pd.errors.ParserError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        if isinstance(exc, UnicodeDecodeError) and encoding in _FALLBACK_ENCODING:
            return _parse_csv(p, sep, _FALLBACK_ENCODING[encoding], compact_except)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"Data file '{p}' could not be parsed as CSV with delimiter {sep!r} ({first}); "
            "check the delimiter and quoting."
        ) from None


def _is_text(s: pd.Series) -> bool:
    """A column of strings (missing values aside)."""
    if isinstance(s.dtype, pd.StringDtype):
        return True
    return bool(pd.api.types.is_object_dtype(s.dtype) and pd.api.types.infer_dtype(s, skipna=True) == "string")


def _as_text_category(s: pd.Series) -> pd.Series:
    """A column as a categorical of its values' strings (missing values stay missing)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s
    return s.astype(str).where(s.notna(), None).astype("category")


def _count_lines(p: Path) -> int:
    """Line breaks in ``p`` (an upper bound of its rows: a quoted field may hold one)."""
    count = 0
    with p.open("rb") as fh:
        while block := fh.read(1 << 24):
            count += block.count(b"\n")
    return count + 1


def _parse_csv_compact(p: Path, sep: str, encoding: str, keep: str) -> pd.DataFrame:
    """Read ``p`` in chunks of ``_CHUNK_ROWS`` rows into a frame that holds the table about
    once, its peak not much more: the numeric columns (all but ``keep``) are written
    straight into one preallocated float block, sized by the file's line count; every text
    column except ``keep`` becomes a categorical in each chunk, the chunks' categories
    united (sorted). A column that is numbers in one chunk and text in another is text
    throughout, as one read makes it; columns of integers only are floats in the block,
    named in ``df.attrs[_INTEGER_COLUMNS]`` (the Task makes every number a float anyway)."""
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return pd.read_csv(p, sep=sep, encoding=encoding, low_memory=False)
    n_max = _count_lines(p)
    block: np.ndarray | None = None
    numeric: dict[str, int] = {}  # column -> row of the block
    integral: dict[str, bool] = {}
    pieces: dict[str, list[Any]] = {}
    columns: list[str] = []
    offset = 0
    with pd.read_csv(p, sep=sep, encoding=encoding, chunksize=_CHUNK_ROWS, low_memory=False) as reader:
        for chunk in reader:
            m = len(chunk)
            if block is None:
                columns = list(chunk.columns)
                numeric = {c: j for j, c in enumerate(c for c in columns if c != keep and chunk[c].dtype.kind in "fi")}
                integral = {c: chunk[c].dtype.kind == "i" for c in numeric}
                block = np.empty((len(numeric), n_max), dtype=np.float64)
            for col in columns:
                s = chunk[col]
                if col in numeric and s.dtype.kind in "fi":
                    block[numeric[col], offset : offset + m] = s.to_numpy(dtype=np.float64)
                    integral[col] = integral[col] and s.dtype.kind == "i"
                    continue
                if col in numeric:  # numbers so far, text from here on: the numbers become pieces
                    done = block[numeric.pop(col), :offset]
                    kind = np.int64 if integral.pop(col) else np.float64
                    pieces[col] = [pd.Series(done.astype(kind))] if offset else []
                if col != keep and _is_text(s):
                    s = s.astype("category")
                pieces.setdefault(col, []).append(s.reset_index(drop=True))
            offset += m
    if block is None:  # a header and no rows: read_table says so
        return pd.read_csv(p, sep=sep, encoding=encoding, low_memory=False)
    frames = []
    if numeric:
        rows = list(numeric.values())
        values = block[:, :offset] if rows == list(range(len(block))) else block[rows, :offset]
        frames.append(pd.DataFrame(values.T, columns=list(numeric), copy=False))
    text, others = [], {}
    for col in list(pieces):
        parts = pieces.pop(col)
        if col != keep and any(isinstance(x.dtype, pd.CategoricalDtype) for x in parts):
            united = union_categoricals([_as_text_category(x).array for x in parts], sort_categories=True)
            others[col] = pd.Series(united)
            text.append(col)
        else:
            others[col] = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if others:
        frames.append(pd.DataFrame(others))
    df = pd.concat(frames, axis=1)[columns] if len(frames) > 1 else frames[0][columns]
    df.attrs[_TEXT_COLUMNS] = text
    df.attrs[_INTEGER_COLUMNS] = [c for c in numeric if integral[c]]  # integers, stored as floats
    return df


def _sample(values: pd.Series) -> pd.Series:
    """At most ``_SAMPLE_VALUES`` evenly spaced values of ``values`` (all of a short one)."""
    if len(values) <= _SAMPLE_VALUES:
        return values
    return values.iloc[np.linspace(0, len(values) - 1, _SAMPLE_VALUES).astype(np.int64)]


def _is_id_column(name: str, col: pd.Series, *, text: bool = False, integer: bool = False) -> bool:
    """A column whose values identify rows rather than describe them; ``text``: a
    categorical that holds a text column, ``integer``: floats that hold an integer column
    (both read compactly), each judged as what it holds."""
    values = col.dropna() if col.hasnans else col
    n = len(values)
    if n < 20 or _sample(values).nunique() < min(n, _SAMPLE_VALUES) or values.nunique() < n:
        return False  # a repeated value in the sample settles it without counting them all
    if _ID_NAME.match(str(name).strip()):
        return True
    if integer or pd.api.types.is_integer_dtype(values):
        diffs = np.diff(np.sort(values.to_numpy()))
        return bool(np.all(diffs == 1))  # a row counter
    # Every row a different string: names, keys, free text. Not a usable feature.
    return bool(text or pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values))


def _is_constant(col: pd.Series) -> bool:
    """At most one distinct value (missing counts as a value); a sample with two settles it."""
    return _sample(col).nunique(dropna=False) <= 1 and col.nunique(dropna=False) <= 1


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

    Notes
    -----
    A CSV file larger than 64 MB is read in chunks straight into the task's column types
    (numbers into one float block, text into categoricals), so that reading it never holds
    the parser's buffers and Python strings for every row at once; the task is the same
    as one read at once would give (see ``experiments/scale_check.py`` for the peaks).
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
            df = _read(Path(self.data), self.sep, compact_except=self.label)
            name = self.name or Path(self.data).stem
        else:
            raise InputError(
                f"The data must be a pandas DataFrame or the path of a CSV/Parquet file; got {type(self.data).__name__}."
            )
        set_(self, "name", name)
        # Text columns that _read stored as categoricals and integer columns it stored as
        # floats (a large CSV file); none for a frame.
        from_file = not isinstance(self.data, pd.DataFrame)
        text_columns = frozenset(df.attrs.pop(_TEXT_COLUMNS, ())) if from_file else frozenset()
        integer_columns = frozenset(df.attrs.pop(_INTEGER_COLUMNS, ())) if from_file else frozenset()
        df.columns = [str(c) for c in df.columns]

        if self.label not in df.columns:
            cols = ", ".join(df.columns[:30]) + (", ..." if df.shape[1] > 30 else "")
            hint = ""
            if df.shape[1] == 1 and any(d in df.columns[0] for d in _DELIMITERS):
                hint = " The header was read as one column: check the delimiter (--sep)."
            raise InputError(f"Label column {self.label!r} is not in the data; the columns are: {cols}.{hint}")

        y = df[self.label]
        missing = y.isna()
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):  # a blank string is missing
            missing = missing | y.astype(str).str.strip().eq("")
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
            if self.drop_id_columns and col not in self.categorical_columns and _is_id_column(
                col, X[col], text=col in text_columns, integer=col in integer_columns
            ):
                dropped[col] = "identifier (all values unique)"
            elif _is_constant(X[col]):
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
        X = _normalize_dtypes(X, self.categorical_columns, text_columns, integer_columns)

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


def _normalize_dtypes(
    X: pd.DataFrame,
    categorical: tuple[str, ...],
    text: frozenset[str] = frozenset(),
    integer: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Numeric columns to float, everything else (strings, bools, declared codes) to category.

    A text column stays numeric when at least 95% of its present values are numbers. ``text``
    names categoricals that hold text columns (read compactly): they are judged on their
    categories, with the same outcome as their strings; ``integer`` names float columns
    that hold integers (read compactly), whose category labels are those of integers.
    """
    out = X.copy(deep=False)
    for col in X.columns:
        s = X[col]
        if col in integer and col in categorical:
            s = s.astype(np.int64)
        if col in text:
            number = None if col in categorical else _numeric_categories(s)
            new = s.cat.remove_unused_categories() if number is None else number
        elif col in categorical or not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            if (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)) and (
                col not in categorical and s.notna().any() and _mostly_numbers(s)
            ):
                new = pd.to_numeric(s, errors="coerce").astype(float)
            else:
                new = s.astype(str).where(s.notna(), None).astype("category")
        elif s.dtype == np.float64:
            continue  # float columns stay where they are (no copy of a tall table's float block)
        else:
            new = s.astype(float)
        out[col] = new
    return out


def _mostly_numbers(s: pd.Series) -> bool:
    """At least 95% of the present values of a text column parse as numbers. An evenly
    spaced sample where fewer than half parse settles it (the usual text column) without
    converting every value."""
    present = s.dropna() if s.hasnans else s
    sample = _sample(present)
    if len(sample) < len(present) and pd.to_numeric(sample, errors="coerce").notna().mean() < 0.5:
        return False
    return bool(pd.to_numeric(present, errors="coerce").notna().sum() >= 0.95 * len(present))


def _numeric_categories(s: pd.Series) -> pd.Series | None:
    """A categorical of strings as floats when at least 95% of its present values parse as
    numbers (each category is parsed once), else None."""
    number = pd.to_numeric(pd.Series(np.asarray(s.cat.categories, dtype=object)), errors="coerce").to_numpy(float)
    codes = s.cat.codes.to_numpy()
    present = codes >= 0
    if not present.any():
        return None
    values = np.where(present, number[np.maximum(codes, 0)], np.nan)
    if np.count_nonzero(~np.isnan(values)) < 0.95 * np.count_nonzero(present):
        return None
    return pd.Series(values, index=s.index, name=s.name)
