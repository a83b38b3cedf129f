"""Learning-Law statistics (Sections 4.4–4.5, docs/method.md §3) from the per-example dumps of a
run.

Per evaluated policy: the similarity of example contributions SIM_t and SIM (Eq. 7), the
compression ratio, Property 4.1 (zero weight for CT ≤ 0), Property 4.2 (small weight for
perfectly learned examples) and Property 4.3 (weight dynamics of contributive examples); per
run: the fit SIM = c·ln(a / (b − CR)) of Figure 7, and for TinyStories the weight that
perturbed and clean training examples receive.

The dumps hold a subset of the steps (every `dump_every`, plus every step up to
`dump_dense_until`). The paper's averages run over every step t, so each dumped step stands for
the steps up to the next dumped one (`step_weights`): the step-weighted averages estimate the
paper's, and the plain averages over dumped steps are reported beside them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from pipeline.metrics import auc, compression_ratio
from pipeline.results import read_pipeline_parquet

EXAMPLE_COLUMNS = ["step", "example", "weight", "loss", "contribution"]
ROUND_OFF = 1e-12  # s_t below this times max_n |CT_{t,n}| is round-off of a zero spread
MIN_FIT_POLICIES = 4  # the fit has three parameters; four points leave one degree of freedom


# --- reading the dumps -------------------------------------------------------------------------


def read_examples(path: str | Path) -> pd.DataFrame:
    """One policy's examples.parquet, in float64, sorted by (step, example)."""
    frame = read_pipeline_parquet(path, EXAMPLE_COLUMNS).to_pandas()
    frame = frame.astype({"weight": "float64", "loss": "float64", "contribution": "float64"})
    return frame.sort_values(["step", "example"], ignore_index=True)


def policy_epoch(policy: str) -> int:
    """The policy-optimisation epoch of a policy name; the conventional policy is epoch 0."""
    return 0 if policy == "conventional" else int(policy.removeprefix("epoch"))


def policy_compression_ratio(steps: pd.DataFrame, total_steps: int, log_vocab: float) -> float:
    """CR = T·ln|V| / Σ_{t=1..T} L_tst(θ_t) from a policy's steps.parquet frame."""
    test_loss = steps.sort_values("step")["test_loss"].to_numpy()
    if len(test_loss) != total_steps + 1:
        raise ValueError(
            f"steps.parquet has {len(test_loss)} rows but `train.steps` = {total_steps} needs "
            f"{total_steps + 1} (t = 0..T); re-run the evaluation with the current config"
        )
    return compression_ratio(auc(test_loss), total_steps, log_vocab)


def step_weights(steps: np.ndarray, total_steps: int) -> np.ndarray:
    """How many training steps each dumped step t_i stands for: t_{i+1} − t_i (T − t_i last)."""
    steps = np.asarray(steps)
    if steps.size and (np.any(np.diff(steps) <= 0) or steps[-1] >= total_steps):
        raise ValueError(f"dumped steps must increase and stay below T = {total_steps}: {steps}")
    return np.diff(np.append(steps, total_steps)).astype(float)


# --- SIM (Eq. 7) -------------------------------------------------------------------------------


def similarity_per_step(examples: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per dumped step: CT statistics and SIM_t = CT̄_t / s_t (Eq. 7).

    CT̄_t = Σ_n γ_{t,n} CT_{t,n}; s_t is the sample standard deviation (n − 1) of CT_{t,n}
    around CT̄_t over the examples with γ_{t,n} > `tolerance`. SIM_t is ±inf when s_t = 0
    (identical contributions: the Learning Law holds exactly) and NaN when fewer than two
    examples have weight, or when CT̄_t = s_t = 0.
    """
    frame = examples.assign(
        weighted=examples["weight"] * examples["contribution"],
        nonzero=examples["weight"] > tolerance,
        nonpositive=examples["contribution"] <= 0,
        magnitude=examples["contribution"].abs(),
    )
    by_step = frame.groupby("step", sort=True)
    ct_bar = by_step["weighted"].sum()
    deviation = frame["contribution"] - frame["step"].map(ct_bar)
    frame["squared"] = np.where(frame["nonzero"], deviation**2, 0.0)
    by_step = frame.groupby("step", sort=True)
    n_nonzero = by_step["nonzero"].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sqrt(by_step["squared"].sum() / (n_nonzero - 1))
        s = s.where(s > ROUND_OFF * by_step["magnitude"].max(), 0.0)  # round-off → exactly 0
        s = s.where(n_nonzero >= 2)  # undefined with fewer than two weighted examples
        sim = ct_bar / s
    return pd.DataFrame(
        {
            "step": ct_bar.index.to_numpy(),
            "ct_weighted_mean": ct_bar.to_numpy(),
            "ct_std": s.to_numpy(),
            "sim": sim.to_numpy(),
            "ct_mean": by_step["contribution"].mean().to_numpy(),
            "ct_min": by_step["contribution"].min().to_numpy(),
            "ct_max": by_step["contribution"].max().to_numpy(),
            "ct_nonpositive_fraction": by_step["nonpositive"].mean().to_numpy(),
            "nonzero_weight_examples": n_nonzero.to_numpy(),
            "zero_weight_fraction": 1.0 - by_step["nonzero"].mean().to_numpy(),
        }
    )


def mean_sim(per_step: pd.DataFrame) -> dict[str, float]:
    """SIM = mean of SIM_t over the dumped steps t ≥ 1 where it is finite.

    `sim` weights each step by the training steps it stands for (`step_weight`), estimating the
    paper's 1/T Σ_t SIM_t; `sim_unweighted` is the plain mean over dumped steps.
    """
    later = per_step[per_step["step"] >= 1]
    finite = later[np.isfinite(later["sim"])]
    weight = finite["step_weight"].to_numpy()
    return {
        "sim": float(np.average(finite["sim"], weights=weight)) if len(finite) else math.nan,
        "sim_unweighted": float(finite["sim"].mean()) if len(finite) else math.nan,
        "sim_steps": len(finite),
        "sim_steps_undefined": len(later) - len(finite),
    }


# --- Properties 4.1–4.3 ------------------------------------------------------------------------


def property41_fraction(
    examples: pd.DataFrame, tolerance: float, weight_of_step: pd.Series
) -> dict[str, float]:
    """Σ 1[γ=0]·1[CT≤0] / Σ 1[CT≤0] over all dumped (t, n): the share of non-contributive
    examples the policy excludes; step-weighted (`weight_of_step`: step → step weight) and plain.
    """
    nonpositive = examples["contribution"] <= 0
    excluded = nonpositive & (examples["weight"] <= tolerance)
    w = examples["step"].map(weight_of_step)
    count = int(nonpositive.sum())
    if count == 0:
        return {
            "property41_fraction": math.nan,
            "property41_fraction_unweighted": math.nan,
            "ct_nonpositive_count": 0,
        }
    return {
        "property41_fraction": float((w * excluded).sum() / (w * nonpositive).sum()),
        "property41_fraction_unweighted": float(excluded.sum() / count),
        "ct_nonpositive_count": count,
    }


def perfectly_learned_weights(examples: pd.DataFrame, loss_threshold: float) -> pd.DataFrame:
    """Property 4.2: γ_{t,n} / max_m γ_{t,m} of the examples with l(x_n, θ_t) < `loss_threshold`."""
    largest = examples.groupby("step")["weight"].transform("max")
    learned = examples["loss"] < loss_threshold
    out = examples.loc[learned, ["step", "example", "loss", "weight"]].copy()
    out["relative_weight"] = (out["weight"] / largest[learned]).to_numpy()
    return out.reset_index(drop=True)


def weight_dynamics_sample(
    examples: pd.DataFrame, max_step: int, sample_size: int, seed: int
) -> pd.DataFrame:
    """Property 4.3: γ_{t,n} over the dumped steps t ≤ `max_step` (0: all) of up to
    `sample_size` examples drawn (seeded) among those with CT_{t,n} > 0 at every one of them."""
    window = examples if max_step <= 0 else examples[examples["step"] <= max_step]
    positive = (window["contribution"] > 0).groupby(window["example"]).all()
    eligible = positive.index[positive.to_numpy()].to_numpy()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=min(sample_size, eligible.size), replace=False)
    out = window[window["example"].isin(chosen)]
    return out[["step", "example", "weight", "contribution"]].reset_index(drop=True)


def perturbed_weight_share(
    examples: pd.DataFrame, perturbed: np.ndarray, tolerance: float
) -> pd.DataFrame:
    """Per dumped step: the weight share of perturbed training examples (row n of
    train.parquet is example n) and the fraction of perturbed / clean examples with zero weight."""
    perturbed = np.asarray(perturbed, dtype=bool)
    if examples["example"].max() >= perturbed.size:
        raise ValueError(
            f"the dumps index {examples['example'].max() + 1} examples but train.parquet has "
            f"{perturbed.size} rows; re-run the data and evaluation stages together"
        )
    frame = examples.assign(
        perturbed=perturbed[examples["example"].to_numpy()],
        zero=examples["weight"] <= tolerance,
    )
    frame["perturbed_weight"] = frame["weight"].where(frame["perturbed"], 0.0)
    by_step = frame.groupby("step", sort=True)
    total = by_step["weight"].sum()
    zero_by_group = (
        frame.groupby(["step", "perturbed"])["zero"]
        .mean()
        .unstack("perturbed")
        .reindex(index=total.index, columns=[True, False])
    )
    share = by_step["perturbed_weight"].sum() / total
    return pd.DataFrame(
        {
            "step": total.index.to_numpy(),
            "perturbed_weight_share": share.to_numpy(),
            "clean_weight_share": 1.0 - share.to_numpy(),
            "perturbed_zero_weight_fraction": zero_by_group[True].to_numpy(),
            "clean_zero_weight_fraction": zero_by_group[False].to_numpy(),
            "perturbed_example_fraction": float(perturbed.mean()),
        }
    )


# --- the SIM–CR fit (Figure 7) -----------------------------------------------------------------


@dataclass
class SimCrFit:
    """SIM = c · ln(a / (b − CR)) with b > max CR; `ok` is False (and `message` says why) when
    the data cannot support a fit."""

    ok: bool
    message: str
    n_policies: int
    a: float | None = None
    log_a: float | None = None
    b: float | None = None
    c: float | None = None
    r2: float | None = None
    b_at_bound: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SimCrFit:
        return cls(**json.loads(text))


def sim_cr_curve(cr: np.ndarray, log_a: float, b: float, c: float) -> np.ndarray:
    """SIM = c · (ln a − ln(b − CR)), for CR < b."""
    return c * (log_a - np.log(b - np.asarray(cr, dtype=float)))


def fit_sim_cr(cr: np.ndarray, sim: np.ndarray, experiment: str = "<experiment>") -> SimCrFit:
    """Least-squares fit of SIM = c·ln(a / (b − CR)) over the policies (b bounded above max CR);
    `experiment` (perceptron | transformer) names the settings in the message of a failed fit.

    For a fixed b the model is linear in (c·ln a, c), so a grid over b − max CR gives the
    starting point; scipy's bounded least_squares then refines (ln a, b, c) jointly.
    """
    cr, sim = np.asarray(cr, dtype=float), np.asarray(sim, dtype=float)
    finite = np.isfinite(cr) & np.isfinite(sim)
    cr, sim = cr[finite], sim[finite]
    n = int(cr.size)
    if n < MIN_FIT_POLICIES:
        return SimCrFit(
            False,
            f"fit needs ≥ {MIN_FIT_POLICIES} policies with a finite SIM, got {n}: save more "
            f"policies (lower `{experiment}.policy.save_every` or raise "
            f"`{experiment}.policy.epochs`)",
            n,
        )
    span = float(np.ptp(cr))
    if span <= 0 or np.ptp(sim) <= 0:
        return SimCrFit(False, "fit needs policies with different CR and SIM values", n)

    top = float(cr.max())
    lower, upper = top + 1e-9 * span, top + 1e3 * span

    def linear_fit(b: float) -> tuple[float, float, float]:
        design = np.column_stack([np.ones(n), -np.log(b - cr)])
        (intercept, c), *_ = np.linalg.lstsq(design, sim, rcond=None)
        residual = design @ np.array([intercept, c]) - sim
        return float(residual @ residual), float(intercept), float(c)

    gaps = span * np.logspace(-6, 3, 400)
    _, b0 = min((linear_fit(top + g)[0], top + g) for g in gaps)
    _, intercept0, c0 = linear_fit(b0)
    c0 = c0 if abs(c0) > 1e-12 else 1e-12
    start = np.array([intercept0 / c0, np.clip(b0, lower, upper), c0])

    def residuals(p: np.ndarray) -> np.ndarray:
        return sim_cr_curve(cr, p[0], p[1], p[2]) - sim

    result = least_squares(
        residuals, start, bounds=([-np.inf, lower, -np.inf], [np.inf, upper, np.inf])
    )
    log_a, b, c = (float(v) for v in result.x)
    rss = float(result.fun @ result.fun)
    r2 = 1.0 - rss / float(((sim - sim.mean()) ** 2).sum())
    at_bound = b >= upper * (1 - 1e-9) or b <= lower * (1 + 1e-12)
    message = "ok"
    if b >= upper * (1 - 1e-9):
        message = "b ran to its upper bound: the points show no finite asymptote"
    return SimCrFit(
        ok=bool(result.success),
        message=message if result.success else f"least_squares failed: {result.message}",
        n_policies=n,
        a=math.exp(log_a) if log_a < 700 else math.inf,
        log_a=log_a,
        b=b,
        c=c,
        r2=r2,
        b_at_bound=bool(at_bound),
    )


# --- one run -----------------------------------------------------------------------------------


@dataclass
class LearningLawTables:
    """The tables of one run, as written under results/<run>/learning_law/."""

    policies: pd.DataFrame  # one row per policy
    sim_per_step: pd.DataFrame  # one row per (policy, dumped step)
    fit: SimCrFit
    property42: pd.DataFrame  # one row per perfectly learned (policy, step, example)
    property43: pd.DataFrame  # near-optimal policy: (step, example) of the sampled examples


def analyse_policy(
    steps: pd.DataFrame, examples: pd.DataFrame, total_steps: int, settings: dict
) -> tuple[pd.DataFrame, dict]:
    """(SIM_t table with step weights and test losses, summary row) of one policy.

    `settings` is the config block `learning_law`.
    """
    tolerance = settings["zero_weight_tolerance"]
    per_step = similarity_per_step(examples, tolerance)
    per_step.insert(1, "step_weight", step_weights(per_step["step"].to_numpy(), total_steps))
    test_loss = steps.set_index("step")["test_loss"]
    per_step.insert(2, "test_loss", per_step["step"].map(test_loss).to_numpy())
    weight_of_step = per_step.set_index("step")["step_weight"]
    row = {
        **mean_sim(per_step),
        **property41_fraction(examples, tolerance, weight_of_step),
        "zero_weight_fraction": float((examples["weight"] <= tolerance).mean()),
        "min_example_loss": float(examples["loss"].min()),
        "perfectly_learned_count": int(
            (examples["loss"] < settings["perfectly_learned_loss"]).sum()
        ),
        "final_test_loss": float(steps["test_loss"].iloc[-1]),
    }
    return per_step, row


def analyse_run(
    dumps: dict[str, tuple[str | Path, str | Path]],
    experiment: str,
    total_steps: int,
    log_vocab: float,
    settings: dict,
    heatmap_max_step: int,
    seed: int,
) -> LearningLawTables:
    """Every table of one run of `experiment` (perceptron | transformer). `dumps` maps policy
    names, in optimisation order (conventional first, near-optimal last), to their
    (steps.parquet, examples.parquet)."""
    rows, per_steps, learned = [], [], []
    near_optimal = list(dumps)[-1]
    property43 = pd.DataFrame()
    for policy, (steps_path, examples_path) in dumps.items():
        steps = read_pipeline_parquet(steps_path, ["step", "test_loss"]).to_pandas()
        examples = read_examples(examples_path)
        cr = policy_compression_ratio(steps, total_steps, log_vocab)
        labels = {"policy": policy, "epoch": policy_epoch(policy), "cr": cr}
        per_step, row = analyse_policy(steps, examples, total_steps, settings)
        test_auc = auc(steps.sort_values("step")["test_loss"])
        rows.append({**labels, "auc": test_auc, **row})
        per_steps.append(per_step.assign(**labels))
        weights = perfectly_learned_weights(examples, settings["perfectly_learned_loss"])
        weight_of_step = per_step.set_index("step")["step_weight"]
        learned.append(weights.assign(step_weight=weights["step"].map(weight_of_step), **labels))
        if policy == near_optimal:
            property43 = weight_dynamics_sample(
                examples, heatmap_max_step, settings["heatmap_examples"], seed
            ).assign(**labels)
    policies = pd.DataFrame(rows)
    return LearningLawTables(
        policies=policies,
        sim_per_step=_labels_first(pd.concat(per_steps, ignore_index=True)),
        fit=fit_sim_cr(policies["cr"].to_numpy(), policies["sim"].to_numpy(), experiment),
        property42=_labels_first(pd.concat(learned, ignore_index=True)),
        property43=_labels_first(property43),
    )


def _labels_first(frame: pd.DataFrame) -> pd.DataFrame:
    labels = ["policy", "epoch", "cr"]
    return frame[labels + [c for c in frame.columns if c not in labels]]


def write_tables(tables: LearningLawTables, outputs: dict[str, str | Path]) -> None:
    """Write the tables to the paths of `outputs` (keys: policies, sim_per_step, fit,
    property42, property43)."""
    for path in outputs.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    tables.policies.to_csv(outputs["policies"], index=False)
    tables.sim_per_step.to_parquet(outputs["sim_per_step"], index=False)
    Path(outputs["fit"]).write_text(tables.fit.to_json())
    tables.property42.to_parquet(outputs["property42"], index=False)
    tables.property43.to_parquet(outputs["property43"], index=False)
