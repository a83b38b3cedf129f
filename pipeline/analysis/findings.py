"""What this run found, figure by figure and table by table, beside what the paper found.

Each entry of `ENTRIES` names a figure or table, the files of a run it reads, and a judge: a
pure function of those files' contents that returns a `Finding` — the paper's claim and number,
ours, and a verdict computed from the numbers by the rule stated in `criterion`:

- reproduced: the paper's effect, of at least (1 − CLOSE) times its size where it gives one;
- partly: the paper's direction, smaller (or only some of its signs);
- not reproduced: not the paper's direction;
- no data: the run has too little to tell (e.g. the smoke preset's few policies).

The `at_a_glance` rule writes them all to results/at_a_glance.{md,html,json}; the report shows
each figure's finding beside its caption. To add a figure or table: one `Entry` and its judge.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paper
from pipeline.analysis.tables import markdown_table

REPRODUCED, PARTLY, NOT_REPRODUCED, NO_DATA = "reproduced", "partly", "not reproduced", "no data"
CLOSE = 0.25  # "of the paper's size": at least 75 % of the paper's effect
OURS = "ours, no paper number"  # a row beyond the paper (online policies): not judged


@dataclass
class Finding:
    item: str  # "Figure 4a"
    claim: str  # what the paper found
    paper: str  # its number(s)
    ours: str  # this run's number(s)
    verdict: str
    criterion: str  # how the verdict follows from the numbers


@dataclass(frozen=True)
class Entry:
    name: str  # the figure's or table's file stem: figure4a, table1
    item: str  # as the paper names it
    kind: str  # perceptron | transformer: the experiment it needs
    inputs: dict[str, str]  # key → path under the working directory
    judge: Callable[..., Finding] = field(compare=False)
    needs_sweep: bool = False  # Table 2: only with `transformer.scaling_sweep`


def read(path: str | Path):
    """A run's file by its suffix: DataFrame (.parquet, .csv) or dict (.json)."""
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


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
        f"reproduced if AR ≥ {1 - CLOSE:.2f} × the paper's; partly if AR > 1",
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
        f"reproduced if J falls and the last CR keeps ≥ {1 - CLOSE:.0%} of the best CR's gain; "
        "partly if J falls, CR above the start",
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
        "reproduced if ρ ≥ 0.8; partly if ρ > 0",
    )


def sim_cr(item: str, policies: pd.DataFrame, fit: dict) -> Finding:
    """Figures 3b, 7: SIM grows with CR and diverges at CR → b (fit c·ln(a/(b − CR)))."""
    rho = _rank_correlation(policies["cr"], policies["sim"])
    if fit["ok"] and not fit["b_at_bound"] and fit["r2"] >= 0.8:
        verdict = REPRODUCED
    elif np.isfinite(rho):
        verdict = PARTLY if rho > 0 else NOT_REPRODUCED
    else:
        verdict = NO_DATA
    if fit["ok"]:
        asymptote = "at its bound: no asymptote" if fit["b_at_bound"] else f"b = {fit['b']:.4g}"
        fitted = f"fit r² = {fit['r2']:.2f}, {asymptote}"
    else:
        fitted = "no fit (too few policies)"
    return Finding(
        item,
        "SIM grows with CR and diverges as CR approaches b (SIM = c·ln(a/(b − CR)))",
        "a fit with an asymptote (curve, no numbers)",
        f"{fitted}; Spearman ρ(CR, SIM) = {_rho(rho)} over {len(policies)} policies",
        verdict,
        "reproduced if fit with a finite b and r² ≥ 0.8; partly if SIM rises with CR (ρ > 0)",
    )


def property41(item: str, policies: pd.DataFrame) -> Finding:
    """Figure 8: the zero-weight share of CT ≤ 0 tends to 100 % as CR grows."""
    claim = "the share of non-contributive (t, n) (CT ≤ 0) given γ = 0 tends to 100 % as CR grows"
    criterion = "reproduced if ≥ 90 % for the last policy; partly if above the conventional's"
    shown = policies[np.isfinite(policies["property41_fraction"])].sort_values("epoch")
    if shown.empty:
        return Finding(item, claim, "→ 100 %", "no CT ≤ 0 at the dumped steps", NO_DATA, criterion)
    first, last = (float(shown["property41_fraction"].iloc[i]) for i in (0, -1))
    rho = _rank_correlation(shown["cr"], shown["property41_fraction"])
    verdict = REPRODUCED if last >= 0.9 else PARTLY if last > first else NOT_REPRODUCED
    return Finding(
        item,
        claim,
        "→ 100 % (curve)",
        f"{_pct(last)} for the last policy (conventional {_pct(first)}); "
        f"Spearman ρ(CR, share) = {_rho(rho)}",
        verdict,
        criterion,
    )


def property42(item: str, learned: pd.DataFrame, policies: pd.DataFrame) -> Finding:
    """Figure 9: > 90 % of the perfectly learned examples get < 0.2 of the largest weight."""
    claim = "> 90 % of the perfectly learned (t, n) get < 0.2 of the step's largest weight"
    criterion = "reproduced if ≥ 90 %; partly if above the conventional's share"
    order = list(policies.sort_values("epoch")["policy"])
    present = [p for p in order if p in set(learned["policy"])]
    if len(present) < 2 or present[-1] != order[-1]:
        ours = "too few policies with perfectly learned examples (loss below the threshold)"
        return Finding(item, claim, "> 90 %", ours, NO_DATA, criterion)

    def below(policy: str) -> float:
        rows = learned[learned["policy"] == policy]
        weight = rows["step_weight"].to_numpy()
        return float(weight[rows["relative_weight"].to_numpy() < 0.2].sum() / weight.sum())

    first, last = below(present[0]), below(present[-1])
    verdict = REPRODUCED if last >= 0.9 else PARTLY if last > first else NOT_REPRODUCED
    return Finding(
        item,
        claim,
        "> 90 % (near-optimal policy)",
        f"{_pct(last)} for the last policy ({present[0]}: {_pct(first)})",
        verdict,
        criterion,
    )


def property43(item: str, sample: pd.DataFrame, summary: dict) -> Finding:
    """Figure 10: many contributive (CT > 0) examples still get small or zero weight."""
    claim = (
        "a large fraction of contributive examples (CT > 0) gets small weights before convergence"
    )
    criterion = (
        "reproduced if ≥ 50 % of cells below half the conventional weight 1/N; partly if ≥ 10 %"
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
        "zero-weight examples are typically noisy (Sections 3.2, 4.5; no figure)",
        "stated, no number",
        f"last policy: {_pct(share)} of the weight on perturbed examples (data: {_pct(data)}), "
        f"more zero-weight perturbed than clean ones at {_pct(more_zero)} of the dumped steps",
        verdict,
        "reproduced if perturbed weight share below the data's and more zero-weight perturbed "
        "than clean examples at most steps; partly if one of the two",
    )


def _table1_row(table: pd.DataFrame, quantity: str) -> tuple[float, float]:
    row = table[table["quantity"] == quantity].iloc[0]
    return float(row["ours"]), float(row["paper"])


def scaling_law(item: str, table1: pd.DataFrame, figure: bool) -> Finding:
    """Figure 11 and Table 1: B falls and β rises under near-optimal learning."""
    table = table1
    d_b, paper_b = _table1_row(table, "ΔB/B, signed")
    d_beta, paper_beta = _table1_row(table, "Δβ/β, signed")
    r2 = min(_table1_row(table, f"r², {p}")[0] for p in ("conventional", "near-optimal"))
    if not (np.isfinite(d_b) and np.isfinite(d_beta)):
        verdict = NO_DATA
    elif d_b < 0 and d_beta > 0:
        big = abs(d_b) >= (1 - CLOSE) * abs(paper_b) and d_beta >= (1 - CLOSE) * paper_beta
        verdict = REPRODUCED if big and (not figure or r2 >= 0.95) else PARTLY
    else:
        verdict = NOT_REPRODUCED
    source = "Figure 11" if figure else "Table 1"
    if not figure:  # Table 1's own coefficients: 3.16e8 → 1.99e7, 0.12 → 0.14
        conv, opt = paper.SCALING_LAW["conventional"], paper.SCALING_LAW["near_optimal"]
        paper_b = opt["B"] / conv["B"] - 1
        paper_beta = opt["beta"] / conv["beta"] - 1
    return Finding(
        item,
        "near-optimal learning lowers B and raises β of L = L0 + (B/t)^β"
        + (", both curves following the power law" if figure else ""),
        f"ΔB/B {paper_b:+.1%}, Δβ/β {paper_beta:+.1%} ({source})",
        f"ΔB/B {d_b:+.1%}, Δβ/β {d_beta:+.1%}" + (f"; r² ≥ {r2:.3f}" if figure else ""),
        verdict,
        f"reproduced if B ↓ and β ↑, each by ≥ {1 - CLOSE:.0%} of the paper's change"
        + (", r² ≥ 0.95" if figure else "")
        + "; partly if B ↓ and β ↑",
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
        f"reproduced if AR > 1, rising with T, each ≥ {1 - CLOSE:.0%} of the paired paper's; "
        "partly if AR > 1",
    )


def perceptron_ablation(item: str, table: pd.DataFrame) -> Finding:
    """The ablation: does any reading of the Perceptron's settings give the paper's AR on the
    test set? Judged on each variant's mean test AR of its near-optimal (selected) policy."""
    ref = paper.ACCELERATION_RATIO["perceptron"]
    ars = dict(zip(table["variant"], table["test_ar_selected_mean"], strict=True))
    best = max(ars, key=ars.get)
    if ars[best] >= (1 - CLOSE) * ref:
        verdict = REPRODUCED
    else:
        verdict = PARTLY if ars[best] > 1 else NOT_REPRODUCED
    seeds = int(table["seeds"].max())
    return Finding(
        item,
        "the near-optimal Perceptron policy is 5.50× faster on the test set",
        f"AR {ref:.2f}× (Figure 5a)",
        "test AR (mean of "
        + str(seeds)
        + " seeds): "
        + ", ".join(f"{v} {a:.2f}×" for v, a in ars.items())
        + f"; best: {best}",
        verdict,
        f"reproduced if some variant's mean test AR ≥ {1 - CLOSE:.2f} × the paper's; "
        "partly if some variant's is above 1",
    )


# --- the entries ---------------------------------------------------------------------------------


def online_policies(item: str, perceptron: pd.DataFrame, transformer: pd.DataFrame) -> Finding:
    """Ours, beyond the paper: the best online policy's share of the near-optimal acceleration,
    (AR − 1)/(AR_near-optimal − 1), mean over seeds, per experiment. No paper number."""
    parts = []
    for name, table in (("Perceptron", perceptron), ("Transformer", transformer)):
        online = table[table["policy"].str.startswith("online_")]
        best = online.iloc[int(np.argmax(online["share_of_acceleration_mean"].fillna(-np.inf)))]
        near = table.loc[table["policy"] == "near_optimal"].iloc[0]
        parts.append(
            f"{name}: {best['policy']} {best['share_of_acceleration_mean']:.2f} of it (AR "
            f"{best['test_ar_mean']:.2f}× vs near-optimal {near['test_ar_mean']:.2f}×, at "
            f"{best['cost_conventional_runs_mean']:.3g} vs "
            f"{near['cost_conventional_runs_mean']:.3g} conventional runs)"
        )
    return Finding(
        item,
        "none: the paper does not compute a policy online (this row is ours)",
        "–",
        "; ".join(parts),
        OURS,
        "not judged: the paper has no such claim; share = (AR − 1)/(AR near-optimal − 1) on the "
        "test set, mean over seeds",
    )


def _files(run: str) -> dict[str, str]:
    """The files of a run the judges read, by the judges' argument names."""
    law = f"results/{run}/learning_law"
    return {
        "summary": f"results/{run}/summary.json",
        "history": f"results/{run}/policy_history.parquet",
        "per_step": f"{law}/sim_per_step.parquet",
        "policies": f"{law}/policies.csv",
        "fit": f"{law}/sim_cr_fit.json",
        "learned": f"{law}/property42_weights.parquet",
        "sample": f"{law}/property43_sample.parquet",
        "weights": f"{law}/perturbed_weight.csv",
        "table1": "results/tables/table1.csv",
        "table2": "results/tables/table2.csv",
        "table": "results/tables/perceptron_ablation.csv",
    }


def _entry(name: str, item: str, kind: str, judge, *files: str, **options) -> Entry:
    """An entry whose judge gets `item` and the run files named `files` (keys of `_files`)."""
    paths = _files(kind)
    return Entry(name, item, kind, {key: paths[key] for key in files}, judge, **options)


ENTRIES: list[Entry] = [
    _entry("figure2", "Figure 2", "transformer", acceleration, "summary"),
    _entry("figure3b", "Figure 3b", "transformer", sim_cr, "policies", "fit"),
    _entry("figure4a", "Figure 4a", "perceptron", policy_optimization, "history"),
    _entry("figure4b", "Figure 4b", "transformer", policy_optimization, "history"),
    _entry("figure5a", "Figure 5a", "perceptron", acceleration, "summary"),
    _entry("figure5b", "Figure 5b", "transformer", acceleration, "summary"),
    _entry("figure6a", "Figure 6a", "perceptron", sim_per_step, "per_step"),
    _entry("figure6b", "Figure 6b", "transformer", sim_per_step, "per_step"),
    _entry("figure7a", "Figure 7a", "perceptron", sim_cr, "policies", "fit"),
    _entry("figure7b", "Figure 7b", "transformer", sim_cr, "policies", "fit"),
    _entry("figure8a", "Figure 8a", "perceptron", property41, "policies"),
    _entry("figure8b", "Figure 8b", "transformer", property41, "policies"),
    _entry("figure9", "Figure 9", "perceptron", property42, "learned", "policies"),
    _entry("figure10a", "Figure 10a", "perceptron", property43, "sample", "summary"),
    _entry("figure10b", "Figure 10b", "transformer", property43, "sample", "summary"),
    _entry("figure11", "Figure 11", "transformer", partial(scaling_law, figure=True), "table1"),
    _entry("figure_perturbed_weight", "Perturbed vs clean weight", "transformer",
           perturbed_weight, "weights"),
    _entry("table1", "Table 1", "transformer", partial(scaling_law, figure=False), "table1"),
    _entry("table2", "Table 2", "transformer", scaling_sweep, "table2", needs_sweep=True),
    _entry("perceptron_ablation", "Perceptron ablation (figure)", "perceptron_ablation",
           perceptron_ablation, "table"),
    _entry("perceptron_ablation_table", "Perceptron ablation (table)", "perceptron_ablation",
           perceptron_ablation, "table"),
    Entry("online_policies", "Online policies (ours)", "online_policies",
          {kind: f"results/tables/online_policies_{kind}.csv"
           for kind in ("perceptron", "transformer")}, online_policies),
]  # fmt: skip


def applicable(entries: list[Entry], experiments: list[str], sweep: bool) -> list[Entry]:
    """The entries a configuration produces the files of."""
    return [e for e in entries if e.kind in experiments and (sweep or not e.needs_sweep)]


def judge(entry: Entry, root: str | Path = ".") -> Finding:
    """The entry's finding from its files under `root`."""
    loaded = {key: read(Path(root) / path) for key, path in entry.inputs.items()}
    return entry.judge(entry.item, **loaded)


# --- the page ------------------------------------------------------------------------------------

COLUMNS = {
    "item": "figure / table",
    "claim": "the paper found",
    "paper": "paper",
    "ours": "this run",
    "verdict": "verdict",
}
HEADER = (
    "# Results at a glance\n\n"
    "Each figure and table of this run beside the paper's; the verdict is computed from the "
    "numbers by the rule under the table (`pipeline/analysis/findings.py`). reproduced: the "
    f"paper's effect, of at least {1 - CLOSE:.0%} of its size where it gives one; partly: its "
    "direction, smaller; not reproduced: not its direction; no data: too little to tell.\n"
)


def write_page(findings: dict[str, Finding], md_path: str, html_path: str, json_path: str):
    """results/at_a_glance.md (for people), .html (in the report) and .json (for the captions)."""
    frame = pd.DataFrame([asdict(f) for f in findings.values()])
    shown = frame[list(COLUMNS)].rename(columns=COLUMNS)
    rules = "\n".join(
        f"- {f.item} ({f.verdict}): {f.criterion}; otherwise not reproduced"
        for f in findings.values()
    )
    counts = frame["verdict"].value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in (REPRODUCED, PARTLY, NOT_REPRODUCED, NO_DATA)
                      if v in counts)  # fmt: skip
    Path(md_path).write_text(
        f"{HEADER}\n{tally}.\n\n{markdown_table(shown)}\n## How each verdict is computed\n\n"
        f"{rules}\n"
    )
    rows = "".join(f"<li>{html.escape(line[2:])}</li>" for line in rules.splitlines())
    Path(html_path).write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Results at a glance</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
        "</style></head><body><h1>Results at a glance</h1>"
        f"<p>{html.escape(HEADER.split(chr(10), 2)[2].strip())}</p><p>{html.escape(tally)}.</p>"
        f"{shown.to_html(index=False, escape=True, border=0)}"
        f"<h2>How each verdict is computed</h2><ul>{rows}</ul></body></html>\n"
    )
    Path(json_path).write_text(
        json.dumps({name: asdict(f) for name, f in findings.items()}, indent=2) + "\n"
    )


def report_labels(name: str, json_path: str | Path = "results/at_a_glance.json") -> dict:
    """The labels `snakemake --report` shows beside a figure's caption: its finding."""
    path = Path(json_path)
    found = json.loads(path.read_text()).get(name) if path.exists() else None
    if found is None:
        return {"figure": name, "this run": "–", "paper": "–", "verdict": "–"}
    return {
        "figure": found["item"],
        "this run": found["ours"],
        "paper": found["paper"],
        "verdict": found["verdict"],
    }
