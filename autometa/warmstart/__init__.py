"""Warm starts from past tasks: kNN over meta-features (auto-sklearn style), greedy
portfolios (auto-sklearn 2.0 / FLAML style) and explained zero-shot suggestions."""

from autometa.warmstart._knn import KNNWarmStarter, Neighbor, Suggestion
from autometa.warmstart._portfolio import PortfolioWarmStarter, normalized_regret
from autometa.warmstart._suggest import portfolio_configs, suggest_config, warm_start_configs

__all__ = [
    "KNNWarmStarter",
    "Neighbor",
    "PortfolioWarmStarter",
    "Suggestion",
    "normalized_regret",
    "portfolio_configs",
    "suggest_config",
    "warm_start_configs",
]
