"""A Bayesian meta-learner: exact Bayesian linear regression over meta-learned features with a
meta-learned prior (ALPaCA, Harrison, Sharma and Pavone 2018).

For one task with support features ``Phi = phi(support_x)`` (``n x m``) and targets ``Y``
(``n x d``), the head's weights ``W`` (``m x d``) have the prior ``N(M0, sigma^2 L0^-1)``
per output column; the posterior is Gaussian with precision ``Ln = L0 + Phi^T Phi`` and
mean ``Mn = Ln^-1 (L0 M0 + Phi^T Y)``, and the predictive distribution of a query point is
``N(phi(x)^T Mn, sigma^2 (1 + phi(x)^T Ln^-1 phi(x)))``. The features ``phi``, the prior
(``M0``, ``L0``) and the noise ``sigma^2`` are meta-learned by minimising the query
points' predictive negative log-likelihood. Inference is closed form (a Cholesky solve),
so adaptation is one forward pass and its uncertainty needs no sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from autometa.exceptions import InputError
from autometa.metalearn._episodic import EpisodePredictor, EpisodicLearner, seeded
from autometa.metalearn._tasks import TaskBatch

__all__ = ["ALPaCA", "GaussianPredictor", "gaussian_nll"]

_Z90 = 1.6448536269514722  # the 95% quantile of the standard normal: a central 90% interval


def _split(prediction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = prediction.chunk(2, dim=-1)
    return mean, var


def gaussian_nll(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``target`` under ``N(mean, var)``, with the prediction
    ``(n, 2d)`` holding the means then the variances."""
    mean, var = _split(prediction)
    return 0.5 * torch.mean(torch.log(2 * math.pi * var) + (target - mean) ** 2 / var)


def _mean_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((_split(prediction)[0] - target) ** 2)


def _coverage(prediction: torch.Tensor, target: torch.Tensor, z: float) -> torch.Tensor:
    mean, var = _split(prediction)
    return ((target - mean).abs() <= z * var.sqrt()).to(torch.float32).mean()


class _ALPaCAModel(nn.Module):
    def __init__(self, features: nn.Module, feature_dim: int, target_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.features = features
        self.prior_mean = nn.Parameter(torch.zeros(feature_dim, target_dim, dtype=dtype))
        # L0 = T T^T with T lower-triangular, its diagonal exp(.) so that L0 stays positive definite
        self.prior_factor = nn.Parameter(torch.zeros(feature_dim, feature_dim, dtype=dtype))
        self.log_noise = nn.Parameter(torch.full((target_dim,), math.log(0.1), dtype=dtype))

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        phi, phi_q = self.features(support_x), self.features(query_x)
        y = support_y.reshape(support_y.shape[0], -1).to(phi.dtype)
        factor = self.prior_factor.tril(-1) + torch.diag_embed(self.prior_factor.diagonal().exp())
        prior_precision = factor @ factor.T
        chol = torch.linalg.cholesky(prior_precision + phi.T @ phi)
        posterior_mean = torch.cholesky_solve(prior_precision @ self.prior_mean + phi.T @ y, chol)
        mean = phi_q @ posterior_mean
        spread = torch.linalg.solve_triangular(chol, phi_q.T, upper=False)  # (m, n_query)
        var = self.log_noise.exp() * (1.0 + (spread**2).sum(dim=0)).unsqueeze(-1)
        return torch.cat([mean, var], dim=-1)


@dataclass(frozen=True)
class GaussianPredictor(EpisodePredictor):
    """The posterior predictive of one task; calling it gives the means, :meth:`distribution`
    the means and variances."""

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, variance)`` of the predictive distribution at ``x``, each ``(n, d)``."""
        return _split(super().__call__(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.distribution(x)[0]


class ALPaCA(EpisodicLearner):
    """ALPaCA (Harrison et al. 2018): Bayesian linear regression on meta-learned features.

    The Bayesian meta-learner of the package, for regression: it returns a calibrated
    predictive distribution (:meth:`calibration` scores the query negative log-likelihood
    and interval coverage); :meth:`evaluate` scores the mean squared error of the
    predictive mean by default, like the other learners. Predictions are ``(n, 2d)``:
    means, then variances.

    Parameters
    ----------
    features : torch.nn.Module
        Input -> ``(n, feature_dim)`` features, e.g. ``make_mlp(1, (40, 40), 32)``.
    feature_dim : int
    target_dim : int
        Width of the targets.
    seed : int or None
        Seed of the prior's initialisation (the prior mean starts at 0, the prior precision
        at the identity, the noise variance at 0.1).
    vectorize, amp : bool
        As in :class:`BaseMetaLearner`.
    """

    def __init__(self, features: nn.Module, *, feature_dim: int, target_dim: int = 1, seed: int | None = 0,
                 vectorize: bool = True, amp: bool = False) -> None:  # fmt: skip
        if not isinstance(features, nn.Module):
            raise InputError(f"The 'features' parameter of ALPaCA must be a torch.nn.Module; got "
                             f"{type(features).__name__}.")  # fmt: skip
        for name, value in (("feature_dim", feature_dim), ("target_dim", target_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"The '{name}' parameter of ALPaCA must be an int >= 1; got {value!r}.")
        first = next(features.parameters())
        model = seeded(seed, lambda: _ALPaCAModel(features, feature_dim, target_dim, first.dtype)).to(first.device)
        super().__init__(model, loss_fn=gaussian_nll, vectorize=vectorize, amp=amp)

    def _prepare(self, batch: TaskBatch) -> None:
        if not batch.support_y.is_floating_point():
            raise InputError("ALPaCA regresses: it needs floating-point targets in support_y; got int64 labels.")

    def adapt(  # type: ignore[override]
        self, support_x: torch.Tensor, support_y: torch.Tensor, *, steps: int | None = None
    ) -> GaussianPredictor:
        """The posterior predictive of one new task given its support set (``steps`` is ignored)."""
        base = super().adapt(support_x, support_y)
        return GaussianPredictor(base.model, base.params, base.buffers, base.support_x, base.support_y)

    def evaluate(
        self,
        batch: TaskBatch,
        *,
        steps: Sequence[int] | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[int, torch.Tensor]:
        """Query ``metric`` of every task, keyed ``0``; by default the MSE of the predictive mean
        (``metric`` receives the ``(n, 2d)`` means and variances)."""
        return super().evaluate(batch, metric=_mean_mse if metric is None else metric)

    def calibration(self, batch: TaskBatch, *, level: float = 0.9) -> dict[str, torch.Tensor]:
        """Per-task calibration of the predictive distribution on the query points.

        Parameters
        ----------
        batch : TaskBatch
        level : float
            Probability of the central predictive interval whose coverage is measured.

        Returns
        -------
        dict of str to torch.Tensor
            ``"nll"``: mean negative log-likelihood of the query targets; ``"coverage"``:
            fraction of query targets inside the central ``level`` interval; ``"mse"``: of
            the predictive mean. Each ``(n_tasks,)`` on the CPU.
        """
        if not 0 < level < 1:
            raise InputError(f"The 'level' parameter of ALPaCA.calibration must be in (0, 1); got {level!r}.")
        z = _Z90 if level == 0.9 else float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2)))
        predictions = self._query_predictions(batch).double()
        query_y = batch.query_y.to(self.device).double()
        rows = [(gaussian_nll(p, y), _coverage(p, y, z), _mean_mse(p, y)) for p, y in zip(predictions, query_y, strict=True)]
        return {name: torch.stack([r[i] for r in rows]).float().cpu() for i, name in enumerate(("nll", "coverage", "mse"))}
