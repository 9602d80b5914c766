"""Warm starts from past tasks: kNN over meta-features (auto-sklearn style) and explained
zero-shot suggestions."""

from autometa.warmstart._knn import KNNWarmStarter, Neighbor, Suggestion
from autometa.warmstart._suggest import suggest_config, warm_start_configs

__all__ = ["KNNWarmStarter", "Neighbor", "Suggestion", "suggest_config", "warm_start_configs"]
