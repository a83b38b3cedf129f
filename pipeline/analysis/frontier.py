"""The optimum, located: the J–test frontier of every policy-optimisation path and the test AR at
the optimum as the desired set grows (`policy_frontier`, `optimum_k`).

A point is one policy: an epoch of a path's optimisation (from its history) or an online policy
(`online_frontier_points`). Every path holds out the same quarter of the desired set: J is the
desired AUC on the rest, the held-out AUC may choose, and the test set never does. Lower J is the
objective; a higher test AR (and a higher test AUC ratio) is what the paper claims follows.
"""

from __future__ import annotations

import math

import pandas as pd

from pipeline.analysis.tables import mean_sd_columns, summary_over_seeds

#: (column, heading, format) of a point, in table order.
POINT_METRICS = [
    ("objective", "J (desired AUC)", ".1f"),
    ("validation_auc", "held-out AUC", ".1f"),
    ("test_auc", "test AUC", ".1f"),
    ("test_auc_ratio", "test AUC ratio", ".3f"),
    ("test_acceleration_ratio", "test AR", ".2f"),
    ("test_compression_ratio", "test CR", ".3f"),
    ("relative_gap", "gap / J", ".3g"),
    ("gap_reduction", "gap / gap₀", ".3g"),
]
#: The three choices among a seed's points, and what each minimises.
CHOICES = {
    "lowest J": "objective",
    "validation-selected": "validation_auc",
    "test-best (oracle: chooses nothing)": "test_auc",
}


def path_points(history: pd.DataFrame, path: str, seed: int, run: str) -> pd.DataFrame:
    """A path's history as points: every epoch with its J, AUCs, AR, CR and gap, and the gap
    over the path's epoch-0 gap (how far the optimiser brought it down)."""
    points = history.copy()
    points["gap_reduction"] = points["stationarity_gap"] / points["stationarity_gap"].iloc[0]
    points.insert(0, "run", run)
    points.insert(0, "seed", seed)
    points.insert(0, "path", path)
    return points


def with_test_auc_ratio(points: pd.DataFrame, conventional_auc: dict[int, float]) -> pd.DataFrame:
    """`test_auc_ratio` = the conventional policy's test AUC at the point's seed over its own."""
    points = points.copy()
    points["test_auc_ratio"] = points["seed"].map(conventional_auc) / points["test_auc"]
    return points


def pareto_front(points: pd.DataFrame, x: str = "objective", y: str = "test_acceleration_ratio"):
    """The points no other point beats on both: a lower `x` and a higher `y` (ties kept once),
    in order of increasing `x`."""
    ordered = points.sort_values([x, y], ascending=[True, False]).reset_index(drop=True)
    best, keep = -math.inf, []
    for position, value in enumerate(ordered[y]):
        if value > best:
            keep.append(position)
            best = value
    return ordered.iloc[keep]


def choices(points: pd.DataFrame) -> pd.DataFrame:
    """Per seed, the point of each of `CHOICES`: the lowest J, the lowest held-out AUC (what a
    user may choose by) and the lowest test AUC (an oracle: no one can choose by it)."""
    rows = []
    for seed, group in points.groupby("seed", sort=True):
        for choice, column in CHOICES.items():
            candidates = group.dropna(subset=[column])
            if candidates.empty:
                continue
            best = candidates.loc[candidates[column].idxmin()]
            rows.append({"choice": choice, **best.to_dict(), "seed": seed})
    return pd.DataFrame(rows)


def last_epochs(points: pd.DataFrame) -> pd.DataFrame:
    """Each path's last point per seed (an online policy is its one point)."""
    return points.loc[points.groupby(["path", "seed"])["epoch"].idxmax()]


def group_row(name: str, group: pd.DataFrame, near_optimal_gap: float) -> dict:
    """One row of a table from one point per seed: mean and sd over the seeds of every point
    metric, how many of the points are near-optimal (gap / J below the threshold), and which
    path and epoch each point is."""
    row: dict = {"row": name, "seeds": int(group["seed"].nunique())}
    row |= summary_over_seeds(group, [column for column, _, _ in POINT_METRICS])
    row["near_optimal_seeds"] = int((group["relative_gap"] < near_optimal_gap).sum())
    row["picked"] = " ".join(
        f"{path}@{int(epoch)}" for path, epoch in zip(group["path"], group["epoch"], strict=True)
    )
    return row


def frontier_table(points: pd.DataFrame, paths: list[str], near_optimal_gap: float):
    """The frontier's table: each path's last policy and each online policy, then the three
    `CHOICES` among all points of a seed; one point per seed in every row."""
    last, chosen = last_epochs(points), choices(points)
    online = sorted(set(points["path"]) - set(paths))
    groups = {f"last epoch of {p}": last[last["path"] == p] for p in paths}
    groups |= {p: last[last["path"] == p] for p in online}
    groups |= {c: chosen[chosen["choice"] == c] for c in CHOICES} if len(chosen) else {}
    rows = [group_row(n, g, near_optimal_gap) for n, g in groups.items() if not g.empty]
    return pd.DataFrame(rows)


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The frontier (or K) table for people: mean ± sd per cell."""
    shown = pd.DataFrame({"policy": table["row"], "seeds": table["seeds"]})
    shown = shown.assign(**mean_sd_columns(table, POINT_METRICS))
    if "near_optimal_seeds" in table:
        shown["seeds near-optimal"] = table["near_optimal_seeds"].astype(int)
    if "picked" in table:
        shown["path@epoch per seed"] = table["picked"].replace("", "–")
    return shown


def k_table(
    points: pd.DataFrame, paths: list[str], sizes: dict[str, int], near_optimal_gap: float
) -> pd.DataFrame:
    """`optimum_k`: per path (a desired-set size K) each seed's lowest-J policy, mean ± sd over
    seeds, with K."""
    lowest = points.loc[points.groupby(["path", "seed"])["objective"].idxmin()]
    rows = [
        {"k": sizes[p], **group_row(f"K = {sizes[p]}", lowest[lowest["path"] == p],
                                     near_optimal_gap)}
        for p in paths
        if (lowest["path"] == p).any()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def frontier_header(kind: str, seeds: list[int], paths: list[str], gap: float, ar: float) -> str:
    """The Markdown heading of the frontier table."""
    return "\n".join(
        [
            f"# The J–test frontier: {kind}",
            "",
            f"Mean ± sd over seeds {', '.join(map(str, seeds))}. Paths: {', '.join(paths)} "
            "(ablation variants; every one holds out a quarter of the desired set). J is the "
            "desired AUC on the other three quarters, the held-out AUC is on the quarter, test "
            "AUC/AR/CR on the test set (never used to choose). Test AUC ratio: the "
            "conventional policy's test AUC over the policy's. Gap: the Frank–Wolfe "
            "stationarity gap Σ_t (⟨g_t, γ_t⟩ − min_n g_{t,n}), g = ∂J/∂γ, zero exactly at a "
            f"stationary point; near-optimal: gap / J < {gap:g}. The paper's AR: {ar:.2f}×. "
            "The test-best row is an oracle that chooses by the test set: it is a bound, "
            "not a result.",
        ]
    )


def k_header(kind: str, seeds: list[int], ar: float) -> str:
    """The Markdown heading of the K table."""
    return "\n".join(
        [
            f"# The test AR at the optimum as the desired set grows: {kind}",
            "",
            f"Mean ± sd over seeds {', '.join(map(str, seeds))} of each seed's lowest-J policy "
            "of a mirror-descent path; the test set is the same at every K. If the AR rises "
            f"toward the paper's {ar:.2f}× as K grows, the gap at small K is over-fitting of "
            "the desired set.",
        ]
    )


#: (column of a run's learning_law/policies.csv, heading, format) of the Learning-Law table.
LAW_METRICS = [
    ("cr", "test CR", ".3f"),
    ("sim", "SIM", ".3g"),
    ("property41_fraction", "Property 4.1: share of CT ≤ 0 at zero weight", ".1%"),
    ("zero_weight_fraction", "share of zero weights", ".1%"),
]
#: (key of a run's sim_cr_fit.json, heading, format) of the Learning-Law table.
FIT_METRICS = [("r2", "SIM–CR fit r²", ".2f"), ("b", "fit b (extrapolated optimal CR)", ".3f")]


def law_rows(policies: pd.DataFrame, fit: dict, history: pd.DataFrame, path: str, seed: int):
    """The Learning-Law numbers of one run: its conventional policy and its lowest-J saved
    policy (by the history's J), each with the run's SIM–CR fit over all its saved policies."""
    saved = history[history["epoch"].isin(policies["epoch"].dropna())]
    lowest = int(saved.loc[saved["objective"].idxmin(), "epoch"])
    fitted = {key: fit.get(key) if fit.get("ok") else None for key, _, _ in FIT_METRICS}
    fitted = {key: math.nan if value is None else float(value) for key, value in fitted.items()}
    rows = []
    for name, chosen in (("conventional", policies["policy"] == "conventional"),
                         (f"{path}: lowest J", policies["epoch"] == lowest)):  # fmt: skip
        row = policies[chosen].iloc[0]
        fit_of_path = fitted if name != "conventional" else dict.fromkeys(fitted, math.nan)
        rows.append({"row": name, "path": path, "seed": seed, "epoch": int(row["epoch"]),
                     **{c: float(row[c]) for c, _, _ in LAW_METRICS}, **fit_of_path})  # fmt: skip
    return rows


def law_table(rows: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Mean and sd over seeds of the Learning-Law numbers per row name, in `order` (the
    conventional policy once per seed: every path of a seed starts from the same one; it has
    no fit of its own)."""
    out = []
    for name in order:
        group = rows[rows["row"] == name].drop_duplicates(subset=["seed"])
        if group.empty:
            continue
        row: dict = {"row": name, "seeds": int(group["seed"].nunique()),
                     "epochs": " ".join(str(e) for e in group["epoch"])}  # fmt: skip
        row |= summary_over_seeds(group, [column for column, _, _ in LAW_METRICS + FIT_METRICS])
        out.append(row)
    return pd.DataFrame(out)


def shown_law_table(table: pd.DataFrame) -> pd.DataFrame:
    """The Learning-Law table for people: mean ± sd per cell."""
    shown = pd.DataFrame({"policy": table["row"], "seeds": table["seeds"],
                          "epoch per seed": table["epochs"]})  # fmt: skip
    return shown.assign(**mean_sd_columns(table, LAW_METRICS + FIT_METRICS))


def law_header(kind: str, seeds: list[int], paths: list[str]) -> str:
    """The Markdown heading of the Learning-Law table."""
    return "\n".join(
        [
            f"# The Learning Law at the optimum: {kind}",
            "",
            f"Mean ± sd over seeds {', '.join(map(str, seeds))}: the conventional policy and "
            f"the lowest-J saved policy of each path ({', '.join(paths)}), with SIM (Eq. 7), "
            "Property 4.1 (the share of examples with CT ≤ 0 that get zero weight) and the "
            "SIM–CR fit of Figure 7 over each path's saved policies (r² and b, the "
            "extrapolated optimal CR). Theorem 3.1 is about the optimal policy: if the law "
            "holds, SIM rises and the fit tightens as J falls toward the optimum.",
        ]
    )
