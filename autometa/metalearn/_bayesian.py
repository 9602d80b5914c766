"""A Bayesian meta-learner: exact Bayesian linear regression over meta-learned features with a
meta-learned conjugate prior (ALPaCA, Harrison, Sharma and Pavone 2018, with the noise
variance inferred per task).

For one task with support features ``Phi = phi(support_x)`` (``n x m``) and targets ``y``
(one column per output), the head's weights ``w`` and the noise variance ``s2`` have the
normal-inverse-gamma prior ``s2 ~ InvGamma(a0, b0)``, ``w | s2 ~ N(m0, s2 L0^-1)``. The
posterior is of the same family: ``Ln = L0 + Phi^T Phi``, ``mn = Ln^-1 (L0 m0 + Phi^T y)``,
``an = a0 + n / 2``, ``bn = b0 + (y^T y + m0^T L0 m0 - mn^T Ln mn) / 2``, and the
predictive distribution of a query point is a Student t with ``2 an`` degrees of freedom,
location ``phi(x)^T mn`` and squared scale ``(bn / an) (1 + phi(x)^T Ln^-1 phi(x))``.
Inferring the noise per task matters on sinusoids, whose amplitudes span 0.1 to 5: one
noise level shared by all tasks gives intervals far too wide on most tasks and too narrow on
the loudest. The features ``phi`` and the prior (``m0``, ``L0``, ``a0``, ``b0``) are
meta-learned by minimising the query points' predictive negative log-likelihood. Inference
is closed form (a Cholesky solve): adaptation is one forward pass and its uncertainty needs
no sampling.
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

__all__ = ["ALPaCA", "StudentTPredictor", "student_t_nll"]


def _split(prediction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    loc, scale2, dof = prediction.chunk(3, dim=-1)
    return loc, scale2, dof


def student_t_nll(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``target`` under the Student t predictive, with the
    prediction ``(n, 3d)`` holding the locations, the squared scales and the degrees of freedom."""
    loc, scale2, dof = _split(prediction)
    z2 = (target - loc) ** 2 / scale2
    log_density = (torch.lgamma((dof + 1) / 2) - torch.lgamma(dof / 2) - 0.5 * torch.log(dof * math.pi * scale2)
                   - (dof + 1) / 2 * torch.log1p(z2 / dof))  # fmt: skip
    return -log_density.mean()


def _mean_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((_split(prediction)[0] - target) ** 2)


def _t_quantile(probability: float, dof: torch.Tensor) -> torch.Tensor:
    from scipy.stats import t as student_t

    values = student_t.ppf(probability, dof.detach().double().cpu().numpy())
    return torch.as_tensor(values, dtype=dof.dtype, device=dof.device)


def _coverage(prediction: torch.Tensor, target: torch.Tensor, level: float) -> torch.Tensor:
    loc, scale2, dof = _split(prediction)
    half = _t_quantile(0.5 + level / 2, dof) * scale2.sqrt()
    return ((target - loc).abs() <= half).to(torch.float32).mean()


class _ALPaCAModel(nn.Module):
    def __init__(self, features: nn.Module, feature_dim: int, target_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.features = features
        self.prior_mean = nn.Parameter(torch.zeros(feature_dim, target_dim, dtype=dtype))
        # L0 = T T^T with T lower-triangular, its diagonal exp(.) so that L0 stays positive definite
        self.prior_factor = nn.Parameter(torch.zeros(feature_dim, feature_dim, dtype=dtype))
        self.log_a0 = nn.Parameter(torch.full((target_dim,), math.log(2.0), dtype=dtype))
        self.log_b0 = nn.Parameter(torch.full((target_dim,), math.log(0.2), dtype=dtype))

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        phi, phi_q = self.features(support_x), self.features(query_x)
        # the posterior in the parameters' precision (at least float32), outside any autocast region
        dtype = torch.promote_types(self.prior_mean.dtype, torch.float32)
        with torch.autocast(device_type=phi.device.type, enabled=False):
            return self._posterior(phi.to(dtype), support_y.to(dtype), phi_q.to(dtype))

    def _posterior(self, phi: torch.Tensor, support_y: torch.Tensor, phi_q: torch.Tensor) -> torch.Tensor:
        y = support_y.reshape(support_y.shape[0], -1)
        factor = self.prior_factor.tril(-1) + torch.diag_embed(self.prior_factor.diagonal().exp())
        prior_precision = factor @ factor.T
        chol = torch.linalg.cholesky(prior_precision + phi.T @ phi)
        posterior_mean = torch.cholesky_solve(prior_precision @ self.prior_mean + phi.T @ y, chol)  # (m, d)
        a0, b0 = self.log_a0.exp(), self.log_b0.exp()
        fit = ((y**2).sum(0) + ((factor.T @ self.prior_mean) ** 2).sum(0)
               - ((chol.T @ posterior_mean) ** 2).sum(0))  # fmt: skip
        an = a0 + 0.5 * y.shape[0]
        bn = b0 + 0.5 * fit.clamp_min(0.0)
        spread = torch.linalg.solve_triangular(chol, phi_q.T, upper=False)  # (m, n_query)
        scale2 = (bn / an) * (1.0 + (spread**2).sum(dim=0)).unsqueeze(-1)  # (n_query, d)
        loc = phi_q @ posterior_mean
        return torch.cat([loc, scale2, (2 * an).expand_as(loc)], dim=-1)


@dataclass(frozen=True)
class StudentTPredictor(EpisodePredictor):
    """The posterior predictive of one task; calling it gives the means, :meth:`distribution`
    the whole Student t distribution."""

    def distribution(self, x: torch.Tensor) -> torch.distributions.StudentT:
        """The predictive distribution at ``x``: ``loc``, ``scale`` and ``df`` are ``(n, d)``."""
        loc, scale2, dof = _split(super().__call__(x))
        return torch.distributions.StudentT(dof, loc, scale2.sqrt())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _split(super().__call__(x))[0]


class ALPaCA(EpisodicLearner):
    """ALPaCA (Harrison et al. 2018): Bayesian linear regression on meta-learned features,
    the noise variance inferred per task (a normal-inverse-gamma prior).

    The Bayesian meta-learner of the package, for regression: it returns a predictive
    distribution (a Student t; :meth:`calibration` scores the query negative
    log-likelihood and interval coverage); :meth:`evaluate` scores the mean squared error
    of the predictive mean by default, like the other learners. Predictions are
    ``(n, 3d)``: locations, squared scales, degrees of freedom.

    Parameters
    ----------
    features : torch.nn.Module
        Input -> ``(n, feature_dim)`` features, e.g. ``make_mlp(1, (40, 40), 32)``.
    feature_dim : int
    target_dim : int
        Width of the targets.
    seed : int or None
        Seed of the prior's initialisation (the prior mean starts at 0, the prior precision
        at the identity, the inverse-gamma prior of the noise at a0 = 2, b0 = 0.2).
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
        super().__init__(model, loss_fn=student_t_nll, vectorize=vectorize, amp=amp)

    def _prepare(self, batch: TaskBatch) -> None:
        if not batch.support_y.is_floating_point():
            raise InputError("ALPaCA regresses: it needs floating-point targets in support_y; got int64 labels.")

    def adapt(  # type: ignore[override]
        self, support_x: torch.Tensor, support_y: torch.Tensor, *, steps: int | None = None
    ) -> StudentTPredictor:
        """The posterior predictive of one new task given its support set (``steps`` is ignored)."""
        base = super().adapt(support_x, support_y)
        return StudentTPredictor(base.model, base.params, base.buffers, base.support_x, base.support_y)

    def evaluate(
        self,
        batch: TaskBatch,
        *,
        steps: Sequence[int] | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[int, torch.Tensor]:
        """Query ``metric`` of every task, keyed ``0``; by default the MSE of the predictive mean
        (``metric`` receives the ``(n, 3d)`` locations, squared scales and degrees of freedom)."""
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
        predictions = self._query_predictions(batch).double()
        query_y = batch.query_y.to(self.device).double()
        rows = [(student_t_nll(p, y), _coverage(p, y, level), _mean_mse(p, y))
                for p, y in zip(predictions, query_y, strict=True)]  # fmt: skip
        return {name: torch.stack([r[i] for r in rows]).float().cpu() for i, name in enumerate(("nll", "coverage", "mse"))}
