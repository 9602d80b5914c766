"""Model families: their ConfigSpace hyperparameters and how a configuration becomes a model.

Ranges follow the tunability literature (Probst, Boulesteix & Bischl 2019; auto-sklearn's
spaces): wide, on log scales where a parameter acts multiplicatively. Each family's default
is scikit-learn's default wherever the space can express it, so "the default configuration"
means what a user of scikit-learn would get.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ConfigSpace import Categorical, Float, Integer
from ConfigSpace.hyperparameters import Hyperparameter
from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV

__all__ = ["Family", "FAMILIES"]

_CLF = ("binary", "multiclass")
_ALL = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Family:
    """A model family.

    Attributes
    ----------
    name : str
        Identifier, also the prefix of its hyperparameters in the combined space.
    problem_types : tuple of str
        Problem types it has an estimator for.
    encoding : {"ordinal", "native", "onehot"}
        How categorical columns reach the estimator; "onehot" families also get scaled
        numeric features.
    hyperparameters : callable
        ``problem_type -> list of (hyperparameter, parent_name or None, parent_value)``;
        a parent makes the hyperparameter conditional on another of the same family.
    build : callable
        ``(params, problem_type, context) -> estimator``; ``context`` holds ``seed``,
        ``n_jobs``, ``n_rows`` (training rows) and ``n_encoded`` (encoded feature count).
    second_defaults : mapping
        ``problem_type -> (why, values)``: a second configuration the package's default
        start evaluates after every family's default for that problem type (values not
        given stay at their defaults), and the reason shown with it.
    """

    name: str
    problem_types: tuple[str, ...]
    encoding: str
    hyperparameters: Callable[[str], list[tuple[Hyperparameter, str | None, Any]]]
    build: Callable[[Mapping[str, Any], str, Mapping[str, Any]], BaseEstimator]
    second_defaults: Mapping[str, tuple[str, Mapping[str, Any]]] = field(default_factory=dict)


def _cw(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
    if problem_type == "regression":
        return []
    return [(Categorical("class_weight", ["none", "balanced"], default="none"), None, None)]


def _class_weight(p: Mapping[str, Any]) -> str | None:
    return None if p.get("class_weight", "none") == "none" else "balanced"


# ---------------------------------------------------------------- forests and trees
def _forest_hps(bootstrap_default: bool) -> Callable[[str], list[tuple[Hyperparameter, str | None, Any]]]:
    def hps(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
        clf = problem_type != "regression"
        out: list[tuple[Hyperparameter, str | None, Any]] = [
            (Integer("n_estimators", (16, 512), log=True, default=100), None, None),
            # Fraction of features per split; sklearn's default is sqrt(p) for classifiers, all for
            # regressors: 0.25 and 1.0 stand in for them.
            (Float("max_features", (0.02, 1.0), default=0.25 if clf else 1.0), None, None),
            (Integer("min_samples_leaf", (1, 64), log=True, default=1), None, None),
            (Integer("min_samples_split", (2, 64), log=True, default=2), None, None),
            (Categorical("bootstrap", [True, False], default=bootstrap_default), None, None),
        ]
        if clf:
            out.append((Categorical("criterion", ["gini", "entropy"], default="gini"), None, None))
        return out + _cw(problem_type)

    return hps


def _forest_build(cls_clf: type, cls_reg: type) -> Callable[..., BaseEstimator]:
    def build(p: Mapping[str, Any], problem_type: str, ctx: Mapping[str, Any]) -> BaseEstimator:
        kw: dict[str, Any] = dict(
            n_estimators=int(p["n_estimators"]),
            max_features=float(p["max_features"]),
            min_samples_leaf=int(p["min_samples_leaf"]),
            min_samples_split=int(p["min_samples_split"]),
            bootstrap=bool(p["bootstrap"]),
            random_state=ctx["seed"],
            n_jobs=ctx["n_jobs"],
        )
        if problem_type == "regression":
            return cls_reg(**kw)
        return cls_clf(criterion=p["criterion"], class_weight=_class_weight(p), **kw)

    return build


def _tree_hps(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
    out: list[tuple[Hyperparameter, str | None, Any]] = [
        (Integer("max_depth", (1, 32), default=32), None, None),
        (Integer("min_samples_leaf", (1, 64), log=True, default=1), None, None),
        (Integer("min_samples_split", (2, 64), log=True, default=2), None, None),
        (Float("max_features", (0.1, 1.0), default=1.0), None, None),
        (Float("ccp_alpha", (1e-6, 0.1), log=True, default=1e-6), None, None),
    ]
    if problem_type != "regression":
        out.append((Categorical("criterion", ["gini", "entropy"], default="gini"), None, None))
    return out + _cw(problem_type)


def _tree_build(p: Mapping[str, Any], problem_type: str, ctx: Mapping[str, Any]) -> BaseEstimator:
    kw: dict[str, Any] = dict(
        max_depth=int(p["max_depth"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        min_samples_split=int(p["min_samples_split"]),
        max_features=float(p["max_features"]),
        ccp_alpha=float(p["ccp_alpha"]),
        random_state=ctx["seed"],
    )
    if problem_type == "regression":
        return tree.DecisionTreeRegressor(**kw)
    return tree.DecisionTreeClassifier(criterion=p["criterion"], class_weight=_class_weight(p), **kw)


# ---------------------------------------------------------------- gradient boosting
def _hgb_hps(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
    out: list[tuple[Hyperparameter, str | None, Any]] = [
        (Float("learning_rate", (0.01, 1.0), log=True, default=0.1), None, None),
        (Integer("max_iter", (16, 1024), log=True, default=100), None, None),
        (Integer("max_leaf_nodes", (4, 512), log=True, default=31), None, None),
        (Integer("min_samples_leaf", (1, 200), log=True, default=20), None, None),
        # sklearn's default is 0: 1e-10 is its stand-in on the log scale.
        (Float("l2_regularization", (1e-10, 10.0), log=True, default=1e-10), None, None),
        (Float("max_features", (0.1, 1.0), default=1.0), None, None),
    ]
    return out + _cw(problem_type)


def _hgb_build(p: Mapping[str, Any], problem_type: str, ctx: Mapping[str, Any]) -> BaseEstimator:
    kw: dict[str, Any] = dict(
        learning_rate=float(p["learning_rate"]),
        max_iter=int(p["max_iter"]),
        max_leaf_nodes=int(p["max_leaf_nodes"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        l2_regularization=float(p["l2_regularization"]),
        max_features=float(p["max_features"]),
        categorical_features=ctx.get("categorical_mask"),
        random_state=ctx["seed"],
    )
    if problem_type == "regression":
        return ensemble.HistGradientBoostingRegressor(**kw)
    return ensemble.HistGradientBoostingClassifier(class_weight=_class_weight(p), **kw)


#: Regression losses keep falling with more, smaller boosting steps long after a
#: classifier's balanced accuracy has stopped moving, and sklearn's default (100 steps of
#: 0.1) stops short on tables of a few thousand rows. The slow configuration (steps a
#: third the size, ten times as many, half the features per split) costs about 5-10x the
#: default's fit, so the default start evaluates it last.
_HGB_SLOW = (
    "1,000 boosting steps of 0.03 on half the features (regression losses keep falling with more steps)",
    {"learning_rate": 0.03, "max_iter": 1000, "min_samples_leaf": 10, "max_features": 0.5},
)


# ---------------------------------------------------------------- kernel, linear, neighbours, MLP
def _svm_hps(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
    out: list[tuple[Hyperparameter, str | None, Any]] = [
        (Float("C", (1e-3, 1e4), log=True, default=1.0), None, None),
        # gamma = gamma_scale / n_features on standardized inputs: 1.0 is sklearn's "scale".
        (Float("gamma_scale", (1e-3, 1e3), log=True, default=1.0), None, None),
    ]
    if problem_type == "regression":
        out.append((Float("epsilon", (1e-3, 1.0), log=True, default=0.1), None, None))
    return out + _cw(problem_type)


def _svm_build(p: Mapping[str, Any], problem_type: str, ctx: Mapping[str, Any]) -> BaseEstimator:
    gamma = float(p["gamma_scale"]) / max(1, int(ctx["n_encoded"]))
    if problem_type == "regression":
        return svm.SVR(C=float(p["C"]), gamma=gamma, epsilon=float(p["epsilon"]), cache_size=500)
    est = svm.SVC(C=float(p["C"]), gamma=gamma, class_weight=_class_weight(p), cache_size=500)
    if ctx.get("needs_proba", False):  # log loss needs probabilities: Platt scaling on 3 folds
        return CalibratedClassifierCV(est, method="sigmoid", cv=3, ensemble=False)
    return est


def _linear_hps(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
    if problem_type == "regression":
        return [
            (Float("alpha", (1e-6, 1e4), log=True, default=1.0), None, None),
        ]
    return [
        (Float("C", (1e-4, 1e4), log=True, default=1.0), None, None),
        (Categorical("penalty", ["l2", "elasticnet"], default="l2"), None, None),
        (Float("l1_ratio", (0.0, 1.0), default=0.5), "penalty", "elasticnet"),
    ] + _cw(problem_type)


def _linear_build(p: Mapping[str, Any], problem_type: str, ctx: Mapping[str, Any]) -> BaseEstimator:
    if problem_type == "regression":
        return linear_model.Ridge(alpha=float(p["alpha"]), random_state=ctx["seed"])
    elastic = p.get("penalty") == "elasticnet"
    return linear_model.LogisticRegression(
        C=float(p["C"]),
        l1_ratio=float(p["l1_ratio"]) if elastic else 0.0,
        solver="saga" if elastic else "lbfgs",
        max_iter=1000,
        class_weight=_class_weight(p),
        random_state=ctx["seed"],
    )


def _knn_hps(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
    return [
        (Integer("n_neighbors", (1, 100), log=True, default=5), None, None),
        (Categorical("weights", ["uniform", "distance"], default="uniform"), None, None),
        (Categorical("p", [1, 2], default=2), None, None),
    ]


def _knn_build(p: Mapping[str, Any], problem_type: str, ctx: Mapping[str, Any]) -> BaseEstimator:
    k = max(1, min(int(p["n_neighbors"]), int(ctx["n_rows"]) - 1))
    cls = neighbors.KNeighborsRegressor if problem_type == "regression" else neighbors.KNeighborsClassifier
    return cls(n_neighbors=k, weights=p["weights"], p=int(p["p"]), n_jobs=ctx["n_jobs"])


def _mlp_hps(problem_type: str) -> list[tuple[Hyperparameter, str | None, Any]]:
    return [
        (Integer("n_hidden_layers", (1, 3), default=1), None, None),
        (Integer("hidden_width", (16, 512), log=True, default=100), None, None),
        (Float("alpha", (1e-7, 1.0), log=True, default=1e-4), None, None),
        (Float("learning_rate_init", (1e-4, 1e-1), log=True, default=1e-3), None, None),
        (Categorical("activation", ["relu", "tanh"], default="relu"), None, None),
    ]


def _mlp_build(p: Mapping[str, Any], problem_type: str, ctx: Mapping[str, Any]) -> BaseEstimator:
    kw: dict[str, Any] = dict(
        hidden_layer_sizes=(int(p["hidden_width"]),) * int(p["n_hidden_layers"]),
        alpha=float(p["alpha"]),
        learning_rate_init=float(p["learning_rate_init"]),
        activation=p["activation"],
        early_stopping=int(ctx["n_rows"]) >= 100,
        max_iter=200,
        random_state=ctx["seed"],
    )
    if problem_type == "regression":
        return neural_network.MLPRegressor(**kw)
    return neural_network.MLPClassifier(**kw)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family("hist_gradient_boosting", _ALL, "native", _hgb_hps, _hgb_build, {"regression": _HGB_SLOW}),
        Family(
            "random_forest",
            _ALL,
            "ordinal",
            _forest_hps(True),
            _forest_build(ensemble.RandomForestClassifier, ensemble.RandomForestRegressor),
        ),
        Family(
            "extra_trees",
            _ALL,
            "ordinal",
            _forest_hps(False),
            _forest_build(ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor),
        ),
        Family("linear", _ALL, "onehot", _linear_hps, _linear_build),
        Family("svm", _ALL, "onehot", _svm_hps, _svm_build),
        Family("knn", _ALL, "onehot", _knn_hps, _knn_build),
        Family("mlp", _ALL, "onehot", _mlp_hps, _mlp_build),
        Family("decision_tree", _ALL, "ordinal", _tree_hps, _tree_build),
    ]
}
