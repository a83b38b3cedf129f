"""The judges: what this run found, figure by figure, beside what the paper found.

A judge is a pure function of a run's file contents that returns a `Finding` — the paper's
claim and number, ours, and a verdict computed from the numbers by the rule stated in its
`criterion`, which names every verdict it can give:

- reproduced: the paper's effect, of at least (1 − CLOSE) times its size where it gives one;
- partly: the paper's direction, smaller (or only some of its signs);
- not reproduced: not the paper's direction;
- no data: the run has too little to tell (e.g. the smoke preset's few policies).

`pipeline.analysis.findings` lists which figure each judge reads and writes the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import paper

REPRODUCED, PARTLY, NOT_REPRODUCED, NO_DATA = "reproduced", "partly", "not reproduced", "no data"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NO_DATA)
OURS = "ours, no paper number"  # a row beyond the paper (online policies): not judged
CLOSE = 0.25  # "of the paper's size": at least 75 % of the paper's effect


@dataclass
class Finding:
    item: str  # "Figure 4a"
    claim: str  # what the paper found
    paper: str  # its number(s)
    ours: str  # this run's number(s)
    verdict: str
    criterion: str  # how the verdict follows from the numbers: every verdict's condition


def rule(reproduced: str, partly: str, no_data: str) -> str:
    """A judge's criterion naming all four verdicts (not reproduced: whatever is left)."""
    return (
        f"reproduced if {reproduced}; partly if {partly}; otherwise not reproduced; "
        f"no data if {no_data}"
    )


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _rho(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "– (too few distinct values)"


def _rank_correlation(x, y) -> float:
    """Spearman's ρ; NaN with fewer than three points or a constant side."""
    from scipy.stats import spearmanr  # here: the workflow imports this module at start-up

    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return math.nan
    return float(spearmanr(x[keep], y[keep]).statistic)


# --- judges --------------------------------------------------------------------------------------


def acceleration(item: str, summary: dict) -> Finding:
    """Figures 2, 5a, 5b: the measured acceleration ratio on the test set."""
    ours, ref = summary["acceleration_ratio"], summary["paper_acceleration_ratio"]
    if ref is None:
        verdict = NO_DATA
    elif ours >= (1 - CLOSE) * ref:
        verdict = REPRODUCED
    else:
        verdict = PARTLY if ours > 1 else NOT_REPRODUCED
    return Finding(
        item,
        "the near-optimal policy reaches the conventional final test loss AR times sooner",
        f"AR {ref:.2f}× ({summary.get('paper_acceleration_ratio_source', 'Figure 5')})"
        if ref is not None
        else "–",
        f"AR {ours:.2f}× on the test set ({summary['acceleration_ratio_desired']:.2f}× on the "
        f"desired set), {summary['run']}, T = {summary['T']}",
        verdict,
        rule(f"AR ≥ {1 - CLOSE:.2f} × the paper's", "AR > 1", "the paper has no AR for this run"),
    )


def policy_optimization(item: str, history: pd.DataFrame) -> Finding:
    """Figure 4: J falls and the test CR rises over the policy epochs."""
    j, cr = history["objective"].to_numpy(), history["test_compression_ratio"].to_numpy()
    best = int(np.argmax(cr))
    gain, kept = cr[best] - cr[0], cr[-1] - cr[0]
    if len(j) < 2:
        verdict = NO_DATA
    elif j[-1] >= j[0] or kept <= 0:
        verdict = NOT_REPRODUCED
    else:
        verdict = REPRODUCED if kept >= (1 - CLOSE) * gain else PARTLY
    epoch = int(history["epoch"].iloc[best])
    return Finding(
        item,
        "J(γ) falls and converges; the test CR rises over the policy epochs",
        "J ↓, CR ↑ (curves, no numbers)",
        f"J {j[0]:.4g} → {j[-1]:.4g} ({(j[-1] - j[0]) / j[0]:+.1%}); test CR {cr[0]:.4g} → "
        f"{cr[best]:.4g} (best, epoch {epoch}) → {cr[-1]:.4g} (last)",
        verdict,
        rule(
            f"J falls and the last CR keeps ≥ {1 - CLOSE:.0%} of the best CR's gain",
            "J falls and the last CR is above the first",
            "fewer than two policy epochs",
        ),
    )


def sim_at_matched_loss(per_step: pd.DataFrame, levels: int = 20) -> float:
    """Median over test-loss levels reached by every policy of Spearman's ρ between the
    policies' CR and their SIM_t at that loss (interpolated): Figure 6's ordering of lines."""
    frame = per_step[(per_step["step"] >= 1) & np.isfinite(per_step["sim"])]
    curves = {p: rows.sort_values("test_loss") for p, rows in frame.groupby("policy")}
    if len(curves) < 3:
        return math.nan
    low = max(c["test_loss"].min() for c in curves.values())
    high = min(c["test_loss"].max() for c in curves.values())
    if not high > low:
        return math.nan
    crs = [c["cr"].iloc[0] for c in curves.values()]
    rhos = []
    for loss in np.linspace(low, high, levels):
        sims = [np.interp(loss, c["test_loss"], c["sim"]) for c in curves.values()]
        rhos.append(_rank_correlation(crs, sims))
    rhos = [r for r in rhos if np.isfinite(r)]
    return float(np.median(rhos)) if rhos else math.nan


def sim_per_step(item: str, per_step: pd.DataFrame) -> Finding:
    """Figure 6: at the same test loss, a policy with a higher CR has a higher SIM_t."""
    rho = sim_at_matched_loss(per_step)
    if not np.isfinite(rho):
        verdict = NO_DATA
    else:
        verdict = REPRODUCED if rho >= 0.8 else PARTLY if rho > 0 else NOT_REPRODUCED
    return Finding(
        item,
        "at the same test loss, policies with a higher CR keep a higher SIM_t",
        "lines ordered by CR (curves, no numbers)",
        f"median Spearman ρ(CR, SIM_t) at matched test loss = {rho:.2f}"
        if np.isfinite(rho)
        else "fewer than 3 policies with a common loss range",
        verdict,
        rule("ρ ≥ 0.8", "ρ > 0", "fewer than 3 policies with a common test-loss range"),
    )


def sim_cr(item: str, policies: pd.DataFrame, fit: dict) -> Finding:
    """Figures 3b, 7: SIM grows with CR and diverges at CR → b (fit c·ln(a/(b − CR))).

    c·ln(a/(b − CR)) grows with CR only for c > 0: a well-fitted falling relation (c < 0) is
    not the paper's claim, so the fit counts only with c > 0 and ρ(CR, SIM) > 0."""
    rho = _rank_correlation(policies["cr"], policies["sim"])
    grows = bool(np.isfinite(rho) and rho > 0)
    if fit["ok"] and not fit["b_at_bound"] and fit["r2"] >= 0.8 and fit["c"] > 0 and grows:
        verdict = REPRODUCED
    elif np.isfinite(rho):
        verdict = PARTLY if grows else NOT_REPRODUCED
    else:
        verdict = NO_DATA
    if fit["ok"]:
        asymptote = "at its bound: no asymptote" if fit["b_at_bound"] else f"b = {fit['b']:.4g}"
        fitted = f"fit r² = {fit['r2']:.2f}, c = {fit['c']:.3g}, {asymptote}"
    else:
        fitted = "no fit (too few policies)"
    return Finding(
        item,
        "SIM grows with CR and diverges as CR approaches b (SIM = c·ln(a/(b − CR)))",
        "a fit with an asymptote (curve, no numbers)",
        f"{fitted}; Spearman ρ(CR, SIM) = {_rho(rho)} over {len(policies)} policies",
        verdict,
        rule(
            "SIM rises with CR (ρ > 0) and the fit has c > 0, a finite b and r² ≥ 0.8",
            "SIM rises with CR (ρ > 0)",
            "ρ is undefined (fewer than 3 policies or a constant CR or SIM)",
        ),
    )


def _share_finding(
    item: str,
    claim: str,
    paper_says: str,
    shares: tuple[float, float],
    missing: str,
    *,
    criterion: str,
    extra: str = "",
) -> Finding:
    """The finding of a share the paper puts near 100 % for the near-optimal policy, from
    `shares` = (the last policy's, the conventional policy's or NaN): reproduced at ≥ 90 %;
    below, judged against the conventional policy's (γ_t = 1/N) share, the baseline the
    properties name, and no data without it (`missing` says why) rather than another baseline;
    `extra`: text after the numbers."""
    last, conventional = shares
    if last >= 0.9:
        verdict = REPRODUCED
    elif np.isnan(conventional):
        verdict = NO_DATA
    else:
        verdict = PARTLY if last > conventional else NOT_REPRODUCED
    baseline = _pct(conventional) if np.isfinite(conventional) else missing
    ours = f"{_pct(last)} for the last policy (conventional: {baseline}){extra}"
    return Finding(item, claim, paper_says, ours, verdict, criterion)


def property41(item: str, policies: pd.DataFrame) -> Finding:
    """Figure 8: the zero-weight share of CT ≤ 0 tends to 100 % as CR grows."""
    claim = "the share of non-contributive (t, n) (CT ≤ 0) given γ = 0 tends to 100 % as CR grows"
    criterion = rule(
        "≥ 90 % for the last policy",
        "above the conventional policy's share",
        "the last policy has no CT ≤ 0 at the dumped steps, or (below 90 %) the conventional "
        "policy has none",
    )
    shown = policies[np.isfinite(policies["property41_fraction"])].sort_values("epoch")
    last_policy = policies.sort_values("epoch")["policy"].iloc[-1]
    if shown.empty or shown["policy"].iloc[-1] != last_policy:
        ours = "no CT ≤ 0 at the dumped steps of the last policy"
        return Finding(item, claim, "→ 100 %", ours, NO_DATA, criterion)
    last = float(shown["property41_fraction"].iloc[-1])
    conventional = shown.loc[shown["policy"] == "conventional", "property41_fraction"]
    first = float(conventional.iloc[0]) if len(conventional) else math.nan
    rho = _rank_correlation(shown["cr"], shown["property41_fraction"])
    return _share_finding(item, claim, "→ 100 % (curve)", (last, first),
                          "no CT ≤ 0 at its dumped steps", criterion=criterion,
                          extra=f"; Spearman ρ(CR, share) = {_rho(rho)}")  # fmt: skip


def property42(item: str, learned: pd.DataFrame, policies: pd.DataFrame) -> Finding:
    """Figure 9: > 90 % of the perfectly learned examples get < 0.2 of the largest weight,
    against the conventional policy's share (no other baseline: without perfectly learned
    examples under the conventional policy there is nothing to compare with)."""
    claim = "> 90 % of the perfectly learned (t, n) get < 0.2 of the step's largest weight"
    criterion = rule(
        "≥ 90 % for the last policy",
        "above the conventional policy's share",
        "the last policy has no perfectly learned examples, or (below 90 %) the conventional "
        "policy has none",
    )
    last_policy = policies.sort_values("epoch")["policy"].iloc[-1]

    def below(policy: str) -> float:
        rows = learned[learned["policy"] == policy]
        if rows.empty:
            return math.nan
        weight = rows["step_weight"].to_numpy()
        return float(weight[rows["relative_weight"].to_numpy() < 0.2].sum() / weight.sum())

    last, first = below(last_policy), below("conventional")
    if np.isnan(last):
        ours = "the last policy has no perfectly learned examples (loss below the threshold)"
        return Finding(item, claim, "> 90 %", ours, NO_DATA, criterion)
    return _share_finding(item, claim, "> 90 % (near-optimal policy)", (last, first),
                          "no perfectly learned examples", criterion=criterion)  # fmt: skip


def property43(item: str, sample: pd.DataFrame, summary: dict) -> Finding:
    """Figure 10: many contributive (CT > 0) examples still get small or zero weight."""
    claim = (
        "a large fraction of contributive examples (CT > 0) gets small weights before convergence"
    )
    criterion = rule(
        "≥ 50 % of the sampled cells are below half the conventional weight 1/N",
        "≥ 10 % are",
        "no example has CT > 0 throughout",
    )
    if sample.empty:
        return Finding(item, claim, "–", "no example with CT > 0 throughout", NO_DATA, criterion)
    scaled = sample["weight"].to_numpy() * summary["N"]
    small, zero = float((scaled < 0.5).mean()), float((scaled == 0).mean())
    verdict = REPRODUCED if small >= 0.5 else PARTLY if small >= 0.1 else NOT_REPRODUCED
    return Finding(
        item,
        claim,
        "a large fraction (heat map, no number)",
        f"{_pct(small)} of the sampled cells have γ < 0.5/N ({_pct(zero)} have γ = 0)",
        verdict,
        criterion,
    )


def perturbed_weight(item: str, weights: pd.DataFrame) -> Finding:
    """Perturbed vs clean: zero weights go to the noisy (perturbed) examples first."""
    claim = "zero-weight examples are typically noisy (Sections 3.2, 4.5; no figure)"
    criterion = rule(
        "the perturbed examples' weight share is below their share of the data and more "
        "perturbed than clean examples have zero weight at most dumped steps",
        "one of the two",
        "no dumped step",
    )
    if weights.empty:
        return Finding(item, claim, "stated, no number", "no dumped step", NO_DATA, criterion)
    last = weights[weights["epoch"] == weights["epoch"].max()].sort_values("step")
    share = float(last["perturbed_weight_share"].mean())
    data = float(last["perturbed_example_fraction"].iloc[0])
    more_zero = float(
        (last["perturbed_zero_weight_fraction"] > last["clean_zero_weight_fraction"]).mean()
    )
    signs = (share < data) + (more_zero > 0.5)
    verdict = REPRODUCED if signs == 2 else PARTLY if signs == 1 else NOT_REPRODUCED
    return Finding(
        item,
        claim,
        "stated, no number",
        f"last policy: {_pct(share)} of the weight on perturbed examples (data: {_pct(data)}), "
        f"more zero-weight perturbed than clean ones at {_pct(more_zero)} of the dumped steps",
        verdict,
        criterion,
    )


def _table1_row(table: pd.DataFrame, quantity: str) -> tuple[float, float]:
    row = table[table["quantity"] == quantity].iloc[0]
    return float(row["ours"]), float(row["paper"])


def scaling_law(item: str, table1: pd.DataFrame, figure: bool) -> Finding:
    """Figure 11 and Table 1: B falls and β rises under near-optimal learning, each judged
    on the paper numbers it shows: Figure 11's ΔB/B and Δβ/β (the rows of table1.csv), or for
    Table 1 those of its own coefficients (3.16e8 → 1.99e7, 0.12 → 0.14)."""
    d_b, paper_b = _table1_row(table1, "ΔB/B, signed")
    d_beta, paper_beta = _table1_row(table1, "Δβ/β, signed")
    r2 = min(_table1_row(table1, f"r², {p}")[0] for p in ("conventional", "near-optimal"))
    if not figure:
        conv, opt = paper.SCALING_LAW["conventional"], paper.SCALING_LAW["near_optimal"]
        paper_b = opt["B"] / conv["B"] - 1
        paper_beta = opt["beta"] / conv["beta"] - 1
    if not (np.isfinite(d_b) and np.isfinite(d_beta)):
        verdict = NO_DATA
    elif d_b < 0 and d_beta > 0:
        big = abs(d_b) >= (1 - CLOSE) * abs(paper_b) and d_beta >= (1 - CLOSE) * paper_beta
        verdict = REPRODUCED if big and (not figure or r2 >= 0.95) else PARTLY
    else:
        verdict = NOT_REPRODUCED
    source = "Figure 11" if figure else "Table 1"
    return Finding(
        item,
        "near-optimal learning lowers B and raises β of L = L0 + (B/t)^β"
        + (", both curves following the power law" if figure else ""),
        f"ΔB/B {paper_b:+.1%}, Δβ/β {paper_beta:+.1%} ({source})",
        f"ΔB/B {d_b:+.1%}, Δβ/β {d_beta:+.1%}" + (f"; r² ≥ {r2:.3f}" if figure else ""),
        verdict,
        rule(
            f"B ↓ and β ↑, each by ≥ {1 - CLOSE:.0%} of the paper's change shown"
            + (", both fits with r² ≥ 0.95" if figure else ""),
            "B ↓ and β ↑",
            "a fit failed (ΔB/B or Δβ/β not finite)",
        ),
    )


def scaling_sweep(item: str, table2: pd.DataFrame) -> Finding:
    """Table 2: the acceleration (Eq. 9) above 1 and growing with T and N."""
    table = table2.sort_values("T")
    ours, ref = table["AR_eq9"].to_numpy(), table["paper_AR_eq9"].to_numpy()
    if not np.isfinite(ours).all() or len(ours) < 2:
        verdict = NO_DATA
    elif (ours > 1).all() and (np.diff(ours) > 0).all():
        paired = np.isfinite(ref)
        close = (ours[paired] >= (1 - CLOSE) * ref[paired]).all() and paired.any()
        verdict = REPRODUCED if close else PARTLY
    else:
        verdict = PARTLY if (ours > 1).all() else NOT_REPRODUCED
    return Finding(
        item,
        "AR (Eq. 9) above 1 and growing with T and N; |ΔB/B|, |Δβ/β| growing too",
        "AR "
        + ", ".join("–" if not np.isfinite(r) else f"{r:.2f}" for r in ref)
        + " (the settings paired with ours)",
        "AR "
        + ", ".join(f"{a:.2f}" for a in ours)
        + f" at T = {', '.join(str(t) for t in table['T'])}",
        verdict,
        rule(
            f"every AR > 1, rising with T, each ≥ {1 - CLOSE:.0%} of its paired paper AR "
            "(at least one paired)",
            "every AR > 1",
            "fewer than two settings or an AR not finite",
        ),
    )


def scale_extrapolation(item: str, fit: dict) -> Finding:
    """`transformer_scale`: the Transformer's AR fitted against ln(T·N) over the runs and
    extrapolated to the paper's (T, N), judged by whether the 95 % prediction interval there
    holds the paper's AR (or lies above it). An interval that also reaches down to AR = 1 holds
    almost anything, so it tells nothing (no data), as does an extrapolation to another (T, N)
    than the paper's."""
    ref = paper.ACCELERATION_RATIO["transformer"]
    scale = paper.TRANSFORMER_SCALE
    target = (fit["target_steps"], fit["target_n_train"])
    low, predicted, high = fit["prediction_low"], fit["predicted_ar"], fit["prediction_high"]
    finite = all(np.isfinite(v) for v in (low, predicted, high))
    inside = fit["paper_inside"]  # decided once, where the fit is made (analysis.scale)
    paper_scale = target == (scale["steps"], scale["n_train"])
    if not finite or fit["runs"] < 3 or not paper_scale or (inside and low <= 1):
        verdict = NO_DATA
    elif high >= ref and low > 1:  # holds the paper's AR, or lies wholly above it
        verdict = REPRODUCED
    else:
        verdict = PARTLY if low > 1 else NOT_REPRODUCED
    return Finding(
        item,
        f"the near-optimal Transformer policy is {ref:.2f}× faster on the test set at "
        f"T = {scale['steps']}, N = {scale['n_train']}",
        f"AR {ref:.2f}× ({paper.ACCELERATION_FIGURE['transformer']})",
        f"AR = {fit['a']:.3f} + {fit['b']:.3f} ln(T·N) over {fit['runs']} runs (slope 95 % CI "
        f"{fit['b_ci_low']:.3f}–{fit['b_ci_high']:.3f}); at T = {target[0]}, N = {target[1]}: "
        f"{predicted:.2f}×, 95 % prediction interval {low:.2f}–{high:.2f}"
        + ("" if paper_scale else " (not the paper's T and N: `transformer_scale.target_*`)"),
        verdict,
        rule(
            "the fit's 95 % prediction interval at the paper's T and N lies above 1 and holds "
            "the paper's AR (or lies above it)",
            "the interval lies above 1, below the paper's AR",
            "fewer than 3 runs, a bound not finite, an extrapolation to another T and N, or an "
            "interval that holds the paper's AR but reaches down to 1 (too wide to tell)",
        ),
    )


def ablation(item: str, table: pd.DataFrame, kind: str) -> Finding:
    """An experiment's ablation judged on the variant with the main run's settings (column
    `main`: the reading the project stands behind), by its test AR over the seeds with its
    spread: the verdict holds for mean − sd, so a mean that one seed lifts is not enough. The
    best of the variants is shown beside it, labelled as the best of several (choosing it after
    the fact would flatter)."""
    ref = paper.ACCELERATION_RATIO[kind]
    claim = f"the near-optimal {kind.title()} policy is {ref:.2f}× faster on the test set"
    paper_number = f"AR {ref:.2f}× ({paper.ACCELERATION_FIGURE[kind]})"
    criterion = rule(
        f"mean − sd of the main variant's test AR ≥ {1 - CLOSE:.2f} × the paper's",
        "mean − sd > 1",
        f"no variant of `{kind}_ablation` has the main run's settings (`{kind}` of the config), "
        "or one seed only",
    )
    main = table[table["main"].astype(bool)]
    ars = dict(zip(table["variant"], table["test_ar_selected_mean"], strict=True))
    best = max(ars, key=ars.get)
    shown_best = (f"best of the {len(ars)} variants: {best} {ars[best]:.2f}× (not judged: "
                  "chosen after seeing the results)")  # fmt: skip
    if main.empty or not np.isfinite(main["test_ar_selected_sd"].iloc[0]):
        why = (f"no variant has the main run's settings (`{kind}` of the config)" if main.empty
               else f"{main['variant'].iloc[0]}: one seed, no spread")  # fmt: skip
        return Finding(item, claim, paper_number, f"{why}; {shown_best}", NO_DATA,
                       criterion)  # fmt: skip
    row = main.iloc[0]
    mean, sd = row["test_ar_selected_mean"], row["test_ar_selected_sd"]
    lowest, highest = row["test_ar_selected_min"], row["test_ar_selected_max"]
    if mean - sd >= (1 - CLOSE) * ref:
        verdict = REPRODUCED
    else:
        verdict = PARTLY if mean - sd > 1 else NOT_REPRODUCED
    return Finding(
        item,
        claim,
        paper_number,
        f"{row['variant']} (the main run's settings): test AR {mean:.2f} ± {sd:.2f}× over "
        f"{int(row['seeds'])} seeds (range {lowest:.2f}–{highest:.2f}); {shown_best}",
        verdict,
        criterion,
    )


def online_policies(item: str, perceptron: pd.DataFrame, transformer: pd.DataFrame) -> Finding:
    """Ours (no paper number): per experiment, the online policy with the highest AR − the
    near-optimal AR (mean over seeds), with its test AUC ratio."""
    parts = []
    for name, table in (("Perceptron", perceptron), ("Transformer", transformer)):
        online = table[table["policy"].str.startswith("online_")]
        best = online.iloc[int(np.argmax(online["ar_minus_near_optimal_mean"].fillna(-np.inf)))]
        near = table.loc[table["policy"] == "near_optimal"].iloc[0]
        parts.append(
            f"{name}: {best['policy']} AR {best['test_ar_mean']:.2f}× vs near-optimal "
            f"{near['test_ar_mean']:.2f}× ({best['ar_minus_near_optimal_mean']:+.2f}; test AUC "
            f"ratio {best['test_auc_ratio_mean']:.3f} vs {near['test_auc_ratio_mean']:.3f}), at "
            f"{best['cost_conventional_runs_mean']:.3g} vs "
            f"{near['cost_conventional_runs_mean']:.3g} conventional runs"
        )
    return Finding(
        item,
        "none: the paper does not compute a policy online (this row is ours)",
        "–",
        "; ".join(parts),
        OURS,
        "not judged: the paper has no such claim; AR − near-optimal AR on the test set, mean "
        "over the seeds with a near-optimal policy; test AUC ratio = conventional AUC / AUC",
    )
