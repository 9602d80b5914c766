"""autometa: tune scikit-learn pipelines with SMAC3 or Optuna, warm-started from past runs.

The public surface::

    from autometa import Task, tune
    result = tune(Task("data.csv", label="y", time_budget_s=60))
    result.leaderboard, result.best_config, result.model

Its parts are keyword-only and swappable: ``tune(task, optimizer="optuna",
warm_start="knn", transfer="rgpe", prune="box", metadb=URL)``, or objects of
:class:`~autometa.optimizers.BaseOptimizer`, :class:`~autometa.warmstart.BaseWarmStarter`,
:class:`~autometa.transfer.BaseTransfer` and :class:`~autometa.transfer.BasePruner`.
"""

from autometa._tune import DEFAULT_WARM_START, Progress, TrialRecord, TuneResult, read_run, tune
from autometa.estimators import AutoMetaClassifier, AutoMetaRegressor
from autometa.exceptions import AutometaError, AutometaWarning, InputError, ModelVersionError, ResumeError
from autometa.model import SavedModel, export_model, load_model, save_model
from autometa.task import Task, read_table
from autometa.versions import package_versions
from autometa.warmstart import suggest_config

__version__ = "0.1.0"

__all__ = [
    "AutoMetaClassifier",
    "AutoMetaRegressor",
    "AutometaError",
    "AutometaWarning",
    "DEFAULT_WARM_START",
    "InputError",
    "ModelVersionError",
    "Progress",
    "ResumeError",
    "SavedModel",
    "Task",
    "TrialRecord",
    "TuneResult",
    "export_model",
    "load_model",
    "package_versions",
    "read_run",
    "read_table",
    "save_model",
    "suggest_config",
    "tune",
]
