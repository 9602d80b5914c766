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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from autometa.exceptions import AutometaError, AutometaWarning, InputError, ModelVersionError, ResumeError

if TYPE_CHECKING:
    from autometa._tune import DEFAULT_WARM_START, Progress, TrialRecord, TuneResult, read_run, tune
    from autometa.estimators import AutoMetaClassifier, AutoMetaRegressor
    from autometa.model import SavedModel, export_model, load_model, save_model
    from autometa.task import Task, read_table
    from autometa.versions import package_versions
    from autometa.warmstart import suggest_config

#: Public names and the module each comes from, imported on first use (PEP 562): the
#: evaluation worker imports ``autometa.evaluation`` alone, and importing the whole package
#: (SMAC, Optuna, the transfer surrogates) made every worker start take 3.5 s instead of 2.
_LAZY = {
    **dict.fromkeys(("DEFAULT_WARM_START", "Progress", "TrialRecord", "TuneResult", "read_run", "tune"),
                    "autometa._tune"),
    **dict.fromkeys(("AutoMetaClassifier", "AutoMetaRegressor"), "autometa.estimators"),
    **dict.fromkeys(("SavedModel", "export_model", "load_model", "save_model"), "autometa.model"),
    **dict.fromkeys(("Task", "read_table"), "autometa.task"),
    "package_versions": "autometa.versions",
    "suggest_config": "autometa.warmstart",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autometa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
