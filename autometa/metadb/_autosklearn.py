"""Import the tuned optima auto-sklearn ships for its meta-learning (Feurer et al. 2015).

auto-sklearn's distribution holds, in ``autosklearn/metalearning/files/``, one ASLib folder
per metric, task type and data representation
(``<metric>_<binary|multiclass>.classification_<dense|sparse>``): ``feature_values.arff``
(auto-sklearn's meta-features of about 200 OpenML classification tasks, computed on each
task's training split), ``configurations.csv`` (auto-sklearn pipelines) and
``algorithm_runs.arff`` (per task the best pipeline and its loss). The scripts/ of the
same release say how they were made: SMAC ran for a day or more per task and metric
(10-fold partial CV on the task's training split); the incumbents were refit on the
training split and scored on its test split, and the one with the lowest test loss of the
folder's metric was kept. The stored score is that test score: it is the score of the
auto-sklearn pipeline, selected on the test split, so it is optimistic.

Each kept pipeline whose classifier autometa has a family for becomes the closest
configuration of autometa's search space (:func:`map_autosklearn_config`); what it
cannot express (feature preprocessors, rescalings other than autometa's, early-stopping
and solver settings, ...) is dropped and values outside autometa's ranges are clipped,
and the report says so per configuration. AdaBoost, naive Bayes, LDA, QDA and SVMs with
a polynomial or sigmoid kernel have no autometa family: they are counted, not stored.
Instances are OpenML dataset names (lowercase), not task ids; tasks are stored as
``autosklearn/<name>`` unless a name -> OpenML task id mapping is given, then as
``openml/task/<id>`` (the OpenML importer's names).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import operator
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.hyperparameters import IntegerHyperparameter, NumericalHyperparameter
from sqlalchemy import func, select

from autometa.exceptions import InputError
from autometa.metadb._schema import MEAN_SPLIT, MetaFeature, TaskRow
from autometa.metadb._store import EvalRecord, SQLMetaDB
from autometa.metrics import get_metric
from autometa.spaces import FAMILIES, FAMILY_KEY, SPACE_VERSION, config_to_dict, get_space, in_space

__all__ = [
    "AUTOSKLEARN_CLASSIFIERS",
    "AUTOSKLEARN_METAFEATURES",
    "AUTOSKLEARN_METRICS",
    "AutoSklearnImport",
    "MappedConfiguration",
    "import_autosklearn",
    "map_autosklearn_config",
]

#: autometa metric -> auto-sklearn's optimum of it; a file's cost is ``optimum - score`` for
#: metrics to maximize and the metric itself for log loss (auto-sklearn's ``calculate_loss``).
AUTOSKLEARN_METRICS = {"balanced_accuracy": 1.0, "accuracy": 1.0, "roc_auc": 1.0, "log_loss": 0.0}
#: auto-sklearn classifier -> autometa family (auto-sklearn's gradient_boosting is
#: scikit-learn's HistGradientBoosting; libsvm_svc maps with its RBF kernel only).
AUTOSKLEARN_CLASSIFIERS = {
    "random_forest": "random_forest",
    "extra_trees": "extra_trees",
    "gradient_boosting": "hist_gradient_boosting",
    "libsvm_svc": "svm",
    "liblinear_svc": "linear",
    "sgd": "linear",
    "passive_aggressive": "linear",
    "k_nearest_neighbors": "knn",
    "mlp": "mlp",
    "decision_tree": "decision_tree",
}
#: OpenML quality names (extractor "autometa") computed from auto-sklearn's meta-features:
#: the ones with the same definition, up to a unit or the target column OpenML counts.
#: auto-sklearn's "Percentage" features are fractions, its NumberOfFeatures leaves the
#: target out, and all its values describe the task's training split, not the dataset.
AUTOSKLEARN_METAFEATURES = {
    "NumberOfClasses": "NumberOfClasses",
    "NumberOfFeatures": "NumberOfFeatures + 1 (OpenML counts the target)",
    "NumberOfNumericFeatures": "NumberOfNumericFeatures (a nominal target is not numeric)",
    "NumberOfSymbolicFeatures": "NumberOfCategoricalFeatures + 1 (OpenML counts the nominal target)",
    "PercentageOfNumericFeatures": "100 * NumberOfNumericFeatures / (NumberOfFeatures + 1)",
    "PercentageOfSymbolicFeatures": "100 * (NumberOfCategoricalFeatures + 1) / (NumberOfFeatures + 1)",
    "ClassEntropy": "ClassEntropy (bits)",
    "MajorityClassPercentage": "100 * ClassProbabilityMax",
    "MinorityClassPercentage": "100 * ClassProbabilityMin",
    "PercentageOfInstancesWithMissingValues": "100 * PercentageOfInstancesWithMissingValues",
    "PercentageOfMissingValues": "100 * PercentageOfMissingValues * NumberOfFeatures / (NumberOfFeatures + 1)",
}
_TASK_TYPES = ("binary", "multiclass")
_FILES = "autosklearn/metalearning/files"
_DOWNLOAD_HINT = ("pip download --no-deps --no-build-isolation auto-sklearn==0.15.0 (from an environment that has "
                  "'wheel') and pass the .tar.gz or its unpacked directory as source")
_RESCALING = "data_preprocessor:feature_type:numerical_transformer:rescaling:__choice__"
_IMPUTATION = "data_preprocessor:feature_type:numerical_transformer:imputation:strategy"
_ENCODING = "data_preprocessor:feature_type:categorical_transformer:categorical_encoding:__choice__"
_COALESCENCE = "data_preprocessor:feature_type:categorical_transformer:category_coalescence:__choice__"
_PREPROCESSOR = "feature_preprocessor:__choice__"
_BALANCING = "balancing:strategy"
_ONEHOT_CAP = 32  # one-hot columns per categorical column in autometa's pipelines (MAX_ONEHOT_CATEGORIES)
#: Rescalings that keep each column's order: trees do not see them.
_MONOTONE = {"none", "standardize", "minmax", "robust_scaler", "quantile_transformer", "power_transformer"}
#: auto-sklearn settings that autometa's estimator of the family uses as well.
_SAME_AS_AUTOMETA: dict[str, dict[str, str]] = {
    "random_forest": {"max_depth": "None", "max_leaf_nodes": "None", "min_weight_fraction_leaf": "0",
                      "min_impurity_decrease": "0"},
    "extra_trees": {"max_depth": "None", "max_leaf_nodes": "None", "min_weight_fraction_leaf": "0",
                    "min_impurity_decrease": "0"},
    "decision_tree": {"max_leaf_nodes": "None", "min_weight_fraction_leaf": "0", "min_impurity_decrease": "0"},
    "gradient_boosting": {"loss": "auto", "max_bins": "255", "max_depth": "None", "tol": "1e-7", "scoring": "loss",
                          "early_stop": "off"},
    "libsvm_svc": {"shrinking": "True", "tol": "0.001", "max_iter": "-1"},
    "mlp": {"solver": "adam", "batch_size": "auto", "shuffle": "True", "beta_1": "0.9", "beta_2": "0.999",
            "epsilon": "1e-8", "tol": "0.0001", "early_stopping": "valid", "validation_fraction": "0.1"},
    "sgd": {"fit_intercept": "True"},
    "liblinear_svc": {"fit_intercept": "True", "intercept_scaling": "1", "dual": "False"},
    "passive_aggressive": {"fit_intercept": "True"},
    "k_nearest_neighbors": {},
}


@dataclass(frozen=True)
class MappedConfiguration:
    """One auto-sklearn best pipeline as a configuration of autometa's space.

    Attributes
    ----------
    task, metric : str
        The stored task and the autometa metric the pipeline was best in.
    run_key : str
        ``<folder>/algorithm_runs.arff:<configuration idx>``: the evaluation's run key.
    classifier : str
        auto-sklearn's classifier choice.
    config : dict
        The autometa configuration stored (a point of ``get_space(problem_type)``).
    score : float
        The auto-sklearn pipeline's test score in ``metric``.
    converted : dict
        autometa hyperparameter -> how it was derived when not copied as it is.
    clipped : dict
        autometa hyperparameter -> ``(value, clipped value)`` for values outside autometa's range.
    dropped : dict
        auto-sklearn setting -> its value, for what autometa's space cannot express.
    """

    task: str
    metric: str
    run_key: str
    classifier: str
    config: dict[str, Any]
    score: float
    converted: dict[str, str] = field(default_factory=dict)
    clipped: dict[str, tuple[float, float]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return str(self.config[FAMILY_KEY])


@dataclass(frozen=True)
class AutoSklearnImport:
    """What :func:`import_autosklearn` read and stored.

    Attributes
    ----------
    source : str
        The store's source name, ``autosklearn-<version>``.
    origin : str
        Where the files were read (a directory or a tarball).
    version : str
        auto-sklearn's version, from its ``__version__.py`` ("unknown" without one).
    folders : tuple of str
        The meta-data folders read.
    tasks : tuple of str
        The tasks with at least one stored configuration (with their meta-features).
    evaluations : int
        Evaluations newly written (0 when the same files were imported before).
    metafeatures : int
        Meta-feature values written (auto-sklearn's and their OpenML equivalents).
    mapped : tuple of MappedConfiguration
        Every stored configuration, with what was converted, clipped and dropped.
    unmapped : dict
        auto-sklearn classifier (with its kernel for libsvm_svc) -> best pipelines not stored
        because autometa has no family for it.
    skipped : dict
        Reason -> runs of the files not imported: ``not_applicable`` (no score, e.g. ROC AUC
        of a multiclass task), ``ambiguous name`` (two OpenML tasks share a dataset name and
        the files keep one row of meta-features for both), ``other task type`` (the task is
        imported from the folder of its own type; auto-sklearn's binary and multiclass
        folders hold the same tasks), ``no meta-features``.
    """

    source: str
    origin: str
    version: str
    folders: tuple[str, ...]
    tasks: tuple[str, ...]
    evaluations: int
    metafeatures: int
    mapped: tuple[MappedConfiguration, ...]
    unmapped: dict[str, int]
    skipped: dict[str, int]

    @property
    def by_family(self) -> dict[str, int]:
        """Mapped configurations per autometa family."""
        return dict(Counter(m.family for m in self.mapped).most_common())

    @property
    def dropped(self) -> dict[str, int]:
        """auto-sklearn setting -> how many mapped configurations lost it."""
        return dict(Counter(k for m in self.mapped for k in m.dropped).most_common())

    @property
    def clipped(self) -> dict[str, int]:
        """autometa hyperparameter -> how many mapped configurations were clipped in it."""
        return dict(Counter(k for m in self.mapped for k in m.clipped).most_common())


# ---------------------------------------------------------------------------- reading the files
class _Files:
    """The meta-data folders of one auto-sklearn distribution, in a directory."""

    def __init__(self, origin: str, version: str, root: Path) -> None:
        self.origin, self.version, self._root = origin, version, root

    def folders(self) -> set[str]:
        return {p.parent.name for p in self._root.glob("*/algorithm_runs.arff")}

    def read(self, folder: str, name: str) -> str:
        path = self._root / folder / name
        if not path.is_file():
            raise InputError(f"The auto-sklearn meta-data at {self.origin!r} lacks {folder}/{name}.")
        return path.read_text(encoding="utf-8")

    def close(self) -> None:
        pass


class _TarFiles(_Files):
    """The meta-data folders inside an sdist tarball, read without unpacking it."""

    def __init__(self, origin: str, version: str, tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> None:
        super().__init__(origin, version, Path(origin))
        self._tar, self._members = tar, members

    def folders(self) -> set[str]:
        return {k.split("/")[0] for k in self._members if k.endswith("/algorithm_runs.arff")}

    def read(self, folder: str, name: str) -> str:
        member = self._members.get(f"{folder}/{name}")
        fh = self._tar.extractfile(member) if member is not None else None
        if fh is None:
            raise InputError(f"The auto-sklearn meta-data at {self.origin!r} lacks {folder}/{name}.")
        return fh.read().decode("utf-8")

    def close(self) -> None:
        self._tar.close()


_VERSION_RE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def _version_of(text: str | None) -> str:
    m = _VERSION_RE.search(text or "")
    return m.group(1) if m else "unknown"


def _directory(files: Path, origin: str, version: str | None = None) -> _Files:
    if version is None:
        vfile = files.parent.parent / "__version__.py"  # files -> metalearning -> autosklearn
        version = _version_of(vfile.read_text(encoding="utf-8") if vfile.is_file() else None)
    return _Files(origin, version, files)


def _open_files(source: str | os.PathLike[str] | None) -> _Files:
    """The meta-data of an installed auto-sklearn, an unpacked sdist, its tarball or a files directory."""
    if source is None:
        return _installed()
    path = Path(source).expanduser()
    if path.is_file():
        if not tarfile.is_tarfile(path):
            raise InputError(f"The auto-sklearn source must be a directory or an sdist .tar.gz; got the file {str(path)!r}.")
        return _tarball(path)
    if not path.is_dir():
        raise InputError(f"The auto-sklearn source {str(path)!r} does not exist; {_DOWNLOAD_HINT}.")
    candidates = [path, path / _FILES, path / "metalearning" / "files", path / "files", *sorted(path.glob(f"*/{_FILES}"))]
    for c in candidates:
        if any(c.glob("*/algorithm_runs.arff")):
            return _directory(c, str(c))
    raise InputError(f"No auto-sklearn meta-data ({_FILES}/*/algorithm_runs.arff) under {str(path)!r}; {_DOWNLOAD_HINT}.")


def _installed() -> _Files:
    """The installed package's files, found without importing autosklearn (its import needs
    pinned dependencies that may be absent)."""
    try:
        dist = metadata.distribution("auto-sklearn")
        files = Path(str(dist.locate_file(_FILES)))
        if files.is_dir():
            return _directory(files, str(files), dist.version)
    except metadata.PackageNotFoundError:
        pass
    spec = util.find_spec("autosklearn")  # a top-level spec: the package is not executed
    for location in (spec.submodule_search_locations or []) if spec else []:
        files = Path(location) / "metalearning" / "files"
        if files.is_dir():
            return _directory(files, str(files))
    raise InputError(f"No installed auto-sklearn with meta-data found; {_DOWNLOAD_HINT}.")


def _tarball(path: Path) -> _Files:
    tar = tarfile.open(path)
    members: dict[str, tarfile.TarInfo] = {}
    version = None
    for m in tar.getmembers():
        name = m.name
        if m.isfile() and name.endswith("autosklearn/__version__.py") and name.count("/") <= 2:
            fh = tar.extractfile(m)
            version = _version_of(fh.read().decode("utf-8") if fh else None)
        i = name.find(_FILES + "/")
        if m.isfile() and i >= 0:
            members[name[i + len(_FILES) + 1:]] = m
    if not any(k.endswith("/algorithm_runs.arff") for k in members):
        tar.close()
        raise InputError(f"The tarball {str(path)!r} holds no {_FILES}/*/algorithm_runs.arff; {_DOWNLOAD_HINT}.")
    return _TarFiles(str(path), version or "unknown", tar, members)


def _arff(text: str) -> tuple[list[str], list[list[Any]]]:
    import arff  # liac-arff, a dependency of openml

    data = arff.loads(text)
    return [a for a, _ in data["attributes"]], data["data"]


def _description(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------------------- mapping configurations
def _float(value: str) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _same(value: str, expected: str) -> bool:
    a, b = _float(value), _float(expected)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return value.strip() == expected


@functools.cache
def _family_space(problem_type: str, family: str) -> ConfigurationSpace:
    """One family's space (read only here: shared between configurations)."""
    return get_space(problem_type, families=[family])


class _Mapper:
    """Builds one autometa configuration from one auto-sklearn configuration, recording
    what it copies, converts, clips and drops."""

    def __init__(self, classifier: str, row: Mapping[str, str], mf: Mapping[str, float], problem_type: str) -> None:
        self.classifier, self.row, self.mf = classifier, row, mf
        self.family = AUTOSKLEARN_CLASSIFIERS[classifier]
        self.space = _family_space(problem_type, self.family)
        self.config: dict[str, Any] = {FAMILY_KEY: self.family}
        self.used: set[str] = set()
        self.converted: dict[str, str] = {}
        self.clipped: dict[str, tuple[float, float]] = {}

    def raw(self, name: str) -> str:
        key = f"classifier:{self.classifier}:{name}"
        self.used.add(key)
        return self.row.get(key, "")

    def num(self, name: str) -> float:
        value = _float(self.raw(name))
        if value is None:
            raise InputError(f"auto-sklearn's classifier:{self.classifier}:{name} must be a number; "
                             f"got {self.row.get(f'classifier:{self.classifier}:{name}')!r}.")
        return value

    def put(self, name: str, value: Any, how: str | None = None) -> None:
        key = f"{self.family}:{name}"
        hp = self.space[key]
        if isinstance(hp, NumericalHyperparameter):
            value = float(value)
            integer = isinstance(hp, IntegerHyperparameter)
            before = round(value) if integer else value
            after = min(max(before, hp.lower), hp.upper)
            if after != before:
                self.clipped[key] = (float(value), float(after))
            value = int(after) if integer else float(after)
        self.config[key] = value
        if how is not None:
            self.converted[key] = how

    def default(self, name: str, how: str) -> None:
        self.put(name, self.space[f"{self.family}:{name}"].default_value, how)

    def class_weight(self) -> None:
        if f"{self.family}:class_weight" not in self.space:
            return  # kNN, MLP: auto-sklearn's weighting does not reach them either
        weighting = self.row.get(_BALANCING) == "weighting"
        self.put("class_weight", "balanced" if weighting else "none",
                 f"{_BALANCING}={self.row.get(_BALANCING)}" if weighting else None)

    def dropped(self) -> dict[str, str]:
        prefix = f"classifier:{self.classifier}:"
        same = _SAME_AS_AUTOMETA[self.classifier]
        out = {k: v for k, v in self.row.items() if k.startswith(prefix) and v != "" and k not in self.used
               and not (k[len(prefix):] in same and _same(v, same[k[len(prefix):]]))}
        return {**_pipeline_dropped(self.row, self.family, self.mf), **out}


def _pipeline_dropped(row: Mapping[str, str], family: str, mf: Mapping[str, float]) -> dict[str, str]:
    """auto-sklearn's data and feature preprocessing where it differs from autometa's
    pipeline for this family and task (median imputation; standardized one-hot columns for
    linear, SVM, kNN and MLP, ordinal codes for trees, native categories for boosting)."""
    out = {}
    pre = row.get(_PREPROCESSOR, "")
    if pre and pre != "no_preprocessing":
        out[_PREPROCESSOR] = pre
    encoding = FAMILIES[family].encoding
    rescaling = row.get(_RESCALING, "")
    if rescaling and ((encoding == "onehot" and rescaling != "standardize") or
                      (encoding != "onehot" and rescaling not in _MONOTONE)):
        out[_RESCALING] = rescaling
    if (mf.get("NumberOfCategoricalFeatures") or 0) > 0:
        cat = row.get(_ENCODING, "")
        if cat and (encoding == "native" or (cat == "one_hot_encoding") != (encoding == "onehot")):
            out[_ENCODING] = cat
        if row.get(_COALESCENCE, "") not in ("", "no_coalescense"):
            out[_COALESCENCE] = row[_COALESCENCE]
    if (mf.get("NumberOfMissingValues") or 0) > 0 and row.get(_IMPUTATION, "") not in ("", "median"):
        out[_IMPUTATION] = row[_IMPUTATION]
    return out


def _widths(row: Mapping[str, str], mf: Mapping[str, float]) -> tuple[int, int]:
    """The columns reaching auto-sklearn's classifier (as if no feature preprocessor changed
    them) and autometa's one-hot width, estimated from the meta-features (SymbolsSum: the
    categories of all categorical columns)."""
    p = max(1, int(mf.get("NumberOfFeatures") or 1))
    numeric = int(mf.get("NumberOfNumericFeatures") or 0)
    n_cat = int(mf.get("NumberOfCategoricalFeatures") or 0)
    symbols = int(mf.get("SymbolsSum") or 0)
    askl = numeric + symbols if n_cat and symbols and row.get(_ENCODING) == "one_hot_encoding" else p
    onehot = numeric + min(symbols, _ONEHOT_CAP * n_cat) if n_cat and symbols else p
    return max(1, askl), max(1, onehot)


def _forest(m: _Mapper) -> None:
    width, _ = _widths(m.row, m.mf)
    exponent = m.num("max_features")
    k = max(1, int(width ** exponent))
    m.put("max_features", k / width, f"auto-sklearn draws int({width} ** {exponent:.4g}) = {k} of {width} columns a split")
    m.put("n_estimators", 512, "auto-sklearn grows 512 trees")
    m.put("criterion", m.raw("criterion"))
    m.put("min_samples_leaf", m.num("min_samples_leaf"))
    m.put("min_samples_split", m.num("min_samples_split"))
    m.put("bootstrap", m.raw("bootstrap") == "True")
    m.class_weight()


def _decision_tree(m: _Mapper) -> None:
    width, _ = _widths(m.row, m.mf)
    factor = m.num("max_depth_factor")
    depth = max(1, int(round(int(factor) * width)))  # auto-sklearn truncates the factor to an integer first
    m.put("max_depth", depth, f"auto-sklearn's max(1, round(int({factor:.4g}) * {width} columns)) = {depth}")
    m.put("max_features", m.num("max_features"))
    m.put("min_samples_leaf", m.num("min_samples_leaf"))
    m.put("min_samples_split", m.num("min_samples_split"))
    m.put("criterion", m.raw("criterion"))
    m.default("ccp_alpha", "auto-sklearn does not prune (scikit-learn's 0): autometa's stand-in for 0")
    m.class_weight()


def _gradient_boosting(m: _Mapper) -> None:
    m.put("learning_rate", m.num("learning_rate"))
    m.put("min_samples_leaf", m.num("min_samples_leaf"))
    m.put("max_leaf_nodes", m.num("max_leaf_nodes"))
    m.put("l2_regularization", m.num("l2_regularization"))
    early = m.row.get("classifier:gradient_boosting:early_stop", "off") != "off"
    m.put("max_iter", 512, "auto-sklearn's cap of 512 iterations" + (" (early stopping may have stopped sooner)" if early else ""))
    m.default("max_features", "auto-sklearn uses every feature (scikit-learn's default)")
    m.class_weight()


def _libsvm_svc(m: _Mapper) -> None:
    _, onehot = _widths(m.row, m.mf)
    gamma = m.num("gamma")
    m.raw("kernel")  # rbf: the only kernel that maps
    m.put("C", m.num("C"))
    m.put("gamma_scale", gamma * onehot,
          f"gamma {gamma:.4g} * {onehot} one-hot columns (autometa's gamma = gamma_scale / encoded columns)")
    m.class_weight()


def _linear(m: _Mapper, C: float, how: str | None, penalty: str = "l2", l1_ratio: float | None = None) -> None:
    m.put("C", C, how)
    if penalty == "l2":
        m.put("penalty", "l2")
    else:
        m.put("penalty", "elasticnet", None if penalty == "elasticnet" else "l1 = elasticnet with l1_ratio 1")
        m.put("l1_ratio", 1.0 if l1_ratio is None else l1_ratio)
    m.class_weight()


def _sgd(m: _Mapper) -> None:
    n = max(1, int(m.mf.get("NumberOfInstances") or 1))
    alpha = m.num("alpha")
    if m.row.get("classifier:sgd:loss") == "log":
        m.raw("loss")  # logistic loss: what autometa's linear family fits
    penalty = m.raw("penalty")
    l1_ratio = m.num("l1_ratio") if penalty == "elasticnet" else None
    _linear(m, 1.0 / (alpha * n), f"C = 1 / (alpha {alpha:.4g} * {n} training rows)", penalty, l1_ratio)


def _liblinear_svc(m: _Mapper) -> None:
    _linear(m, m.num("C"), None, m.raw("penalty"))


def _passive_aggressive(m: _Mapper) -> None:
    _linear(m, m.space["linear:C"].default_value, "autometa's default: passive-aggressive's C is a step size")


def _knn(m: _Mapper) -> None:
    m.put("n_neighbors", m.num("n_neighbors"))
    m.put("weights", m.raw("weights"))
    m.put("p", int(m.num("p")))


def _mlp(m: _Mapper) -> None:
    m.put("n_hidden_layers", m.num("hidden_layer_depth"), "hidden_layer_depth")
    m.put("hidden_width", m.num("num_nodes_per_layer"), "num_nodes_per_layer")
    m.put("alpha", m.num("alpha"))
    m.put("learning_rate_init", m.num("learning_rate_init"))
    m.put("activation", m.raw("activation"))


_MAPPERS = {
    "random_forest": _forest, "extra_trees": _forest, "decision_tree": _decision_tree,
    "gradient_boosting": _gradient_boosting, "libsvm_svc": _libsvm_svc, "sgd": _sgd,
    "liblinear_svc": _liblinear_svc, "passive_aggressive": _passive_aggressive,
    "k_nearest_neighbors": _knn, "mlp": _mlp,
}


def _classifier_label(row: Mapping[str, str]) -> str:
    classifier = row.get("classifier:__choice__", "")
    if classifier == "libsvm_svc":
        return f"libsvm_svc (kernel={row.get('classifier:libsvm_svc:kernel', '')})"
    return classifier


def map_autosklearn_config(
    row: Mapping[str, str], metafeatures: Mapping[str, float], problem_type: str
) -> tuple[dict[str, Any], dict[str, str], dict[str, tuple[float, float]], dict[str, str]] | None:
    """The closest configuration of autometa's space to one auto-sklearn configuration.

    Parameters
    ----------
    row : mapping
        One row of auto-sklearn's ``configurations.csv`` (hyperparameter -> text, ``""``
        when inactive).
    metafeatures : mapping
        auto-sklearn's meta-features of the task (column counts convert ``max_features``,
        tree depth and the SVM's gamma; the training rows convert SGD's ``alpha``).
    problem_type : {"binary", "multiclass"}

    Returns
    -------
    (config, converted, clipped, dropped) or None
        None when autometa has no family for the classifier (naive Bayes, LDA, QDA,
        AdaBoost, an SVM with a polynomial or sigmoid kernel). Otherwise the configuration,
        checked with :func:`autometa.spaces.in_space`, and what was converted, clipped and
        dropped (see :class:`MappedConfiguration`).
    """
    classifier = row.get("classifier:__choice__", "")
    if classifier not in _MAPPERS or (classifier == "libsvm_svc" and row.get("classifier:libsvm_svc:kernel") != "rbf"):
        return None
    m = _Mapper(classifier, row, metafeatures, problem_type)
    _MAPPERS[classifier](m)
    try:  # ConfigSpace's own representation (floats to its precision), then the space's check
        config = config_to_dict(Configuration(m.space, values=m.config))
    except Exception as exc:  # noqa: BLE001 - any ConfigSpace refusal is a mapping error
        raise InputError(f"auto-sklearn configuration {row.get('idx')!r} maps outside autometa's space ({exc}).") from None
    if not in_space(config, m.space):
        raise InputError(f"auto-sklearn configuration {row.get('idx')!r} maps outside autometa's space: {config}.")
    return config, m.converted, m.clipped, m.dropped()


def _openml_metafeatures(v: Mapping[str, float | None]) -> dict[str, float]:
    """:data:`AUTOSKLEARN_METAFEATURES` computed from auto-sklearn's values (absent inputs: absent outputs)."""
    def get(name: str) -> float | None:
        x = v.get(name)
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    p, num, cat = get("NumberOfFeatures"), get("NumberOfNumericFeatures"), get("NumberOfCategoricalFeatures")
    out: dict[str, float | None] = {
        "NumberOfClasses": get("NumberOfClasses"),
        "ClassEntropy": get("ClassEntropy"),
    }
    if p is not None:
        out["NumberOfFeatures"] = p + 1
        out["PercentageOfNumericFeatures"] = None if num is None else 100 * num / (p + 1)
        out["PercentageOfSymbolicFeatures"] = None if cat is None else 100 * (cat + 1) / (p + 1)
        missing = get("PercentageOfMissingValues")
        out["PercentageOfMissingValues"] = None if missing is None else 100 * missing * p / (p + 1)
    out["NumberOfNumericFeatures"] = num
    out["NumberOfSymbolicFeatures"] = None if cat is None else cat + 1
    for name, src in (("MajorityClassPercentage", "ClassProbabilityMax"), ("MinorityClassPercentage", "ClassProbabilityMin"),
                      ("PercentageOfInstancesWithMissingValues", "PercentageOfInstancesWithMissingValues")):
        x = get(src)
        out[name] = None if x is None else 100 * x
    return {k: x for k, x in out.items() if x is not None}


# ---------------------------------------------------------------------------- the import
def _check(values: Iterable[str], allowed: Iterable[str], what: str) -> list[str]:
    chosen = list(dict.fromkeys(values))
    allowed = list(allowed)
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        raise InputError(f"The {what} to import from auto-sklearn must be among {allowed}; got {chosen}.")
    return chosen


def _own_autometa_metafeatures(db: SQLMetaDB, task: str, version: str) -> bool:
    """Whether the task holds autometa meta-features this importer did not write (computed
    by autometa's extractor): they are better than the partial equivalents and stay."""
    with db.engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(MetaFeature).join(TaskRow, TaskRow.id == MetaFeature.task_id)
            .where((TaskRow.name == task) & (MetaFeature.extractor == "autometa")
                   & (MetaFeature.extractor_version != version))
        ).scalar_one()
    return bool(n)


def import_autosklearn(
    db: SQLMetaDB,
    source: str | os.PathLike[str] | None = None,
    *,
    metrics: Iterable[str] = tuple(AUTOSKLEARN_METRICS),
    task_types: Iterable[str] = _TASK_TYPES,
    dense_only: bool = True,
    task_ids: Mapping[str, int] | None = None,
    knn_metafeatures: bool = True,
) -> AutoSklearnImport:
    """Import auto-sklearn's tuned optima and meta-features as an OpenML-backed source.

    Parameters
    ----------
    db : SQLMetaDB
    source : path-like, optional
        An unpacked auto-sklearn sdist, the sdist ``.tar.gz`` itself, or an
        ``autosklearn/metalearning/files`` directory; the installed ``auto-sklearn``
        package when omitted (found without importing it).
    metrics : iterable of str
        autometa metrics among :data:`AUTOSKLEARN_METRICS` (auto-sklearn's other metric
        folders have no autometa metric).
    task_types : iterable of {"binary", "multiclass"}
        Which tasks to import, by their class count; each from its own type's folder.
    dense_only : bool
        Read only the folders for dense data (what autometa's pipelines see); False also
        reads the ``_sparse`` folders, whose optima auto-sklearn found among pipelines that
        accept sparse input (run keys tell the two apart).
    task_ids : mapping, optional
        auto-sklearn dataset name -> OpenML task id. A task found in it is stored as
        ``openml/task/<id>`` (shared with the OpenML importer), others as
        ``autosklearn/<name>``. The files hold no ids: auto-sklearn's
        scripts/update_metadata_util.py lists the task ids, and each name is the task's
        OpenML dataset name in lower case.
    knn_metafeatures : bool
        Also store the exact OpenML equivalents of auto-sklearn's meta-features
        (:data:`AUTOSKLEARN_METAFEATURES`) under the extractor ``"autometa"``, version
        ``askl-<version>``, where the kNN warm starter looks (see Notes). A task that has
        meta-features computed by autometa keeps those.

    Returns
    -------
    AutoSklearnImport
        Counts, and per stored configuration what was converted, clipped and dropped.

    Raises
    ------
    InputError
        When no meta-data is found, a requested folder is missing, or a folder's costs are
        not the metric's loss to minimize.

    Notes
    -----
    Idempotent: importing the same files again writes no evaluation (same task,
    configuration and run key) and rewrites the same meta-features. auto-sklearn's
    meta-features are stored as they are under the extractor ``"autosklearn"``.

    The kNN warm starter drops every meta-feature missing on more than half of the stored
    tasks of a kind. The imported tasks (about 160 per metric) outnumber the shipped
    classification tasks (about 120) and have 11 of autometa's meta-features, so after
    the import the kNN compares tasks on those 11 only, shipped tasks included; pass
    ``knn_metafeatures=False`` to keep its feature set (the imported tasks are then no
    kNN neighbours).
    """
    metrics = _check(metrics, AUTOSKLEARN_METRICS, "metrics")
    task_types = _check(task_types, _TASK_TYPES, "task types")
    ids: dict[str, int] = {}
    for name, tid in (task_ids or {}).items():
        try:
            ids[str(name).lower()] = operator.index(tid)
        except TypeError:
            raise InputError(f"task_ids must map dataset names to integer OpenML task ids; got {name!r}: {tid!r}.") from None
    files = _open_files(source)
    try:
        return _import(db, files, metrics, task_types, dense_only, ids, knn_metafeatures)
    finally:
        files.close()


def _import(db: SQLMetaDB, files: _Files, metrics: list[str], task_types: list[str], dense_only: bool,
            ids: Mapping[str, int], knn_metafeatures: bool) -> AutoSklearnImport:
    available = files.folders()
    wanted = [(f"{m}_{t}.classification_{rep}", m, t) for m in metrics for t in task_types
              for rep in (("dense",) if dense_only else ("dense", "sparse"))]
    missing = [f for f, _, _ in wanted if f not in available]
    if missing:
        present = sorted(m for m in AUTOSKLEARN_METRICS if any(f.startswith(f"{m}_") for f in available))
        raise InputError(f"The auto-sklearn meta-data at {files.origin!r} has no folder {missing[0]!r}; "
                         f"choose metrics among those it has: {present}.")
    source = f"autosklearn-{files.version}"
    mf_version = f"askl-{files.version}"[:16]
    db.add_source(source, "openml", description=(
        f"auto-sklearn {files.version} meta-learning files (Feurer et al. 2015): per OpenML task and metric the "
        "best pipeline of long SMAC runs, mapped onto autometa's families"), versions={
        "auto-sklearn": files.version,
        "files": f"{_FILES}/<metric>_<binary|multiclass>.classification_<dense|sparse>/",
        "protocol": "SMAC with 10-fold partial CV on the OpenML task's training split; incumbents refit on it and "
                    "scored on its test split; the lowest test loss of the folder's metric kept (default excluded); "
                    "score = that test score (auto-sklearn's scripts/ of the release)",
        "mapping": "closest configuration of autometa's space (version " + SPACE_VERSION + "): feature preprocessing "
                   "and settings autometa lacks dropped, values clipped to its ranges; details per configuration in "
                   "import_autosklearn's report",
        "metafeatures": "auto-sklearn's, on the task's training split (extractor 'autosklearn'); exact OpenML "
                        f"equivalents under extractor 'autometa', version {mf_version!r}",
        "run_key": "<folder>/algorithm_runs.arff:<configuration idx>",
    })
    mapped: list[MappedConfiguration] = []
    unmapped: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    per_task: dict[str, tuple[str, dict[str, Any], list[EvalRecord]]] = {}  # name -> (type, meta-features, records)
    for folder, metric, task_type in wanted:
        optimum, greater_is_better = AUTOSKLEARN_METRICS[metric], get_metric(metric).greater_is_better
        for instance, mf, row, cost in _runs(files, folder, metric, task_type, skipped):
            result = map_autosklearn_config(row, mf, task_type)
            if result is None:
                unmapped[_classifier_label(row)] += 1
                continue
            config, converted, clipped, dropped = result
            score = optimum - cost if greater_is_better else cost - optimum
            run_key = f"{folder}/algorithm_runs.arff:{row['idx']}"
            task = _task_name(instance, ids)
            per_task.setdefault(instance, (task_type, mf, []))[2].append(
                EvalRecord(config, {metric: score}, MEAN_SPLIT, "ok", None, run_key))
            mapped.append(MappedConfiguration(task, metric, run_key, row["classifier:__choice__"], config, score,
                                              converted, clipped, dropped))
    evaluations = metafeatures = 0
    for instance, (task_type, mf, records) in per_task.items():
        task = _add_task(db, source, instance, mf, task_type, ids)
        metafeatures += db.add_metafeatures(task, mf, extractor="autosklearn", version=files.version)
        if knn_metafeatures and not _own_autometa_metafeatures(db, task, mf_version):
            metafeatures += db.add_metafeatures(task, _openml_metafeatures(mf), extractor="autometa", version=mf_version)
        evaluations += db.add_evaluations(task, records, source=source)
    return AutoSklearnImport(
        source=source, origin=files.origin, version=files.version, folders=tuple(f for f, _, _ in wanted),
        tasks=tuple(sorted(_task_name(i, ids) for i in per_task)), evaluations=evaluations, metafeatures=metafeatures,
        mapped=tuple(mapped), unmapped=dict(unmapped.most_common()), skipped=dict(skipped.most_common()),
    )


def _runs(files: _Files, folder: str, metric: str, task_type: str,
          skipped: Counter[str]) -> Iterator[tuple[str, dict[str, Any], dict[str, str], float]]:
    """``(dataset name, meta-features, configuration row, loss)`` of each usable run of a
    folder; the others are counted in ``skipped`` by reason."""
    desc = _description(files.read(folder, "description.txt"))
    if desc.get("maximize", "").lower() != "false" or desc.get("performance_measures") != metric:
        raise InputError(f"{folder}/description.txt must describe the loss of {metric} to minimize; got "
                         f"performance_measures={desc.get('performance_measures')!r}, maximize={desc.get('maximize')!r}.")
    names, rows = _arff(files.read(folder, "feature_values.arff"))
    features = {str(r[0]): {n: r[i] for i, n in enumerate(names) if i >= 2} for r in rows}
    configs = {r["idx"]: r for r in csv.DictReader(io.StringIO(files.read(folder, "configurations.csv")))}
    _, runs = _arff(files.read(folder, "algorithm_runs.arff"))
    seen = Counter(str(r[0]) for r in runs)
    for instance, _repetition, algorithm, cost, status in runs:
        mf = features.get(str(instance))
        if seen[str(instance)] > 1:
            skipped["ambiguous name"] += 1
        elif mf is None:
            skipped["no meta-features"] += 1
        elif ("binary" if (mf.get("NumberOfClasses") or 0) == 2 else "multiclass") != task_type:
            skipped["other task type"] += 1
        elif status != "ok" or cost is None or str(algorithm) not in configs:
            skipped["not_applicable"] += 1
        else:
            yield str(instance), mf, configs[str(algorithm)], float(cost)


def _task_name(instance: str, ids: Mapping[str, int]) -> str:
    tid = ids.get(instance.lower())
    return f"openml/task/{tid}" if tid is not None else f"autosklearn/{instance}"


def _add_task(db: SQLMetaDB, source: str, instance: str, mf: Mapping[str, Any], problem_type: str,
              ids: Mapping[str, int]) -> str:
    name = _task_name(instance, ids)

    def count(key: str) -> int | None:
        v = _float(str(mf.get(key)))
        return None if v is None else int(v)

    db.add_task(
        name, source=source, problem_type=problem_type, n_rows=count("NumberOfInstances"),
        n_features=count("NumberOfFeatures"), n_classes=count("NumberOfClasses"), openml_task_id=ids.get(instance.lower()),
        protocol={"openml_dataset_name": instance, "n_rows": "rows of the OpenML task's training split",
                  "autosklearn": "meta-features of the training split; scores on the test split"},
    )
    return name
