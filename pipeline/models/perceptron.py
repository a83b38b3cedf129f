"""The Perceptron of Section 4.2: o = σ(θ·z), no bias, binary cross-entropy.

The generic `LossModel` operations work on it unchanged; this class also overrides them with their
closed forms (a few matrix-vector products per step instead of autograd graphs), which is what
makes 500 policy epochs of 2000 steps fit on a laptop. `tests/test_models.py` checks every override
against the generic torch.func version.

With r_n = σ(m_n) − y_n and m = Zθ:
  ∇l_n = r_n z_n,   H_w a = Zᵀ (w ⊙ σ'(m) ⊙ Za),   ∇l_n · a = r_n (z_n · a).

Every step streams Z (N × D, 2 MB at the paper's size) from the cache two or three times, so the
step time is the time of those matrix-vector products: `prepare` stores Z column-major, the layout
in which both Zθ and Zᵀu run about 1.5× faster on CPU than row-major.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.models.base import Batch, LossModel


class Perceptron(LossModel):
    """Logistic regression without bias, parameters θ ∈ R^D.

    θ_0 (`init`): `zero` starts every loss at ln 2, one bit (Appendix A.3); `uniform` is
    PyTorch's default initialisation of nn.Linear(D, 1, bias=False), U(−1/√D, 1/√D)
    (Kaiming-uniform with a = √5), which the authors' code uses.
    """

    def __init__(self, dim: int, closed_form: bool = True, init: str = "zero") -> None:
        super().__init__(chunk_size=None)
        if init not in ("zero", "uniform"):
            raise ValueError(f"unknown Perceptron init `{init}`: zero or uniform")
        self.dim = dim
        self.closed_form = closed_form
        self.init = init

    def init_params(self, generator: torch.Generator) -> Tensor:
        if self.init == "zero":
            return torch.zeros(self.dim)
        bound = 1.0 / self.dim**0.5
        return torch.rand(self.dim, generator=generator).mul_(2 * bound).sub_(bound)

    def losses(self, theta: Tensor, batch: Batch) -> Tensor:
        return F.binary_cross_entropy_with_logits(batch["x"] @ theta, batch["y"], reduction="none")

    def prepare(self, batch: Batch) -> Batch:
        """Z stored column-major (a transposed view of a contiguous D × N tensor)."""
        return {**batch, "x": batch["x"].t().contiguous().t()}

    # -- closed forms ----------------------------------------------------------------------
    def weighted_grad(self, theta: Tensor, batch: Batch, weights: Tensor) -> tuple[Tensor, Tensor]:
        if not self.closed_form:
            return super().weighted_grad(theta, batch, weights)
        z, y = batch["x"], batch["y"]
        margin = z @ theta
        residual = torch.sigmoid(margin) - y
        losses = F.binary_cross_entropy_with_logits(margin, y, reduction="none")
        return (weights * residual) @ z, losses

    def weighted_grad_vjp(
        self, theta: Tensor, batch: Batch, weights: Tensor, cotangent: Tensor
    ) -> tuple[Tensor, Tensor]:
        if not self.closed_form:
            return super().weighted_grad_vjp(theta, batch, weights, cotangent)
        z, y = batch["x"], batch["y"]
        o = torch.sigmoid(z @ theta)
        za = z @ cotangent
        hvp = (weights * za * o * (1 - o)) @ z
        return hvp, (o - y).mul_(za)

    def contributions(
        self, theta: Tensor, batch: Batch, direction: Tensor
    ) -> tuple[Tensor, Tensor]:
        if not self.closed_form:
            return super().contributions(theta, batch, direction)
        z, y = batch["x"], batch["y"]
        margin = z @ theta
        losses = F.binary_cross_entropy_with_logits(margin, y, reduction="none")
        return losses, (torch.sigmoid(margin) - y) * (z @ direction)

    def mean_losses_and_grads(self, thetas: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        if not self.closed_form:
            return super().mean_losses_and_grads(thetas, batch)
        z, y = batch["x"], batch["y"]
        margins = thetas @ z.t()  # (L, n): every θ of the stretch in one product
        losses = F.binary_cross_entropy_with_logits(margins, y.expand_as(margins), reduction="none")
        residuals = torch.sigmoid(margins).sub_(y)
        return losses.mean(dim=1), residuals @ z / z.shape[0]

    def mean_losses(self, thetas: Tensor, batch: Batch) -> Tensor:
        if not self.closed_form:
            return super().mean_losses(thetas, batch)
        z, y = batch["x"], batch["y"]
        margins = thetas @ z.t()
        losses = F.binary_cross_entropy_with_logits(margins, y.expand_as(margins), reduction="none")
        return losses.mean(dim=1)
