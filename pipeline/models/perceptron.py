"""The Perceptron of Section 4.2: o = σ(θ·z), no bias, binary cross-entropy.

The generic `LossModel` operations work on it unchanged; this class also overrides them with their
closed forms (a few matrix-vector products per step instead of autograd graphs), which is what
makes 500 policy epochs of 2000 steps fit on a laptop. `tests/test_models.py` checks every override
against the generic torch.func version.

With r_n = σ(m_n) − y_n and m = Zθ:
  ∇l_n = r_n z_n,   H_w a = Zᵀ (w ⊙ σ'(m) ⊙ Za),   ∇l_n · a = r_n (z_n · a).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.models.base import Batch, LossModel


class Perceptron(LossModel):
    """Logistic regression without bias, parameters θ ∈ R^D, θ_0 = 0 (the loss starts at ln 2)."""

    def __init__(self, dim: int, closed_form: bool = True) -> None:
        super().__init__(chunk_size=None)
        self.dim = dim
        self.closed_form = closed_form

    def init_params(self, generator: torch.Generator) -> Tensor:
        return torch.zeros(self.dim)

    def losses(self, theta: Tensor, batch: Batch) -> Tensor:
        return F.binary_cross_entropy_with_logits(batch["x"] @ theta, batch["y"], reduction="none")

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
        hvp = (weights * o * (1 - o) * za) @ z
        return hvp, (o - y) * za

    def contributions(
        self, theta: Tensor, batch: Batch, direction: Tensor
    ) -> tuple[Tensor, Tensor]:
        if not self.closed_form:
            return super().contributions(theta, batch, direction)
        z, y = batch["x"], batch["y"]
        margin = z @ theta
        losses = F.binary_cross_entropy_with_logits(margin, y, reduction="none")
        return losses, (torch.sigmoid(margin) - y) * (z @ direction)
