"""Implicit MAML (Rajeswaran, Finn, Kakade and Levine 2019): meta-gradients through the
optimum of a proximally regularized inner problem, by conjugate gradient.

For meta-parameters ``theta`` a task's adapted parameters approximately minimise
``G(phi) = L_support(phi) + (lambda / 2) ||phi - theta||^2`` (``inner_steps`` gradient
steps on ``G`` from ``theta``). At the minimiser, ``d phi / d theta = (I + H / lambda)^-1``
with ``H`` the Hessian of the support loss, so the meta-gradient of the query loss is
``(I + H / lambda)^-1 grad L_query(phi)``: the solution of a linear system, found by
``cg_steps`` conjugate-gradient iterations that use Hessian-vector products only. The
inner trajectory is never differentiated: memory does not grow with the inner steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import grad, grad_and_value, vjp, vmap

from autometa.exceptions import InputError
from autometa.metalearn._adapt import AdaptedModel
from autometa.metalearn._algorithms import BaseMetaLearner
from autometa.metalearn._functional import LossFn, Params, buffers_of, mse_loss, predict
from autometa.metalearn._tasks import TaskBatch

__all__ = ["IMAML", "conjugate_gradient"]


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[n] * b[n]).sum() for n in a)  # type: ignore[return-value]


def conjugate_gradient(apply: Callable[[Params], Params], b: Params, *, steps: int) -> Params:
    """Approximately solve ``apply(x) = b`` for a symmetric positive-definite linear map.

    A fixed number of iterations and no data-dependent branches, so it runs under
    ``vmap``. Starts from ``x = 0``.

    Parameters
    ----------
    apply : callable
        ``x -> A x`` on parameter dictionaries.
    b : dict of str to torch.Tensor
    steps : int
        Iterations (exact after as many as there are unknowns, in exact arithmetic).
    """
    tiny = torch.finfo(next(iter(b.values())).dtype).tiny
    x = {n: torch.zeros_like(v) for n, v in b.items()}
    r = dict(b)
    p = dict(b)
    rr = _dot(r, r)
    for _ in range(steps):
        ap = apply(p)
        alpha = rr / (_dot(p, ap) + tiny)
        x = {n: x[n] + alpha * p[n] for n in x}
        r = {n: r[n] - alpha * ap[n] for n in r}
        rr_new = _dot(r, r)
        beta = rr_new / (rr + tiny)
        p = {n: r[n] + beta * p[n] for n in p}
        rr = rr_new
    return x


class IMAML(BaseMetaLearner):
    """iMAML: implicit meta-gradients by conjugate gradient with proximal regularization.

    The inner loop runs ``inner_steps`` gradient steps of size ``inner_lr`` on the support
    loss plus ``(regularization / 2) ||phi - theta||^2``, from ``theta``; the meta-gradient
    is ``(I + H / regularization)^-1`` times the query gradient at the adapted parameters,
    by ``cg_steps`` conjugate-gradient iterations. Adaptation at test time runs the same
    regularized inner loop. It is exact when the inner problem is solved exactly (many
    inner steps, enough CG iterations); with few steps it is the approximation of the paper.

    Parameters
    ----------
    model : torch.nn.Module
    inner_steps : int
        Gradient steps on the regularized support loss.
    inner_lr : float
        Their step size (keep ``inner_lr * regularization < 2`` for a stable inner loop).
    regularization : float
        The proximal strength ``lambda`` (> 0): large keeps the adapted parameters near
        ``theta``.
    cg_steps : int
        Conjugate-gradient iterations per task (>= 1).
    loss_fn, vectorize, amp, fold
        As in :class:`BaseMetaLearner` (iMAML has no folded path: it vmaps).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_steps: int = 5,
        inner_lr: float = 0.01,
        regularization: float = 1.0,
        cg_steps: int = 5,
        loss_fn: LossFn = mse_loss,
        vectorize: bool = True,
        amp: bool = False,
        fold: bool | None = None,
    ) -> None:
        super().__init__(model, inner_steps=inner_steps, inner_lr=inner_lr, loss_fn=loss_fn, vectorize=vectorize,
                         amp=amp, fold=fold)  # fmt: skip
        if not (isinstance(regularization, int | float) and regularization > 0):
            raise InputError(f"The 'regularization' parameter of IMAML must be > 0; got {regularization!r}.")
        if isinstance(cg_steps, bool) or not isinstance(cg_steps, int) or cg_steps < 1:
            raise InputError(f"The 'cg_steps' parameter of IMAML must be an int >= 1; got {cg_steps!r}.")
        self.regularization = float(regularization)
        self.cg_steps = cg_steps

    # --- the regularized inner loop -------------------------------------------------------

    def _proximal_adapt(self, start: Params, anchor: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor,
                        steps: int) -> Params:  # fmt: skip
        """``steps`` gradient steps on the regularized support loss from ``start`` (torch.func)."""
        loss_grad = grad(lambda p: self.loss_fn(predict(self.model, p, buffers, x), y))
        lam, lr = self.regularization, self.inner.lr
        phi = dict(start)
        for _ in range(steps):
            g = loss_grad(phi)
            phi = {n: v - lr * (g[n] + lam * (v - anchor[n])) for n, v in phi.items()}
        return phi

    def _task_functional(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        phi = self._proximal_adapt(params, params, buffers, sx, sy, self.inner.steps)
        def query_loss(p: Params) -> torch.Tensor:
            return self.loss_fn(predict(self.model, p, buffers, qx), qy)

        query_grad, loss = grad_and_value(query_loss)(phi)
        def support_loss(p: Params) -> torch.Tensor:
            return self.loss_fn(predict(self.model, p, buffers, sx), sy)

        hvp = vjp(grad(support_loss), phi)[1]  # H v at phi (the Hessian is symmetric: vjp = jvp)
        lam = self.regularization

        def apply(v: Params) -> Params:
            hv = hvp(v)[0]
            return {n: v[n] + hv[n] / lam for n in v}

        return conjugate_gradient(apply, query_grad, steps=self.cg_steps), loss

    def _task_autograd(
        self, params: Params, buffers: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor
    ) -> tuple[Params, torch.Tensor]:
        lam, lr = self.regularization, self.inner.lr
        names = list(params)
        phi = {n: p.detach().clone() for n, p in params.items()}
        for _ in range(self.inner.steps):
            leaves = {n: v.requires_grad_(True) for n, v in phi.items()}
            g = torch.autograd.grad(self.loss_fn(predict(self.model, leaves, buffers, sx), sy), list(leaves.values()))
            with torch.no_grad():
                phi = {n: leaves[n] - lr * (gn + lam * (leaves[n] - params[n])) for n, gn in zip(names, g, strict=True)}
        leaves = {n: v.detach().requires_grad_(True) for n, v in phi.items()}
        loss = self.loss_fn(predict(self.model, leaves, buffers, qx), qy)
        query_grad = dict(zip(names, torch.autograd.grad(loss, list(leaves.values())), strict=True))
        support_grad = torch.autograd.grad(self.loss_fn(predict(self.model, leaves, buffers, sx), sy),
                                           list(leaves.values()), create_graph=True)  # fmt: skip

        def apply(v: Params) -> Params:
            hv = torch.autograd.grad(support_grad, list(leaves.values()), grad_outputs=[v[n] for n in names],
                                     retain_graph=True)  # fmt: skip
            return {n: v[n] + h.detach() / lam for n, h in zip(names, hv, strict=True)}

        return conjugate_gradient(apply, query_grad, steps=self.cg_steps), loss.detach()

    # --- adaptation ----------------------------------------------------------------------

    def adapt(
        self, support_x: torch.Tensor, support_y: torch.Tensor, *, steps: int | None = None
    ) -> AdaptedModel:
        """Run the regularized inner loop on one new task (``steps`` gradient steps, the
        inner loop's count by default) and return the adapted predictor."""
        steps = self.inner.steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise InputError(f"The 'steps' parameter of IMAML.adapt must be an int >= 0; got {steps!r}.")
        params = {name: p.detach() for name, p in self.model.named_parameters()}
        buffers = buffers_of(self.model)
        with torch.no_grad():
            phi = self._proximal_adapt(params, params, buffers, support_x.to(self.device), support_y.to(self.device),
                                       steps)  # fmt: skip
        return AdaptedModel(self.model, {n: v.detach() for n, v in phi.items()}, buffers)

    def evaluate(
        self,
        batch: TaskBatch,
        *,
        steps: Sequence[int] | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[int, torch.Tensor]:
        """Query ``metric`` (the loss by default) of every task after each number of regularized
        inner steps (the inner loop's count by default), vmapped over the tasks."""
        checkpoints = sorted(set((self.inner.steps,) if steps is None else steps))
        if not checkpoints or checkpoints[0] < 0:
            raise InputError(f"The 'steps' parameter of IMAML.evaluate must list ints >= 0; got {steps!r}.")
        score = self.loss_fn if metric is None else metric
        params = {name: p.detach() for name, p in self.model.named_parameters()}
        buffers = buffers_of(self.model)
        batch = batch.to(device=self.device)

        def one_task(sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor) -> tuple[torch.Tensor, ...]:
            phi, done, values = params, 0, []
            for target in checkpoints:
                phi = self._proximal_adapt(phi, params, buffers, sx, sy, target - done)
                done = target
                values.append(score(predict(self.model, phi, buffers, qx), qy))
            return tuple(values)

        with torch.no_grad(), self._autocast():
            per_step = vmap(one_task)(batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        return {k: v.detach().float().cpu() for k, v in zip(checkpoints, per_step, strict=True)}
