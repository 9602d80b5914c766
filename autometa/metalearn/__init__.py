"""Meta-learning: MAML, first-order MAML, Reptile, ANIL, Meta-SGD, implicit MAML (torch.func,
tasks vmapped); Prototypical, Matching and Relation Networks; the black-box SNAIL; the
Bayesian ALPaCA (calibrated predictive uncertainty); regression task families and few-shot image episodes
(an offline glyph benchmark rendered from the Hershey fonts, and Omniglot from a local copy).

Needs torch (an optional dependency: ``pip install torch==2.13.0``); importing this
subpackage without it raises :class:`autometa.extras.MissingDependencyError` (an
:class:`~autometa.exceptions.AutometaError` and an ``ImportError``) with that hint. ::

    from autometa.metalearn import MAML, SinusoidTasks, make_mlp

    learner = MAML(make_mlp(), inner_steps=1, inner_lr=0.01)
    history = learner.meta_train(SinusoidTasks(k_support=10), iterations=1000, seed=0)
    predictor = learner.adapt(support_x, support_y, steps=10)
    predictor(x_new)

    from autometa.metalearn import ANIL, GlyphTasks, accuracy, cross_entropy_loss, make_convnet

    learner = ANIL(make_convnet(5), inner_steps=5, inner_lr=0.1, loss_fn=cross_entropy_loss)
    learner.meta_train(GlyphTasks(ways=5, shots=1), iterations=500, meta_batch_size=8)
    test = GlyphTasks(ways=5, shots=1, split="test").sample(200, torch.Generator().manual_seed(0))
    learner.evaluate(test, metric=accuracy)  # {5: per-task accuracies}

Learners without an inner loop read the support set (``model`` is the embedding network);
the Bayesian ALPaCA returns a Student t predictive distribution::

    from autometa.metalearn import ALPaCA, IMAML, MatchingNet

    matching = MatchingNet(make_convnet(None), embedding_dim=64, full_context=True)
    imaml = IMAML(make_convnet(5), inner_steps=5, inner_lr=0.4, regularization=1.0, cg_steps=5,
                  loss_fn=cross_entropy_loss)
    alpaca = ALPaCA(make_mlp(1, (40, 40), 32), feature_dim=32)
    alpaca.meta_train(SinusoidTasks(k_support=10), iterations=1000)
    alpaca.adapt(support_x, support_y).distribution(x_new)  # torch.distributions.StudentT
    alpaca.calibration(test_batch, level=0.9)  # per-task NLL, 90% interval coverage, MSE

The run of ``autometa metalearn`` (checkpoint and resume, metrics.csv, validation, test
scores with 95% confidence intervals, init.pt, results.json)::

    from autometa.metalearn import fit_meta

    result = fit_meta("fomaml", "sinusoid", iterations=2000, out_dir="runs/fomaml")  # re-run: resumes
    result.test  # {"after_0_steps": {"mean": ..., "ci95": ...}, "after_1_steps": ..., "after_10_steps": ...}
"""

from autometa.extras import MissingDependencyError, require_torch

require_torch("autometa.metalearn")

from autometa.metalearn._adapt import AdaptedModel, adapt, evaluate_adaptation  # noqa: E402
from autometa.metalearn._algorithms import (  # noqa: E402
    ANIL,
    FOMAML,
    MAML,
    BaseMetaLearner,
    MetaSGD,
    MetaStep,
    MetaTrainHistory,
    ProtoNet,
    PrototypeClassifier,
    Reptile,
    TaskDistribution,
)
from autometa.metalearn._bayesian import ALPaCA, StudentTPredictor, student_t_nll  # noqa: E402
from autometa.metalearn._blackbox import SNAIL  # noqa: E402
from autometa.metalearn._episodes import GlyphTasks, OmniglotTasks, sample_episodes  # noqa: E402
from autometa.metalearn._episodic import EpisodePredictor, EpisodicLearner  # noqa: E402
from autometa.metalearn._functional import (  # noqa: E402
    InnerLoop,
    accuracy,
    cross_entropy_loss,
    make_convnet,
    make_mlp,
    mse_loss,
)
from autometa.metalearn._glyphs import ALPHABETS, GLYPH_DATA_VERSION, Alphabet, GlyphDataset, load_glyph_dataset  # noqa: E402
from autometa.metalearn._implicit import IMAML, conjugate_gradient  # noqa: E402
from autometa.metalearn._metric import MatchingNet, RelationNet, nll_loss, relation_mse_loss  # noqa: E402
from autometa.metalearn._tasks import HarmonicTasks, LineTasks, SinusoidTasks, TaskBatch  # noqa: E402
from autometa.metalearn._trainer import (  # noqa: E402
    ALGORITHMS,
    TASK_FAMILIES,
    MetaLearnProgress,
    MetaLearnResult,
    fit_meta,
)

__all__ = [
    "ALGORITHMS",
    "ALPHABETS",
    "ALPaCA",
    "ANIL",
    "FOMAML",
    "GLYPH_DATA_VERSION",
    "IMAML",
    "MAML",
    "SNAIL",
    "AdaptedModel",
    "Alphabet",
    "BaseMetaLearner",
    "EpisodePredictor",
    "EpisodicLearner",
    "GlyphDataset",
    "GlyphTasks",
    "HarmonicTasks",
    "InnerLoop",
    "LineTasks",
    "MatchingNet",
    "MetaLearnProgress",
    "MetaLearnResult",
    "MetaSGD",
    "MetaStep",
    "MetaTrainHistory",
    "MissingDependencyError",
    "OmniglotTasks",
    "ProtoNet",
    "PrototypeClassifier",
    "RelationNet",
    "Reptile",
    "SinusoidTasks",
    "StudentTPredictor",
    "TASK_FAMILIES",
    "TaskBatch",
    "TaskDistribution",
    "accuracy",
    "adapt",
    "conjugate_gradient",
    "cross_entropy_loss",
    "evaluate_adaptation",
    "fit_meta",
    "load_glyph_dataset",
    "make_convnet",
    "make_mlp",
    "mse_loss",
    "nll_loss",
    "relation_mse_loss",
    "sample_episodes",
    "student_t_nll",
]
