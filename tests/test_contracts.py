"""Every optimizer and every warm starter of autometa through the contract suites of
:mod:`autometa.testing`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autometa.metadb import SQLMetaDB
from autometa.optimizers import BACKENDS, OptunaOptimizer, RandomOptimizer, SMACOptimizer
from autometa.spaces import config_key, fixed_design, get_space
from autometa.testing import OptimizerContract, OptimizerFactory, WarmStarterContract, synthetic_loss
from autometa.transfer import (
    PMF,
    RGPE,
    TRANSFERS,
    TSTR,
    GuardedEnsemble,
    SurrogateStore,
    TaskSurrogate,
    encode_configs,
    fit_pmf_matrix,
)
from autometa.warmstart import (
    WARM_STARTERS,
    BaseWarmStarter,
    DefaultsWarmStarter,
    KNNWarmStarter,
    PortfolioWarmStarter,
    PredictorWarmStarter,
)

METADATA = Path(__file__).resolve().parents[1] / "metadata"


def _suites(contract: type) -> list[type]:
    return [c for c in globals().values() if isinstance(c, type) and issubclass(c, contract) and c.__name__.startswith("Test")]


def test_every_implementation_is_under_contract():
    """A new backend or warm starter gets a suite below."""
    assert set(BACKENDS.values()) <= {c.optimizer_class for c in _suites(OptimizerContract)}
    assert set(WARM_STARTERS.values()) <= {c.starter_class for c in _suites(WarmStarterContract)}
    assert set(TRANSFERS) <= {c.transfer for c in _suites(_WithTransfer)}


# -- optimizers ------------------------------------------------------------------------------


#: Every optimizer samples its own copy of the space (BaseOptimizer), which fixed this for
#: random search; SMAC3 still keeps part of its random state outside the optimizer object.
SMAC_SHARED_STATE = {
    "test_optimizers_sharing_a_space_are_independent": (
        "two SMAC3 facades asked in turn in one process propose differently than each alone: SMAC keeps "
        "random state outside the optimizer (the space is already an own copy)"
    ),
}


class TestSMACOptimizer(OptimizerContract):
    optimizer_class = SMACOptimizer
    known_violations = SMAC_SHARED_STATE


class TestOptunaOptimizer(OptimizerContract):
    optimizer_class = OptunaOptimizer


class TestRandomOptimizer(OptimizerContract):
    optimizer_class = RandomOptimizer


# -- optimizers with a transfer ensemble (the optimizer_factory hook) -------------------------


@pytest.fixture(scope="module")
def synthetic_store():
    """Surrogates of two stored tasks on the contract's space: one task whose losses are the
    tests' synthetic loss, one its mirror image."""
    families = ["linear", "knn", "decision_tree"]
    space = get_space("binary", families=families)
    configs = [c for f in families for c in fixed_design("binary", f, n=12, seed=0)]
    X = encode_configs(space, configs)
    y = np.array([synthetic_loss(c) for c in configs])
    surrogates = {"same": TaskSurrogate.fit("same", space, X, y), "mirror": TaskSurrogate.fit("mirror", space, X, -y)}
    return SurrogateStore("balanced_accuracy", "binary", surrogates, pd.DataFrame(index=list(surrogates)),
                          {"same": configs[:3], "mirror": configs[-3:]}, "contract-tests")


@pytest.fixture(scope="module")
def synthetic_pmf():
    """A factorized matrix of six stored tasks on the contract's space: the tests'
    synthetic loss scaled, some of them mirrored, plus noise."""
    families = ["linear", "knn", "decision_tree"]
    configs = [c for f in families for c in fixed_design("binary", f, n=12, seed=0)]
    base = np.array([synthetic_loss(c) for c in configs])
    rng = np.random.default_rng(0)
    scales = [1.0, 0.8, 1.2, 0.5, -1.0, -0.5]
    losses = pd.DataFrame([a * base + 0.05 * rng.standard_normal(len(base)) for a in scales],
                          index=[f"task{i}" for i in range(len(scales))], columns=[config_key(c) for c in configs])
    return fit_pmf_matrix(losses, {config_key(c): c for c in configs}, rank=2)


class _WithTransfer(OptimizerContract):
    """An optimizer whose surrogate (SMAC) or sampler (Optuna) is a transfer ensemble, a new
    one per optimizer; ``transfer`` is its name in :data:`autometa.transfer.TRANSFERS`."""

    transfer: str
    n_asks = 10

    def make_ensemble(self, space, seed, synthetic_store, synthetic_pmf):
        kinds = {"rgpe": lambda: RGPE(synthetic_store, space, seed=seed),
                 "tstr": lambda: TSTR(synthetic_store, space, seed=seed),
                 "pmf": lambda: PMF(synthetic_pmf, space, seed=seed),
                 "guarded": lambda: GuardedEnsemble(PMF(synthetic_pmf, space, seed=seed), seed=seed)}
        return kinds[self.transfer]()

    @pytest.fixture
    def optimizer_factory(self, synthetic_store, synthetic_pmf) -> OptimizerFactory:
        def make(space, *, seed, initial_configs=()):
            ensemble = self.make_ensemble(space, seed, synthetic_store, synthetic_pmf)
            return self.optimizer_class(space, seed=seed, initial_configs=initial_configs, transfer=ensemble)

        return make


@pytest.mark.slow
class TestSMACOptimizerWithRGPE(_WithTransfer):
    optimizer_class = SMACOptimizer
    transfer = "rgpe"
    known_violations = SMAC_SHARED_STATE


@pytest.mark.slow
class TestOptunaOptimizerWithTSTR(_WithTransfer):
    optimizer_class = OptunaOptimizer
    transfer = "tstr"


@pytest.mark.slow
class TestSMACOptimizerWithPMF(_WithTransfer):
    optimizer_class = SMACOptimizer
    transfer = "pmf"
    known_violations = SMAC_SHARED_STATE


@pytest.mark.slow
class TestOptunaOptimizerWithGuarded(_WithTransfer):
    optimizer_class = OptunaOptimizer
    transfer = "guarded"


# -- warm starters ---------------------------------------------------------------------------


class _ProjectMetaData(WarmStarterContract):
    """The checkout's meta-dataset (tests/conftest.py sets $AUTOMETA_METADATA_DIR=none)."""

    @pytest.fixture
    def metadata_dir(self) -> Path:
        if not (METADATA / "MANIFEST.json").is_file():
            pytest.skip("no shipped meta-dataset in this checkout")
        return METADATA


class TestDefaultsWarmStarter(_ProjectMetaData):
    starter_class = DefaultsWarmStarter
    uses_metadb = False


class TestKNNWarmStarter(_ProjectMetaData):
    starter_class = KNNWarmStarter


class TestPortfolioWarmStarter(_ProjectMetaData):
    starter_class = PortfolioWarmStarter


class TestNeighborPortfolioWarmStarter(_ProjectMetaData):
    starter_class = PortfolioWarmStarter

    def make_starter(self, metadb: SQLMetaDB | None) -> BaseWarmStarter:
        return PortfolioWarmStarter(metadb, neighbors=5)


@pytest.fixture(scope="module")
def predictor_cache(tmp_path_factory):
    """Where fitted predictors are cached: never the user's cache directory."""
    return tmp_path_factory.mktemp("predictor-cache")


@pytest.mark.slow
@pytest.mark.timeout(1200)
class TestPredictorWarmStarter(_ProjectMetaData):
    """Fitting the predictor on the meta-database takes minutes on a small machine: a bag of
    one model over fewer fresh samples (the contract does not depend on either), fitted once
    per session into a temporary cache."""

    starter_class = PredictorWarmStarter

    @pytest.fixture(autouse=True)
    def _temporary_cache(self, predictor_cache, monkeypatch):
        monkeypatch.setenv("AUTOMETA_CACHE_DIR", str(predictor_cache))

    def make_starter(self, metadb: SQLMetaDB | None) -> BaseWarmStarter:
        return PredictorWarmStarter(metadb, n_models=1, n_samples=100)
