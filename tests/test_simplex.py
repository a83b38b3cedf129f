"""The simplex projection against a brute-force reference."""

import itertools

import pytest
import torch

from pipeline.data.synthetic import policy_after_step
from pipeline.policy.simplex import project_to_simplex, sort_projection


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


@pytest.mark.parametrize("max_iterations", [0, 2, 3])  # 0, 21, 38 of the 40 rows converge
def test_rows_left_to_the_sort_fallback_match_brute_force(max_iterations):
    """Few iterations leave some or all rows unconverged: those are sorted, the others are not."""
    v = torch.randn(40, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    got = project_to_simplex(v, max_iterations=max_iterations)
    for row, expected in zip(got, map(brute_force_projection, v), strict=True):
        torch.testing.assert_close(row, expected, rtol=0, atol=1e-12)


def test_iteration_equals_sorting_on_long_policy_rows():
    """Realistic rows (N = 4096, several blocks): same support, same weights as sorting."""
    v = policy_after_step(300, 4096, seed=2, dtype=torch.float64)
    got = project_to_simplex(v)
    expected = sort_projection(v)
    assert torch.equal(got > 0, expected > 0)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    mixed = project_to_simplex(v, max_iterations=4)  # 210 rows converged, 90 sorted
    torch.testing.assert_close(mixed, expected, rtol=0, atol=1e-15)


def test_float32_rows_match_the_float64_projection():
    v = policy_after_step(64, 16384, seed=3, dtype=torch.float64)
    got = project_to_simplex(v.float())
    expected = sort_projection(v)
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-9)
    torch.testing.assert_close(got.sum(dim=1), torch.ones(64), rtol=0, atol=1e-5)


@pytest.mark.parametrize("projection", [project_to_simplex, sort_projection])
def test_rows_with_huge_entries_stay_on_the_simplex(projection):
    """An exploding policy gradient gives rows like 1e20: the result is still a valid policy."""
    v = torch.tensor([[1e20, 3.0, -1e20, 0.5], [-1e12, -1e12, -1e12, -1e12], [1e12, 1e12, 0, 0]])
    got = projection(v)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.sum(dim=1), torch.ones(3), rtol=0, atol=1e-6)
    assert got[0, 0] == 1 and (got[1] == 0.25).all()
