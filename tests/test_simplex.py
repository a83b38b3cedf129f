"""The simplex projection against a brute-force reference."""

import itertools

import pytest
import torch

from pipeline.policy.simplex import project_to_simplex


def brute_force_projection(v: torch.Tensor) -> torch.Tensor:
    """The closest point of the simplex among max(v − τ, 0) for τ from every support set."""
    best, best_dist = None, float("inf")
    n = v.numel()
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            tau = (v[list(support)].sum() - 1) / size
            p = (v - tau).clamp_min(0)
            if abs(float(p.sum()) - 1) < 1e-12 and float((p - v).norm()) < best_dist:
                best, best_dist = p, float((p - v).norm())
    return best


@pytest.mark.parametrize("seed", range(20))
def test_random_rows_match_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(3, 7, generator=g, dtype=torch.float64) * (seed % 4 + 0.1)
    got = project_to_simplex(v)
    for row, expected in zip(got, map(brute_force_projection, v), strict=True):
        torch.testing.assert_close(row, expected, rtol=0, atol=1e-12)


def test_rows_with_ties():
    v = torch.tensor(
        [[0.5, 0.5, 0.5, 0.5], [2.0, 2.0, -1.0, -1.0], [0.3, 0.3, 0.3, 0.0]], dtype=torch.float64
    )
    got = project_to_simplex(v)
    for row, expected in zip(got, map(brute_force_projection, v), strict=True):
        torch.testing.assert_close(row, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(got[1], torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64))


def test_rows_on_the_simplex_are_fixed_points():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(50, 30, generator=g, dtype=torch.float64)
    p[p < 0.4] = 0  # exact zeros, as optimised policies have
    p /= p.sum(dim=1, keepdim=True)
    torch.testing.assert_close(project_to_simplex(p), p, rtol=0, atol=1e-15)


def test_output_is_on_the_simplex_with_exact_zeros():
    v = torch.randn(200, 1000, generator=torch.Generator().manual_seed(1))
    p = project_to_simplex(v)
    assert (p >= 0).all()
    torch.testing.assert_close(p.sum(dim=1), torch.ones(200), rtol=0, atol=1e-5)
    assert (p == 0).any(dim=1).all()
