"""scikit-learn estimators that tune themselves: AutoMetaClassifier and AutoMetaRegressor."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d, validate_data

from autometa.exceptions import AutometaWarning, InputError
from autometa.warmstart import DEFAULT_WARM_START

__all__ = ["AutoMetaClassifier", "AutoMetaRegressor"]


class _AutoMetaBase(BaseEstimator):
    _problem: str = ""

    def __init__(
        self,
        *,
        metric: str | None = None,
        time_budget_s: float = 60.0,
        n_trials: int | None = None,
        optimizer: Any = "smac",
        warm_starter: Any = DEFAULT_WARM_START,
        transfer: Any = None,
        prune: Any = None,
        metadb: Any = None,
        families: Sequence[str] | None = None,
        per_trial_time_limit_s: float | None = None,
        isolation: str = "process",
        n_jobs: int = 1,
        ensemble_size: int = 25,
        protocol: str = "auto",
        seed: int = 0,
        memory_limit_mb: int | None = None,
        n_workers: int | None = None,
        dask_client: Any = None,
        storage: str | None = None,
        study_name: str | None = None,
        out_dir: Any = None,
        record: bool = False,
    ) -> None:
        self.metric = metric
        self.time_budget_s = time_budget_s
        self.n_trials = n_trials
        self.optimizer = optimizer
        self.warm_starter = warm_starter
        self.transfer = transfer
        self.prune = prune
        self.metadb = metadb
        self.families = families
        self.per_trial_time_limit_s = per_trial_time_limit_s
        self.isolation = isolation
        self.n_jobs = n_jobs
        self.ensemble_size = ensemble_size
        self.protocol = protocol
        self.seed = seed
        self.memory_limit_mb = memory_limit_mb
        self.n_workers = n_workers
        self.dask_client = dask_client
        self.storage = storage
        self.study_name = study_name
        self.out_dir = out_dir
        self.record = record

    def _frame(self, X: Any, *, reset: bool) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            frame = X.copy()
            frame.columns = [str(c) for c in frame.columns]
            return frame
        arr = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")
        if arr.dtype.kind == "O":
            try:
                arr = arr.astype(float)
            except ValueError:  # strings: categorical columns, kept as they are
                pass
        elif arr.dtype.kind not in "biuf":
            arr = arr.astype(float)
        return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])

    def _fit(self, X: Any, y: Any) -> _AutoMetaBase:
        from autometa._tune import tune
        from autometa.task import Task

        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        frame = self._frame(X, reset=True)
        y_arr = column_or_1d(y, warn=True)
        check_consistent_length(frame, y_arr)
        if len(y_arr) < 2:
            raise ValueError(f"Found n_samples={len(y_arr)}; tuning needs at least 2 samples.")
        label = "__label__"
        while label in frame.columns:
            label += "_"
        frame[label] = y_arr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AutometaWarning)
            try:
                task = Task(
                    frame,
                    label=label,
                    problem_type=self._problem_type(y_arr),
                    metric=self.metric,
                    seed=self.seed,
                    time_budget_s=self.time_budget_s,
                    drop_id_columns=False,
                )
            except InputError as exc:  # the label column is internal: the user passed y
                raise InputError(str(exc).replace(f"Label column '{label}'", "y")) from None
        result = tune(
            task,
            optimizer=self.optimizer,
            warm_start=self.warm_starter,
            transfer=self.transfer,
            prune=self.prune,
            metadb=self.metadb,
            n_trials=self.n_trials,
            families=self.families,
            per_trial_time_limit_s=self.per_trial_time_limit_s,
            isolation=self.isolation,
            n_jobs=self.n_jobs,
            ensemble_size=self.ensemble_size,
            protocol=self.protocol,
            memory_limit_mb=self.memory_limit_mb,
            n_workers=self.n_workers,
            dask_client=self.dask_client,
            storage=self.storage,
            study_name=self.study_name,
            out_dir=self.out_dir,
            record=self.record,
        )
        self.result_ = result
        self.best_config_ = result.best_config
        self.best_score_ = result.best_score
        self.model_ = result.model
        self.ensemble_ = result.ensemble
        self.feature_kinds_ = {c: isinstance(task.X[c].dtype, pd.CategoricalDtype) for c in task.X.columns}
        self.used_columns_ = list(task.X.columns)
        return self

    def _prepare(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        frame = self._frame(X, reset=False)
        out = {}
        for col in self.used_columns_:
            s = frame[col]
            if self.feature_kinds_[col]:
                out[col] = s.astype(str).where(s.notna(), None).astype("category")
            else:
                out[col] = pd.to_numeric(s, errors="coerce").astype(float)
        return pd.DataFrame(out)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the final model: the ensemble, or the refit best pipeline."""
        X = self._prepare(X)
        return np.asarray(self.model_.predict(X))

    def _problem_type(self, y: np.ndarray) -> str:
        raise NotImplementedError


class AutoMetaClassifier(ClassifierMixin, _AutoMetaBase):
    """A classifier that tunes a pipeline (model family + hyperparameters) on fit.

    Parameters
    ----------
    metric : str, optional
        Balanced accuracy by default; also accuracy, roc_auc, log_loss.
    time_budget_s : float
        Wall-clock budget of ``fit``.
    n_trials : int, optional
        Stop after this many configurations.
    optimizer : {"smac", "optuna", "random"} or BaseOptimizer subclass
    warm_starter : {"defaults", "knn", "portfolio", "predictor", "none"} or BaseWarmStarter
        The first configurations: ``tune(warm_start=...)``, with the same default as the
        CLI (scikit-learn reserves the name ``warm_start`` for incremental fitting).
    transfer : {"rgpe", "tstr", "pmf", "guarded"}, BaseTransfer or None
        Surrogate transfer from the meta-database.
    prune : {"box", "importance"}, BasePruner or None
        Prune the search space from the meta-database.
    metadb : SQLMetaDB or str, optional
        The meta-database (or its URL) the named parts read; the default store otherwise.
    families : sequence of str, optional
        Model families to search (all by default).
    per_trial_time_limit_s : float, optional
    isolation : {"process", "none"}
        Evaluate trials in a killable worker process (default) or in this process.
    n_jobs : int
    ensemble_size : int
        Rounds of ensemble selection over the trials after the search (``tune``'s
        ``ensemble_size``); 0 keeps the best single pipeline.
    protocol : {"auto", "cv", "holdout", "successive-halving"}
        How each trial is validated (``tune``'s ``protocol``): ``auto`` picks CV, a
        holdout or successive halving over row samples from the table's size and the
        time budget.
    seed : int
    memory_limit_mb : int, optional
        Cap of each trial's worker process (``--memory-limit-mb``); a trial over it is
        recorded as ``memory`` and the search goes on.
    n_workers : int, optional
        Trials at once, each in its own Dask worker process (``--n-workers``; needs
        ``autometa[distributed]``).
    dask_client : distributed.Client or str, optional
        Run the trials on this Dask cluster (a client or a scheduler address,
        ``--dask-scheduler``).
    storage, study_name : str, optional
        An Optuna RDB storage URL and study name shared with other processes (with
        ``optimizer="optuna"``; ``--storage``, ``--study-name``).
    out_dir : path, optional
        Where the run's files go (``--out``); fitting again with the same directory and
        data resumes the run instead of redoing its trials. Give each clone its own
        directory (e.g. under cross-validation).
    record : bool
        Add the trials to the meta-database when the search ends (the CLI records by
        default, ``--no-record``; the estimator does not, so that fitting inside a
        cross-validation loop does not store every fold).

    Attributes
    ----------
    classes_ : ndarray
    best_config_ : dict
        The best single configuration.
    best_score_ : float
        Its validation score.
    model_ : Pipeline or EnsembleClassifier
        The final model: an ensemble of trials when it beat the best single one out of
        fold (see ``ensemble_``), else the best pipeline refit on all rows.
    ensemble_ : dict or None
        The ensemble's members and weights (``TuneResult.ensemble``).
    result_ : TuneResult
    """

    def fit(self, X: Any, y: Any) -> AutoMetaClassifier:
        """Tune on (X, y) and fit the final model (ensemble or best pipeline) on all of it."""
        check_classification_targets(y)
        self._fit(X, y)
        self.classes_ = np.asarray(self.model_.classes_)
        return self

    def _problem_type(self, y: np.ndarray) -> str:
        return "binary" if len(np.unique(y)) == 2 else "multiclass"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        X = self._prepare(X)
        return np.asarray(self.model_.predict_proba(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = True
        return tags


class AutoMetaRegressor(RegressorMixin, _AutoMetaBase):
    """A regressor that tunes a pipeline on fit; RMSE by default (also mae, r2).

    Parameters and attributes as :class:`AutoMetaClassifier` (without ``classes_``).
    """

    def fit(self, X: Any, y: Any) -> AutoMetaRegressor:
        """Tune on (X, y) and fit the final model (ensemble or best pipeline) on all of it."""
        y = np.asarray(y, dtype=float)
        self._fit(X, y)
        return self

    def _problem_type(self, y: np.ndarray) -> str:
        return "regression"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = True
        return tags
