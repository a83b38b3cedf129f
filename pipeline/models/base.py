"""A model as the policy-optimisation engine sees it: per-example losses of a flat parameter vector.

Everything the engine needs from a model is derived here from one function, `losses(theta, batch)`
→ l(x_n, θ) for every example n, through `torch.func`:

- `weighted_grad`:      ∇_θ Σ_n w_n l_n(θ)                   (one training step of full-batch GD)
- `weighted_grad_vjp`:  (H a, [∇l_n · a]_n) with H = ∇²_θ Σ_n w_n l_n(θ)   (one adjoint step)
- `contributions`:      [∇l_n · d]_n by a forward-mode JVP            (CT of Theorem 3.1)
- `mean_loss_and_grad`: L(θ) = mean_n l_n(θ) and its gradient         (desired / test loss)
- `mean_losses_and_grads`, `mean_losses`: the same for every θ of a stretch of the trajectory
  (a loop here; one matrix product in a closed form), so that the adjoint pays no per-step
  overhead for them

Parameters are one flat vector θ so that trajectories, adjoints and dot products are plain vector
algebra. Batches are dicts of tensors sharing their first dimension; `chunk_size` bounds how many
examples enter one autograd graph (the sums over chunks are exact), which bounds activation memory
at paper scale. A model with a closed form may override the derived operations; a test then shows
the override equals these generic versions.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.func import grad, jvp, vjp

Batch = dict[str, Tensor]


def batch_size(batch: Batch) -> int:
    """Number of examples in a batch."""
    return next(iter(batch.values())).shape[0]


def batch_slice(batch: Batch, start: int, stop: int) -> Batch:
    """Examples start..stop-1 of a batch (views, no copies)."""
    return {k: v[start:stop] for k, v in batch.items()}


def batch_to(batch: Batch, device: torch.device | str) -> Batch:
    """The batch on another device."""
    return {k: v.to(device) for k, v in batch.items()}


class LossModel:
    """Per-example losses l(x_n, θ) of a flat parameter vector θ, and what the engine derives.

    Eagerly the per-chunk gradient and VJP run on `torch.autograd.grad` (`_chunk_grad`,
    `_chunk_vjp`), which gives the same bits as the `torch.func` transforms (`_func_chunk_grad`,
    `_func_chunk_vjp`; tests/test_models.py) without their per-operation wrapping: about 15 %
    faster for the Transformer on CPU. `compile=True` hands the `torch.func` forms (which
    `torch.compile` traces whole; it breaks the graph at `torch.autograd.grad`) and the JVP to
    `torch.compile`, which fuses the elementwise work of the double backward (about 1.3× faster
    training steps and 1.5× faster VJPs for the Transformer on CPU), after a one-off compilation
    of a minute or two per chunk shape (cached on disk by PyTorch; needs a C++ compiler). Results
    equal the eager ones to round-off.
    """

    def __init__(self, chunk_size: int | None = None, compile: bool = False) -> None:
        self.chunk_size = chunk_size
        self.compiled = compile
        if compile:
            self._chunk_grad = torch.compile(self._func_chunk_grad, dynamic=False)
            self._chunk_vjp = torch.compile(self._func_chunk_vjp, dynamic=False)
            self._chunk_jvp = torch.compile(self._chunk_jvp, dynamic=False)

    # -- the one thing a model must define ---------------------------------------------------
    def losses(self, theta: Tensor, batch: Batch) -> Tensor:
        """l(x_n, θ) for every example n of the batch, shape (n,)."""
        raise NotImplementedError

    def init_params(self, generator: torch.Generator) -> Tensor:
        """θ_0, the initial flat parameter vector shared by every policy of an experiment."""
        raise NotImplementedError

    # -- one chunk ---------------------------------------------------------------------------
    def _weighted_loss(self, theta: Tensor, batch: Batch, weights: Tensor) -> tuple[Tensor, Tensor]:
        losses = self.losses(theta, batch)
        return (weights * losses).sum(), losses.detach()

    def _chunk_grad(self, theta: Tensor, part: Batch, weights: Tensor) -> tuple[Tensor, Tensor]:
        """(∇_θ Σ_n w_n l_n(θ), l(θ)) of one chunk, by one backward (also under no_grad)."""
        with torch.enable_grad():
            th = theta.detach().requires_grad_()
            weighted, losses = self._weighted_loss(th, part, weights)
            (g,) = torch.autograd.grad(weighted, th)
        return g, losses

    def _chunk_vjp(
        self, theta: Tensor, part: Batch, weights: Tensor, cotangent: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(H a, [∇l_n · a]_n) of one chunk: the VJP of its gradient g(θ, w) by double backward."""
        with torch.enable_grad():
            th = theta.detach().requires_grad_()
            w = weights.detach().requires_grad_()
            weighted, _ = self._weighted_loss(th, part, w)
            (g,) = torch.autograd.grad(weighted, th, create_graph=True)
            hvp, dots = torch.autograd.grad(g, (th, w), cotangent)
        return hvp, dots

    def _func_chunk_grad(
        self, theta: Tensor, part: Batch, weights: Tensor
    ) -> tuple[Tensor, Tensor]:
        """`_chunk_grad` by `torch.func.grad` (the form `torch.compile` traces)."""
        return grad(self._weighted_loss, has_aux=True)(theta, part, weights)

    def _func_chunk_vjp(
        self, theta: Tensor, part: Batch, weights: Tensor, cotangent: Tensor
    ) -> tuple[Tensor, Tensor]:
        """`_chunk_vjp` by `torch.func.vjp` of `torch.func.grad` (the form `torch.compile`
        traces)."""

        def step_grad(th: Tensor, w: Tensor) -> Tensor:
            return grad(self._weighted_loss, has_aux=True)(th, part, w)[0]

        _, pullback = vjp(step_grad, theta, weights)
        return pullback(cotangent)

    def _chunk_jvp(self, theta: Tensor, part: Batch, direction: Tensor) -> tuple[Tensor, Tensor]:
        return jvp(lambda th: self.losses(th, part), (theta,), (direction,))

    # -- derived operations ------------------------------------------------------------------
    def chunks(self, batch: Batch) -> Iterator[tuple[slice, Batch]]:
        """(slice, sub-batch) pairs covering the batch, at most `chunk_size` examples each."""
        n = batch_size(batch)
        size = self.chunk_size or n
        for start in range(0, n, size):
            stop = min(start + size, n)
            yield slice(start, stop), batch_slice(batch, start, stop)

    def weighted_grad(self, theta: Tensor, batch: Batch, weights: Tensor) -> tuple[Tensor, Tensor]:
        """(∇_θ Σ_n w_n l_n(θ), l(θ)): the full-batch gradient under weights w, and the losses."""
        total = torch.zeros_like(theta)
        losses = torch.empty(batch_size(batch), dtype=theta.dtype, device=theta.device)
        for sl, part in self.chunks(batch):
            g, losses[sl] = self._chunk_grad(theta, part, weights[sl])
            total += g
        return total, losses

    def weighted_grad_vjp(
        self, theta: Tensor, batch: Batch, weights: Tensor, cotangent: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(H a, [∇l_n(θ) · a]_n) for H = ∇²_θ Σ_n w_n l_n(θ) and a = cotangent.

        Both are the vector-Jacobian product of g(θ, w) = ∇_θ Σ_n w_n l_n(θ) with cotangent a:
        its θ-part is H a (H is symmetric) and its w-part the per-example dot products. One
        double-backward per chunk gives both; no per-example gradient is materialised.
        """
        hvp = torch.zeros_like(theta)
        dots = torch.empty(batch_size(batch), dtype=theta.dtype, device=theta.device)
        for sl, part in self.chunks(batch):
            h, dots[sl] = self._chunk_vjp(theta, part, weights[sl], cotangent)
            hvp += h
        return hvp, dots

    def contributions(
        self, theta: Tensor, batch: Batch, direction: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(l(θ), [∇l_n(θ) · d]_n): losses and their directional derivatives along d, by one JVP."""
        n = batch_size(batch)
        losses = torch.empty(n, dtype=theta.dtype, device=theta.device)
        dots = torch.empty_like(losses)
        for sl, part in self.chunks(batch):
            losses[sl], dots[sl] = self._chunk_jvp(theta, part, direction)
        return losses.detach(), dots.detach()

    def mean_loss_and_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """(mean_n l_n(θ), its gradient): the desired or test loss and its gradient."""
        n = batch_size(batch)
        weights = torch.full((n,), 1.0 / n, dtype=theta.dtype, device=theta.device)
        g, losses = self.weighted_grad(theta, batch, weights)
        return losses.mean(), g

    @torch.no_grad()
    def mean_loss(self, theta: Tensor, batch: Batch) -> Tensor:
        """mean_n l_n(θ), without a graph."""
        total = torch.zeros((), dtype=theta.dtype, device=theta.device)
        for _, part in self.chunks(batch):
            total += self.losses(theta, part).sum()
        return total / batch_size(batch)

    def mean_losses_and_grads(self, thetas: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """(L(θ_i), ∇L(θ_i)) for every row θ_i of `thetas` (L × |θ|), shapes (L,) and (L, |θ|)."""
        losses = thetas.new_empty(thetas.shape[0])
        grads = torch.empty_like(thetas)
        for i, theta in enumerate(thetas):
            losses[i], grads[i] = self.mean_loss_and_grad(theta, batch)
        return losses, grads

    def mean_losses(self, thetas: Tensor, batch: Batch) -> Tensor:
        """L(θ_i) for every row θ_i of `thetas` (L × |θ|), shape (L,)."""
        return torch.stack([self.mean_loss(theta, batch) for theta in thetas])

    def prepare(self, batch: Batch) -> Batch:
        """The batch in the memory layout the model's hot loops prefer (here: unchanged)."""
        return batch
