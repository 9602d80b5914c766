"""Meta-learning of initial weights: MAML, first-order MAML and Reptile with torch.func.

Needs torch (an optional dependency: ``pip install torch==2.13.0``); importing this
subpackage without it raises :class:`autometa.exceptions.AutometaError` (also an
``ImportError``) with that hint. ::

    from autometa.metalearn import MAML, SinusoidTasks, make_mlp

    learner = MAML(make_mlp(), inner_steps=1, inner_lr=0.01)
    history = learner.meta_train(SinusoidTasks(k_support=10), iterations=1000, seed=0)
    predictor = learner.adapt(support_x, support_y, steps=10)
    predictor(x_new)
"""

from autometa.metalearn._imports import require_torch

require_torch()

from autometa.metalearn._adapt import AdaptedModel, adapt, evaluate_adaptation  # noqa: E402
from autometa.metalearn._algorithms import (  # noqa: E402
    FOMAML,
    MAML,
    BaseMetaLearner,
    MetaStep,
    MetaTrainHistory,
    Reptile,
    TaskDistribution,
)
from autometa.metalearn._episodes import GlyphTasks, OmniglotTasks, sample_episodes  # noqa: E402
from autometa.metalearn._functional import InnerLoop, make_mlp, mse_loss  # noqa: E402
from autometa.metalearn._glyphs import ALPHABETS, GLYPH_DATA_VERSION, Alphabet, GlyphDataset, load_glyph_dataset  # noqa: E402
from autometa.metalearn._imports import MissingDependencyError  # noqa: E402
from autometa.metalearn._tasks import SinusoidTasks, TaskBatch  # noqa: E402

__all__ = [
    "ALPHABETS",
    "FOMAML",
    "GLYPH_DATA_VERSION",
    "MAML",
    "AdaptedModel",
    "Alphabet",
    "BaseMetaLearner",
    "GlyphDataset",
    "GlyphTasks",
    "InnerLoop",
    "MetaStep",
    "MetaTrainHistory",
    "MissingDependencyError",
    "OmniglotTasks",
    "Reptile",
    "SinusoidTasks",
    "TaskBatch",
    "TaskDistribution",
    "adapt",
    "evaluate_adaptation",
    "load_glyph_dataset",
    "make_mlp",
    "mse_loss",
    "sample_episodes",
]
