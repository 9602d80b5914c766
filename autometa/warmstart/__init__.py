"""Warm starts from past tasks: which configurations a search evaluates first.

:class:`BaseWarmStarter` is the contract; the built-ins are :class:`DefaultsWarmStarter`
(each family's default), :class:`KNNWarmStarter` (the best configurations of the stored
tasks nearest in meta-feature space, auto-sklearn style) and
:class:`PortfolioWarmStarter` (a greedy portfolio, auto-sklearn 2.0 / FLAML style).
:func:`suggest_config` gives explained zero-shot suggestions.
"""

from autometa.warmstart._base import BaseWarmStarter, Neighbor, Suggestion, distinct_suggestions
from autometa.warmstart._cost import defer_costly, predicted_trial_seconds, trial_shape
from autometa.warmstart._knn import MetaFeatureIndex, fit_similarity_weights
from autometa.warmstart._portfolio import GreedyPortfolio, normalized_regret
from autometa.warmstart._predictor import FamilyForecast, PerformancePredictor, PredictorWarmStarter
from autometa.warmstart._starters import DefaultsWarmStarter, KNNWarmStarter, PortfolioWarmStarter, suggest_config

#: The start of :func:`autometa.tune`, the CLI and the estimators. On 16 tables left out of
#: the meta-database at a 60 s budget, 4 seeds (experiments/results/heldout_start_clean.md),
#: no meta-learned start is measurably better than each family's default: the predictor
#: leads on classification (+0.005 balanced accuracy, interval touching zero) but is behind
#: on the larger tables and on regression. The meta-learned start becomes the default once
#: it measures better on held-out tables.
DEFAULT_WARM_START = "defaults"

#: Built-in warm starters by the short name ``tune(warm_start=...)`` accepts.
WARM_STARTERS: dict[str, type[BaseWarmStarter]] = {
    "defaults": DefaultsWarmStarter,
    "knn": KNNWarmStarter,
    "portfolio": PortfolioWarmStarter,
    "predictor": PredictorWarmStarter,
}

__all__ = [
    "DEFAULT_WARM_START",
    "WARM_STARTERS",
    "BaseWarmStarter",
    "DefaultsWarmStarter",
    "FamilyForecast",
    "GreedyPortfolio",
    "KNNWarmStarter",
    "MetaFeatureIndex",
    "Neighbor",
    "PerformancePredictor",
    "PortfolioWarmStarter",
    "PredictorWarmStarter",
    "Suggestion",
    "defer_costly",
    "distinct_suggestions",
    "fit_similarity_weights",
    "normalized_regret",
    "predicted_trial_seconds",
    "suggest_config",
    "trial_shape",
]
