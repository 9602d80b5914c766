"""The catalog of meta-features: one entry per name, with its group and definition.

Names and definitions follow OpenML's data qualities wherever OpenML has the quality, so
values computed here and values imported from OpenML share one space. The definitions
were checked against OpenML's recorded qualities of dataset 2 (anneal) and dataset -1
(dexter) and against the source of OpenML's EvaluationEngine; where the two disagree the
recorded values win and the entry says so. Entries with ``openml=False`` are autometa's
own additions, named in OpenML's style.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXTRACTOR_VERSION",
    "FEATURES",
    "FEATURE_NAMES",
    "GROUPS",
    "OPENML_ALIASES",
    "FeatureInfo",
    "feature_names",
]

#: Bumped whenever a definition changes, so a meta-database never mixes two definitions
#: under one name.
EXTRACTOR_VERSION = "1"

#: Meta-feature groups, in extraction order.
GROUPS = ("simple", "statistical", "info_theory", "landmarking")


@dataclass(frozen=True)
class FeatureInfo:
    """One meta-feature: its name, group and a one-line definition.

    Parameters
    ----------
    name : str
        The name, OpenML's quality name when ``openml`` is true.
    group : str
        One of :data:`GROUPS`.
    description : str
        A one-line definition.
    openml : bool
        Whether OpenML has a quality of this name and definition. For the landmarkers:
        the same learner and score, computed by a different implementation (Weka there,
        scikit-learn here), so values are close, not equal.
    """

    name: str
    group: str
    description: str
    openml: bool = True

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"The 'group' of FeatureInfo must be one of {GROUPS}; got {self.group!r}.")


_ROWS: list[tuple[str, str, str, bool]] = []


def _add(group: str, name: str, description: str, openml: bool = True) -> None:
    _ROWS.append((name, group, description, openml))


# ---------------------------------------------------------------------------- simple
_S = "simple"
_add(_S, "NumberOfInstances", "Number of rows (rows with a missing label are dropped first).")
_add(_S, "NumberOfFeatures", "Number of attributes including the target, as OpenML counts them.")
_add(
    _S,
    "NumberOfClasses",
    "Number of classes: the categories of a categorical label (declared values, even unobserved), "
    "else the distinct labels; 0 for regression, as in OpenML.",
)
_add(_S, "Dimensionality", "NumberOfFeatures / NumberOfInstances.")
_add(_S, "NumberOfInstancesWithMissingValues", "Rows with at least one missing value.")
_add(_S, "NumberOfMissingValues", "Missing cells over all attributes.")
_add(_S, "PercentageOfInstancesWithMissingValues", "100 * NumberOfInstancesWithMissingValues / NumberOfInstances.")
_add(_S, "PercentageOfMissingValues", "100 * NumberOfMissingValues / (NumberOfInstances * NumberOfFeatures).")
_add(_S, "NumberOfNumericFeatures", "Numeric attributes, counting a numeric (regression) target.")
_add(_S, "NumberOfSymbolicFeatures", "Nominal attributes, counting a nominal (classification) target.")
_add(
    _S,
    "NumberOfBinaryFeatures",
    "Nominal attributes, the target included, with exactly two distinct observed values.",
)
_add(_S, "PercentageOfNumericFeatures", "100 * NumberOfNumericFeatures / NumberOfFeatures.")
_add(_S, "PercentageOfSymbolicFeatures", "100 * NumberOfSymbolicFeatures / NumberOfFeatures.")
_add(_S, "PercentageOfBinaryFeatures", "100 * NumberOfBinaryFeatures / NumberOfFeatures.")
_add(_S, "MajorityClassSize", "Rows of the most frequent class (NaN for regression).")
_add(_S, "MinorityClassSize", "Rows of the least frequent class, over the classes NumberOfClasses counts (NaN for regression).")
_add(_S, "MajorityClassPercentage", "100 * MajorityClassSize / NumberOfInstances.")
_add(_S, "MinorityClassPercentage", "100 * MinorityClassSize / NumberOfInstances.")
_add(
    _S,
    "AutoCorrelation",
    "(n - 1 - changes) / (n - 1) in row order; changes = label changes between consecutive rows, or for a "
    "numeric target OpenML's sum of (previous - current) target values.",
)
_add(_S, "MaxNominalAttDistinctValues", "Largest number of values of a nominal input attribute (its categories).")
_add(_S, "MinNominalAttDistinctValues", "Smallest number of values of a nominal input attribute.")
_add(_S, "MeanNominalAttDistinctValues", "Mean number of values of the nominal input attributes.")
_add(_S, "StdvNominalAttDistinctValues", "Sample standard deviation of the number of values of the nominal input attributes.")

# ---------------------------------------------------------------------------- statistical
_T = "statistical"
_STAT_OF = {
    "Means": "mean",
    "StdDev": "sample standard deviation (n - 1)",
    "Kurtosis": "kurtosis sum((x - mean)^4) / ((n - 1) * sd^4) - 3",
    "Skewness": "skewness sum((x - mean)^3) / ((n - 1) * sd^3)",
}
_SUMMARY = {
    "Mean": "Mean",
    "Min": "Minimum",
    "Max": "Maximum",
    "Quartile1": "First quartile",
    "Quartile2": "Median",
    "Quartile3": "Third quartile",
}
for _stat, _what in _STAT_OF.items():
    for _summ, _word in _SUMMARY.items():
        _add(
            _T,
            f"{_summ}{_stat}OfNumericAtts",
            f"{_word} over numeric attributes (a numeric target included) of the per-attribute {_what}, "
            "missing values skipped.",
        )
_add(
    _T,
    "MeanAbsCorrelationOfNumericAtts",
    "Mean absolute Pearson correlation over pairs of numeric input attributes (pairwise-complete rows; "
    "at most 1000 evenly spaced attributes and a seeded sample of at most 100,000 rows).",
    openml=False,
)

# ---------------------------------------------------------------------------- info_theory
_I = "info_theory"
_add(_I, "ClassEntropy", "Entropy (bits) of the class distribution.")
_add(
    _I,
    "MeanAttributeEntropy",
    "Mean entropy (bits) of the nominal input attributes; a missing value counts as the first category, as in OpenML.",
)
_add(
    _I,
    "MeanMutualInformation",
    "Mean mutual information (bits) between each nominal input attribute and the class (missing = first category).",
)
_add(_I, "EquivalentNumberOfAtts", "ClassEntropy / MeanMutualInformation (NaN when the mean is not positive).")
_add(
    _I,
    "NoiseToSignalRatio",
    "(MeanAttributeEntropy - MeanMutualInformation) / MeanMutualInformation (OpenML also names it MeanNoiseToSignalRatio).",
)
for _summ, _word in _SUMMARY.items():
    if _summ == "Mean":
        continue
    _add(_I, f"{_summ}AttributeEntropy", f"{_word} entropy (bits) over nominal input attributes.")
    _add(_I, f"{_summ}MutualInformation", f"{_word} mutual information (bits) with the class over nominal input attributes.")
_ALL = (
    "nominal input attributes and numeric ones discretized into floor(n ** (1/3)) equal-frequency bins "
    "(missing numeric values form their own bin)"
)
_add(_I, "MeanAttributeEntropyAllAtts", f"Mean entropy (bits) over {_ALL}.", openml=False)
_add(_I, "MeanMutualInformationAllAtts", f"Mean mutual information (bits) with the class over {_ALL}.", openml=False)
_add(_I, "EquivalentNumberOfAttsAllAtts", "ClassEntropy / MeanMutualInformationAllAtts.", openml=False)
_add(
    _I,
    "NoiseToSignalRatioAllAtts",
    "(MeanAttributeEntropyAllAtts - MeanMutualInformationAllAtts) / MeanMutualInformationAllAtts.",
    openml=False,
)

# ---------------------------------------------------------------------------- landmarking
_L = "landmarking"
_LEARNERS = {
    "DecisionStump": ("a depth-1 decision tree", True),
    "NaiveBayes": (
        "naive Bayes (Gaussian with Weka's minimum deviation for numeric, Laplace-smoothed counts for nominal "
        "attributes)",
        True,
    ),
    "kNN_1N": ("1-nearest-neighbour (min-max scaled numeric attributes, a nominal mismatch counts 1)", True),
    "LDA": ("linear discriminant analysis (Ledoit-Wolf shrinkage, at most 256 encoded columns)", False),
}
for _learner, (_model, _oml) in _LEARNERS.items():
    _add(_L, f"{_learner}AUC", f"Class-prevalence-weighted one-vs-rest ROC AUC of {_model}, cross-validated.", _oml)
    _add(_L, f"{_learner}ErrRate", f"Error rate of {_model}, cross-validated.", _oml)
    _add(_L, f"{_learner}Kappa", f"Cohen's kappa of {_model}, cross-validated.", _oml)
_add(_L, "DecisionStumpR2", "Regression only: R2 of a depth-1 regression tree, cross-validated.", openml=False)
_add(_L, "kNN_1NR2", "Regression only: R2 of 1-nearest-neighbour (scaled as kNN_1N), cross-validated.", openml=False)
_add(_L, "LinearRegressionR2", "Regression only: R2 of least-squares linear regression, cross-validated.", openml=False)

#: Every meta-feature, by name, in extraction order.
FEATURES: dict[str, FeatureInfo] = {row[0]: FeatureInfo(*row) for row in _ROWS}
#: Every meta-feature name, in extraction order.
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)

#: Other names OpenML uses (older servers, newer spellings) for a quality with the same
#: definition and scale; an importer maps them onto autometa's names.
OPENML_ALIASES: dict[str, str] = {
    "MeanNoiseToSignalRatio": "NoiseToSignalRatio",
    "kNN1NAUC": "kNN_1NAUC",
    "kNN1NErrRate": "kNN_1NErrRate",
    "kNN1NKappa": "kNN_1NKappa",
    "NumAttributes": "NumberOfFeatures",
    "InstanceCount": "NumberOfInstances",
    "NumMissingValues": "NumberOfMissingValues",
    "IncompleteInstanceCount": "NumberOfInstancesWithMissingValues",
    "ClassCount": "NumberOfClasses",
}


def feature_names(groups: tuple[str, ...] | list[str] = GROUPS) -> tuple[str, ...]:
    """The names :func:`~autometa.metafeatures.extract` returns for these groups, in order."""
    wanted = set(groups)
    return tuple(name for name, info in FEATURES.items() if info.group in wanted)
