"""autometa: tune scikit-learn pipelines with SMAC3 or Optuna, warm-started from past runs.

The public surface::

    from autometa import Task, tune
    result = tune(Task("data.csv", label="y", time_budget_s=60))
    result.leaderboard, result.best_config, result.model
"""

from autometa._tune import Progress, TrialRecord, TuneResult, package_versions, tune
from autometa.estimators import AutoMetaClassifier, AutoMetaRegressor
from autometa.exceptions import AutometaError, AutometaWarning, InputError, ModelVersionError, ResumeError
from autometa.model import SavedModel, load_model, save_model
from autometa.task import Task, read_table

__version__ = "0.1.0"

__all__ = [
    "AutoMetaClassifier",
    "AutoMetaRegressor",
    "AutometaError",
    "AutometaWarning",
    "InputError",
    "ModelVersionError",
    "Progress",
    "ResumeError",
    "SavedModel",
    "Task",
    "TrialRecord",
    "TuneResult",
    "load_model",
    "package_versions",
    "read_table",
    "save_model",
    "tune",
]
