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


def suggest_config(task: Task, n: int = 5, **kwargs: object) -> list:  # type: ignore[type-arg]
    """Zero-shot, explained configurations for ``task`` from the meta-database; see
    :func:`autometa.warmstart.suggest_config` (imported on first use: it loads the store)."""
    from autometa.warmstart import suggest_config as _suggest

    return _suggest(task, n, **kwargs)  # type: ignore[arg-type]

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
    "suggest_config",
    "tune",
]
