"""What this run found, figure by figure and table by table: which judge reads which files, and
the page that shows every verdict (results/at_a_glance.{md,csv,json}).

Each entry of `ENTRIES` names a figure or table, the files of a run it reads, and its judge
(`pipeline.analysis.judges`). Rows with the same judge on the same files are one judgement
(Figure 2 and Figure 5b, say): the page counts it once and says which rows share it. The report
shows the page, and each figure's finding beside its caption. To add a figure or table: one
`Entry` and its judge.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from pipeline import paths
from pipeline.analysis import judges
from pipeline.analysis.judges import CLOSE, OURS, VERDICTS, Finding
from pipeline.analysis.tables import write_table


@dataclass(frozen=True)
class Entry:
    name: str  # the figure's or table's file stem: figure4a, table1
    item: str  # as the paper names it
    kind: str  # perceptron | transformer: the experiment it needs
    inputs: dict[str, str]  # key → path under the working directory
    judge: Callable[..., Finding] = field(compare=False)
    needs_sweep: bool = False  # Table 2: only with `transformer.scaling_sweep`

    @property
    def judgement(self) -> tuple:
        """What the verdict depends on: the judge (with its fixed arguments) and the files."""
        judge = self.judge
        if isinstance(judge, partial):
            judge = (judge.func, tuple(sorted(judge.keywords.items())))
        return judge, tuple(sorted(self.inputs.items()))


def read(path: str | Path):
    """A run's file by its suffix: DataFrame (.parquet, .csv) or dict (.json)."""
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _files(run: str) -> dict[str, str]:
    """The files of a run the judges read, by the judges' argument names (pipeline/paths.py)."""
    law = partial(paths.learning_law, run)
    return {
        "summary": paths.run_file(paths.SUMMARY, run),
        "history": paths.run_file(paths.HISTORY, run),
        "per_step": law("sim_per_step.parquet"),
        "policies": law("policies.csv"),
        "fit": law("sim_cr_fit.json"),
        "learned": law("property42_weights.parquet"),
        "sample": law("property43_sample.parquet"),
        "weights": law("perturbed_weight.csv"),
        "table1": paths.table("table1"),
        "table2": paths.table("table2"),
        "table": paths.table(run),  # an ablation's entries: run = <kind>_ablation
    }


def _entry(name: str, item: str, kind: str, judge, *files: str, **options) -> Entry:
    """An entry whose judge gets `item` and the run files named `files` (keys of `_files`)."""
    paths = _files(kind)
    return Entry(name, item, kind, {key: paths[key] for key in files}, judge, **options)


ENTRIES: list[Entry] = [
    _entry("figure2", "Figure 2", "transformer", judges.acceleration, "summary"),
    _entry("figure3b", "Figure 3b", "transformer", judges.sim_cr, "policies", "fit"),
    _entry("figure4a", "Figure 4a", "perceptron", judges.policy_optimization, "history"),
    _entry("figure4b", "Figure 4b", "transformer", judges.policy_optimization, "history"),
    _entry("figure5a", "Figure 5a", "perceptron", judges.acceleration, "summary"),
    _entry("figure5b", "Figure 5b", "transformer", judges.acceleration, "summary"),
    _entry("figure6a", "Figure 6a", "perceptron", judges.sim_per_step, "per_step"),
    _entry("figure6b", "Figure 6b", "transformer", judges.sim_per_step, "per_step"),
    _entry("figure7a", "Figure 7a", "perceptron", judges.sim_cr, "policies", "fit"),
    _entry("figure7b", "Figure 7b", "transformer", judges.sim_cr, "policies", "fit"),
    _entry("figure8a", "Figure 8a", "perceptron", judges.property41, "policies"),
    _entry("figure8b", "Figure 8b", "transformer", judges.property41, "policies"),
    _entry("figure9", "Figure 9", "perceptron", judges.property42, "learned", "policies"),
    _entry("figure10a", "Figure 10a", "perceptron", judges.property43, "sample", "summary"),
    _entry("figure10b", "Figure 10b", "transformer", judges.property43, "sample", "summary"),
    _entry("figure11", "Figure 11", "transformer", partial(judges.scaling_law, figure=True),
           "table1"),
    _entry("figure_perturbed_weight", "Perturbed vs clean weight", "transformer",
           judges.perturbed_weight, "weights"),
    _entry("table1", "Table 1", "transformer", partial(judges.scaling_law, figure=False),
           "table1"),
    _entry("table2", "Table 2", "transformer", judges.scaling_sweep, "table2", needs_sweep=True),
    *(_entry(f"{kind}_ablation{suffix}", f"{kind.title()} ablation ({shown})", f"{kind}_ablation",
             partial(judges.ablation, kind=kind), "table")
      for kind in ("perceptron", "transformer")
      for suffix, shown in (("", "figure"), ("_table", "table"))),
    Entry("transformer_scale", "Transformer AR toward the paper's scale (fit)", "transformer_scale",
          {"fit": paths.table("transformer_scale_fit", "json")}, judges.scale_extrapolation),
    Entry("online_policies", "Online policies (ours)", "online_policies",
          {kind: paths.table(f"online_policies_{kind}")
           for kind in ("perceptron", "transformer")}, judges.online_policies),
]  # fmt: skip


def applicable(entries: list[Entry], experiments: list[str], sweep: bool) -> list[Entry]:
    """The entries a configuration produces the files of."""
    return [e for e in entries if e.kind in experiments and (sweep or not e.needs_sweep)]


def judge(entry: Entry, root: str | Path = ".") -> Finding:
    """The entry's finding from its files under `root`."""
    loaded = {key: read(Path(root) / path) for key, path in entry.inputs.items()}
    return entry.judge(entry.item, **loaded)


def judgements(entries: list[Entry]) -> list[list[Entry]]:
    """The entries grouped by judgement (same judge, same files), in the entries' order."""
    groups: dict[tuple, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.judgement, []).append(entry)
    return list(groups.values())


# --- the page ------------------------------------------------------------------------------------

COLUMNS = {
    "item": "figure / table",
    "claim": "the paper found",
    "paper": "paper",
    "ours": "this run",
    "verdict": "verdict",
    "shared_with": "same judgement as",
}
HEADER = (
    "# Results at a glance\n\n"
    "Each figure and table of this run beside the paper's; the verdict is computed from the "
    "numbers by the rule under the table (`pipeline/analysis/judges.py`). reproduced: the "
    f"paper's effect, of at least {1 - CLOSE:.0%} of its size where it gives one; partly: its "
    "direction, smaller; not reproduced: not its direction; no data: too little to tell.\n"
)


def page(entries: list[Entry], findings: dict[str, Finding]) -> tuple[pd.DataFrame, str, str]:
    """The page's rows (one per entry, with the rows sharing its judgement), its tally (each
    judgement counted once) and its rules (each judgement's criterion, every verdict named)."""
    groups = [[e for e in group if e.name in findings] for group in judgements(entries)]
    groups = [group for group in groups if group]
    rows = []
    for group in groups:
        for entry in group:
            others = ", ".join(e.item for e in group if e is not entry)
            rows.append({"name": entry.name, **asdict(findings[entry.name]), "shared_with": others})
    frame = pd.DataFrame(rows)
    verdicts = pd.Series([findings[group[0].name].verdict for group in groups])
    counts = ", ".join(
        f"{int((verdicts == v).sum())} {v}"
        for v in (*VERDICTS, OURS)
        if v in VERDICTS or (verdicts == v).any()  # rows beyond the paper, when there are some
    )
    shared = "; ".join(" = ".join(e.item for e in group) for group in groups if len(group) > 1)
    tally = (
        f"{len(groups)} judgements over {len(frame)} rows: {counts}"
        + (f" (rows sharing one judgement, counted once: {shared})" if shared else "")
        + "."
    )
    criteria = "\n".join(
        f"- {', '.join(e.item for e in group)} ({findings[group[0].name].verdict}): "
        f"{findings[group[0].name].criterion}"
        for group in groups
    )
    return frame, tally, criteria


def write_page(
    entries: list[Entry], findings: dict[str, Finding], md_path: str, csv_path: str, json_path: str
) -> None:
    """results/at_a_glance.md (for people), .csv (a table in the report, like every table) and
    .json (each figure's row, for its caption)."""
    frame, tally, criteria = page(entries, findings)
    shown = frame[list(COLUMNS)].rename(columns=COLUMNS)
    write_table(frame, shown, csv_path, md_path, f"{HEADER}\n{tally}",
                footer=f"## How each verdict is computed\n\n{criteria}\n")  # fmt: skip
    Path(json_path).write_text(
        json.dumps({name: asdict(f) for name, f in findings.items()}, indent=2) + "\n"
    )


def report_labels(name: str, json_path: str | Path = f"{paths.RESULTS}/at_a_glance.json") -> dict:
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
