"""The paper's Figures 4, 5 and 6–10 judged against the optimum `policy_frontier` located,
beside the at-a-glance page's verdicts on the default near-optimal policy.

Theorem 3.1 and the 5.50× / 2.41× are claims about the *optimal* policy. These verdicts read the
frontier's table (the lowest-J and the validation-selected policy of each seed, their gap) and
the Learning Law of the lowest-J policies (`policy_frontier.law_paths`), with the same criteria
as the at-a-glance page wherever the figure is the same.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.analysis import judges
from pipeline.analysis.judges import CLOSE, NO_DATA, NOT_REPRODUCED, PARTLY, REPRODUCED, Finding

#: A gap brought below this share of its epoch-0 value counts as "converging" (Figure 4, partly).
GAP_FALL = 0.1
#: Verdicts from the strongest to the weakest: over seeds a figure gets its weakest one.
_ORDER = (REPRODUCED, PARTLY, NOT_REPRODUCED, NO_DATA)


def _grade(reproduced: bool, partly: bool) -> str:
    return REPRODUCED if reproduced else PARTLY if partly else NOT_REPRODUCED


def _row(table: pd.DataFrame, name: str) -> pd.Series | None:
    rows = table[table["row"] == name]
    return None if rows.empty else rows.iloc[0]


def _law_rows(law: pd.DataFrame, path: str) -> tuple[pd.Series | None, pd.Series | None]:
    """The Learning-Law rows of `path`'s lowest-J policy and of the conventional policy."""
    return _row(law, f"{path}: lowest J"), _row(law, "conventional")


def _mean_sd(row: pd.Series, column: str, spec: str) -> str:
    sd = row.get(f"{column}_sd")
    sd_text = f" ± {sd:{spec}}" if sd is not None and np.isfinite(sd) else ""
    return f"{row[f'{column}_mean']:{spec}}{sd_text}"


def convergence(item: str, frontier: pd.DataFrame, near_optimal_gap: float) -> Finding:
    """Figure 4 at the optimum: J falls to a stationary point, measured by the Frank–Wolfe gap
    of each seed's lowest-J policy."""
    claim = "J(γ) converges: the optimisation reaches a (near-)optimal policy"
    criterion = judges.rule(
        f"the lowest-J policy is near-optimal (gap / J < {near_optimal_gap:g}) at every seed",
        f"its gap fell below {GAP_FALL:g} of its path's epoch-0 gap (mean over seeds)",
        "no path point",
    )
    lowest, conventional = _row(frontier, "lowest J"), _row(frontier, "conventional")
    if lowest is None:
        return Finding(item, claim, "J converges (curve)", "no path point", NO_DATA, criterion)
    seeds, near = int(lowest["seeds"]), int(lowest["near_optimal_seeds"])
    fall = float(lowest["gap_reduction_mean"])
    verdict = _grade(near == seeds, fall < GAP_FALL)
    start = f"conventional J {_mean_sd(conventional, 'objective', '.4g')} → " if (
        conventional is not None) else ""  # fmt: skip
    ours = (
        f"{start}lowest J {_mean_sd(lowest, 'objective', '.4g')} ({lowest['picked']}); gap / J "
        f"{_mean_sd(lowest, 'relative_gap', '.3g')}, gap / gap₀ "
        f"{_mean_sd(lowest, 'gap_reduction', '.3g')}; near-optimal at {near} of {seeds} seeds"
    )
    return Finding(item, claim, "J converges (curve, no number)", ours, verdict, criterion)


def acceleration_at(item: str, frontier: pd.DataFrame, choice: str, paper_ar: float) -> Finding:
    """Figure 5 at a chosen policy of the frontier: its test AR against the paper's, by the
    at-a-glance page's criterion."""
    claim = f"the {choice} policy reaches the conventional final test loss AR times sooner"
    criterion = judges.rule(
        f"mean AR ≥ {1 - CLOSE:.2f} × the paper's", "mean AR > 1", f"no {choice} policy"
    )
    row = _row(frontier, choice)
    if row is None:
        return Finding(item, claim, f"AR {paper_ar:.2f}×", "–", NO_DATA, criterion)
    ar = float(row["test_acceleration_ratio_mean"])
    verdict = _grade(ar >= (1 - CLOSE) * paper_ar, ar > 1)
    ours = (
        f"test AR {_mean_sd(row, 'test_acceleration_ratio', '.2f')}×, test AUC ratio "
        f"{_mean_sd(row, 'test_auc_ratio', '.3f')}, J {_mean_sd(row, 'objective', '.4g')} "
        f"({row['picked']})"
    )
    return Finding(item, claim, f"AR {paper_ar:.2f}× (Figure 5)", ours, verdict, criterion)


def sim_at_optimum(item: str, law: pd.DataFrame, path: str) -> Finding:
    """Figures 6–7 at the optimum: SIM above the conventional policy's and the SIM–CR fit."""
    claim = "at the optimum SIM is high (contributions equalise) and SIM–CR fits c·ln(a/(b − CR))"
    criterion = judges.rule(
        "the lowest-J policy's mean SIM is above the conventional one's and the fit's r² ≥ 0.8",
        "its mean SIM is above the conventional one's",
        f"no Learning Law of the path {path}",
    )
    row, conventional = _law_rows(law, path)
    if row is None or conventional is None:
        return Finding(item, claim, "SIM ↑, fit (curves)", "–", NO_DATA, criterion)
    rises = row["sim_mean"] > conventional["sim_mean"]
    fits = np.isfinite(row["r2_mean"]) and row["r2_mean"] >= 0.8
    verdict = _grade(rises and fits, rises)
    ours = (
        f"{path}: SIM {_mean_sd(conventional, 'sim', '.3g')} (conventional) → "
        f"{_mean_sd(row, 'sim', '.3g')} (lowest J, epochs {row['epochs']}); fit r² "
        f"{_mean_sd(row, 'r2', '.2f')}"
    )
    return Finding(item, claim, "SIM ↑, fit (curves, no numbers)", ours, verdict, criterion)


def property41_at_optimum(item: str, law: pd.DataFrame, path: str) -> Finding:
    """Figure 8 at the optimum: the zero-weight share of CT ≤ 0 examples → 100 %."""
    claim = "the share of non-contributive (t, n) (CT ≤ 0) given γ = 0 tends to 100 %"
    criterion = judges.rule(
        "≥ 90 % (mean over seeds) for the lowest-J policy",
        "above the conventional policy's share",
        f"no Learning Law of the path {path}",
    )
    row, conventional = _law_rows(law, path)
    if row is None or conventional is None:
        return Finding(item, claim, "→ 100 %", "–", NO_DATA, criterion)
    share, first = float(row["property41_fraction_mean"]), float(
        conventional["property41_fraction_mean"])  # fmt: skip
    verdict = _grade(share >= 0.9, share > first)
    sd = row.get("property41_fraction_sd")
    spread = f" ± {100 * sd:.3g}" if sd is not None and np.isfinite(sd) else ""
    ours = (
        f"{path}: {100 * share:.3g}{spread} % for the lowest-J policy "
        f"(conventional: {100 * first:.3g} %)"
    )
    return Finding(item, claim, "→ 100 % (curve)", ours, verdict, criterion)


def weakest(item: str, findings: Iterable[tuple[int, Finding]]) -> Finding:
    """One finding from a judge's finding per seed: the weakest verdict, every seed's numbers."""
    findings = list(findings)
    first = findings[0][1]
    verdict = max((f.verdict for _, f in findings), key=_ORDER.index)
    ours = "; ".join(f"s{seed}: {f.ours}" for seed, f in findings)
    criterion = f"per seed: {first.criterion}; over seeds, the weakest verdict"
    return Finding(item, first.claim, first.paper, ours, verdict, criterion)


def verdicts_table(findings: list[Finding]) -> pd.DataFrame:
    """The findings as rows: item, claim, paper, ours, verdict, criterion."""
    return pd.DataFrame([vars(f) for f in findings])


def verdicts_header(kind: str, seeds: list[int], law_paths: list[str]) -> str:
    """The Markdown heading of the verdicts against the optimum."""
    counts = ", ".join(str(s) for s in seeds)
    return "\n".join(
        [
            f"# The paper's figures judged against the optimum: {kind}",
            "",
            f"Seeds {counts}. Figure 4 by the Frank–Wolfe gap of each seed's lowest-J policy "
            "among every path of `policy_frontier`; Figure 5 by the test AR of the lowest-J "
            "and the validation-selected policy (the at-a-glance page judges the default "
            "near-optimal policy instead); Figures 6–10 by the Learning Law of the lowest-J "
            f"policies of {', '.join(law_paths)} (Figures 9 and 10: each seed's last saved "
            "policy, the weakest verdict over seeds).",
        ]
    )
