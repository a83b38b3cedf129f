"""The TinyStories data of the Transformer experiment (Appendix D, docs/method.md §5).

`build_tinystories` samples N training, K desired and K test stories (disjoint, seeded),
tokenises them with the Mistral-7B BPE, keeps the V most frequent pieces (counted on the
truncated sequences of all three sampled splits: the "sampled corpus" of docs/method.md §5;
the vocabulary only decides which pieces become [UNK], it uses no label), truncates to
``seq_len`` tokens including [BOS], perturbs a seeded random ``round(perturbed_fraction · N)``
of the training sequences and writes:

* ``train.parquet``, ``desired.parquet``, ``test.parquet``: columns ``tokens`` list<int32>
  (compact ids, [BOS] first, no padding), ``length`` int32, ``perturbed`` bool (all False for
  desired/test), ``story_id`` int64 (index of the story in the list `load_stories` returns:
  listed files in order, records in file order, duplicates dropped), and for train
  ``operations`` list<string> (empty when not perturbed). Rows are in sampling order.
* ``vocab.json``: the vocabulary (see `TopVocabulary.to_json`) and the settings and seed.
* ``preview.md``: some perturbed training sequences before/after, the [UNK] share and the length
  distribution.

Randomness: one ``numpy.random.SeedSequence(seed)`` spawns independent generators for the split
sampling, the choice of the perturbed half and the perturbation operations, so the same seed and
the same stories give byte-identical Parquet files.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.data.perturb import perturb
from pipeline.data.stories import load_stories, resolve_source
from pipeline.data.tokenizer import (
    N_SPECIAL,
    UNK_ID,
    TopVocabulary,
    count_pieces,
    encode_pieces,
)
from pipeline.results import read_pipeline_parquet

log = logging.getLogger("pipeline.data")

SETTING_KEYS = (
    "source",
    "local_files",
    "hub_dataset",
    "hub_split",
    "hub_revision",
    "n_train",
    "n_desired",
    "n_desired_base",
    "n_test",
    "vocab_size",
    "seq_len",
    "perturbed_fraction",
    "perturbation_ops",
)
SPLITS = ("train", "desired", "test")
PREVIEW_ROWS = 6
HISTOGRAM_BINS = 8

_BASE_FIELDS = [
    pa.field("tokens", pa.list_(pa.int32()), nullable=False),
    pa.field("length", pa.int32(), nullable=False),
    pa.field("perturbed", pa.bool_(), nullable=False),
    pa.field("story_id", pa.int64(), nullable=False),
]
SPLIT_SCHEMA = pa.schema(_BASE_FIELDS)
TRAIN_SCHEMA = pa.schema(
    [*_BASE_FIELDS, pa.field("operations", pa.list_(pa.string()), nullable=False)]
)


def check_settings(settings: dict) -> None:
    """Fail early, naming the setting, on missing/unknown keys or impossible values."""
    missing = [k for k in SETTING_KEYS if k not in settings]
    unknown = [k for k in settings if k not in SETTING_KEYS]
    if missing or unknown:
        raise ValueError(
            f"transformer.data: missing settings {missing}, unknown settings {unknown}; "
            f"expected exactly {list(SETTING_KEYS)}."
        )
    for key in ("n_train", "n_desired", "n_test", "vocab_size"):
        if int(settings[key]) < 1:
            raise ValueError(f"transformer.data.{key} = {settings[key]} must be positive.")
    if not 0 <= int(settings["n_desired_base"]) <= int(settings["n_desired"]):
        raise ValueError(
            f"transformer.data.n_desired_base = {settings['n_desired_base']} must lie between 0 "
            f"(the draw of n_desired itself) and n_desired = {settings['n_desired']}."
        )
    if int(settings["seq_len"]) < 2:
        raise ValueError("transformer.data.seq_len must be at least 2 ([BOS] + one token).")
    if not 0.0 <= float(settings["perturbed_fraction"]) <= 1.0:
        raise ValueError("transformer.data.perturbed_fraction must lie in [0, 1].")
    if int(settings["perturbation_ops"]) < 0:
        raise ValueError("transformer.data.perturbation_ops must be non-negative.")


def sample_splits(
    n_stories: int, sizes: Sequence[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """Disjoint random index sets of the given sizes out of ``range(n_stories)``."""
    order = rng.permutation(n_stories)[: sum(sizes)]
    bounds = np.cumsum([0, *sizes])
    return [order[a:b].astype(np.int64) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def draw_splits(
    n_loaded: int, sizes: Sequence[int], n_further: int, streamed: bool, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """The train, desired and test ids of the base draw, and the ids of `n_further` desired
    stories beyond it (`transformer.data.n_desired_base`) that change none of them. From files
    read whole, the further stories continue the base draw's permutation; streamed from the hub,
    which yields exactly what a run needs (so the base run's pool is its first stories), they
    are the stream's next ones."""
    if streamed:  # the base run streamed exactly sum(sizes) stories
        pool = sum(sizes)
        return sample_splits(pool, sizes, rng), np.arange(pool, pool + n_further, dtype=np.int64)
    *base, further = sample_splits(n_loaded, (*sizes, n_further), rng)
    return base, further


def choose_perturbed(n_train: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask with exactly ``round(fraction · n_train)`` True entries at random rows."""
    mask = np.zeros(n_train, dtype=bool)
    mask[rng.choice(n_train, size=int(round(fraction * n_train)), replace=False)] = True
    return mask


def split_table(
    tokens: list[list[int]],
    story_ids: np.ndarray,
    perturbed: np.ndarray,
    operations: list[list[str]] | None = None,
) -> pa.Table:
    """One split as an Arrow table with the fixed schema (train when ``operations`` is given)."""
    columns = {
        "tokens": pa.array(tokens, type=pa.list_(pa.int32())),
        "length": pa.array([len(t) for t in tokens], type=pa.int32()),
        "perturbed": pa.array(perturbed, type=pa.bool_()),
        "story_id": pa.array(story_ids, type=pa.int64()),
    }
    schema = SPLIT_SCHEMA
    if operations is not None:
        columns["operations"] = pa.array(operations, type=pa.list_(pa.string()))
        schema = TRAIN_SCHEMA
    return pa.table(columns, schema=schema)


def write_split(table: pa.Table, path: Path) -> None:
    """Deterministic Parquet: fixed compression, no pandas metadata, a single row group."""
    pq.write_table(table, path, compression="zstd", compression_level=3, row_group_size=None)


def unk_share(sequences: Sequence[Sequence[int]]) -> float:
    """Share of non-[BOS] tokens that are [UNK]."""
    content = sum(max(len(s) - 1, 0) for s in sequences)
    unks = sum(sum(1 for t in s[1:] if t == UNK_ID) for s in sequences)
    return unks / content if content else 0.0


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    """min / median / mean / max of sequence lengths (tokens, [BOS] included)."""
    values = np.asarray(lengths, dtype=np.float64)
    return {
        "min": int(values.min()),
        "median": float(np.median(values)),
        "mean": round(float(values.mean()), 3),
        "max": int(values.max()),
    }


def length_histogram(
    lengths_by_split: dict[str, Sequence[int]], seq_len: int, bins: int = HISTOGRAM_BINS
) -> list[dict]:
    """Counts per length bin (equal-width bins over 1..seq_len) for each split."""
    edges = np.unique(np.linspace(0, seq_len, bins + 1).round().astype(int))
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        row: dict = {"bin": f"{low + 1}–{high}"}
        for split, lengths in lengths_by_split.items():
            values = np.asarray(lengths)
            row[split] = int(((values > low) & (values <= high)).sum())
        rows.append(row)
    return rows


def _cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ⏎ ")


def preview_markdown(
    vocab: TopVocabulary,
    before: list[list[int]],
    after: list[list[int]],
    operations: list[list[str]],
    story_ids: np.ndarray,
    perturbed: np.ndarray,
    stats: dict,
    histogram: list[dict],
) -> str:
    """A human check of the data: perturbed sequences side by side, [UNK] share, lengths."""
    lines = [
        "# TinyStories data preview",
        "",
        f"{stats['n_train']} training ({stats['n_perturbed']} perturbed), "
        f"{stats['n_desired']} desired, {stats['n_test']} test stories out of "
        f"{stats['n_loaded']} loaded; V = {stats['vocab_size']}, seq_len = {stats['seq_len']}, "
        f"seed {stats['seed']}.",
        "",
        "## Perturbed training sequences (decoded)",
        "",
        "| story | operations | before | after |",
        "|---|---|---|---|",
    ]
    rows = np.flatnonzero(perturbed)[:PREVIEW_ROWS]
    for row in rows:
        ops = Counter(label.split("@")[0] for label in operations[row])
        summary = ", ".join(f"{n}× {op}" for op, n in sorted(ops.items()))
        lines.append(
            f"| {story_ids[row]} | {summary} | {_cell(vocab.decode(before[row]))} "
            f"| {_cell(vocab.decode(after[row]))} |"
        )
    lines += [
        "",
        "## [UNK] share",
        "",
        "Share of the non-[BOS] tokens mapped to [UNK] (before perturbation):",
        "",
        "| split | [UNK] share |",
        "|---|---|",
    ]
    lines += [f"| {s} | {stats['unk_share_by_split'][s]:.4%} |" for s in SPLITS]
    lines += [f"| all | {stats['unk_share']:.4%} |", ""]
    lines += [
        "## Lengths (tokens, [BOS] included; train after perturbation)",
        "",
        f"{stats['truncated_share']:.2%} of the sampled stories were truncated to "
        f"{stats['seq_len']} tokens.",
        "",
        "| split | min | median | mean | max |",
        "|---|---|---|---|---|",
    ]
    for split in SPLITS:
        s = stats["length"][split]
        lines.append(f"| {split} | {s['min']} | {s['median']} | {s['mean']} | {s['max']} |")
    lines += ["", "| length | " + " | ".join(SPLITS) + " |", "|---|" + "---|" * len(SPLITS)]
    lines += ["| " + " | ".join(str(r[k]) for k in ("bin", *SPLITS)) + " |" for r in histogram]
    return "\n".join(lines) + "\n"


def build_tinystories(settings: dict, out_dir: Path | str, seed: int) -> dict:
    """Sample, tokenise, perturb and write the TinyStories splits; returns statistics to log."""
    started = time.perf_counter()
    check_settings(settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_train, n_desired, n_test = (int(settings[k]) for k in ("n_train", "n_desired", "n_test"))
    vocab_size, seq_len = int(settings["vocab_size"]), int(settings["seq_len"])

    source, local_files = settings["source"], list(settings["local_files"] or [])
    stories = load_stories(
        source,
        local_files,
        settings["hub_dataset"],
        settings["hub_split"],
        hub_revision=settings["hub_revision"],
        needed=n_train + n_desired + n_test,
    )
    rng_split, rng_pick, rng_ops = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    n_base = int(settings["n_desired_base"]) or n_desired
    streamed = n_desired > n_base and resolve_source(source, local_files)[0] == "hub"
    (train_ids, desired_ids, test_ids), further_ids = draw_splits(
        len(stories), (n_train, n_base, n_test), n_desired - n_base, streamed, rng_split
    )
    desired_ids = np.concatenate([desired_ids, further_ids])
    ids = dict(zip(SPLITS, (train_ids, desired_ids, test_ids), strict=True))
    log.info(
        "sampled %d train, %d desired, %d test stories (seed %d) from %d",
        n_train,
        n_desired,
        n_test,
        seed,
        len(stories),
    )

    sampled = np.concatenate([ids[s] for s in SPLITS])
    pieces = encode_pieces([stories[i] for i in sampled])
    truncated = [p[: seq_len - 1] for p in pieces]
    further = range(n_train + n_base, n_train + n_desired)  # counted on the base draw alone
    counts = count_pieces([p for row, p in enumerate(truncated) if row not in further])
    vocab = TopVocabulary.from_counts(counts, vocab_size, seq_len)
    compact = [vocab.compact(p) for p in truncated]
    bounds = np.cumsum([0, n_train, n_desired, n_test])
    tokens = {s: compact[bounds[i] : bounds[i + 1]] for i, s in enumerate(SPLITS)}
    log.info(
        "vocabulary: %d pieces kept of %d distinct in the sampled corpus",
        vocab.vocab_size - N_SPECIAL,
        len(counts),
    )

    perturbed = choose_perturbed(n_train, float(settings["perturbed_fraction"]), rng_pick)
    train_after, operations = [], []
    for row, sequence in enumerate(tokens["train"]):
        if perturbed[row]:
            new, ops = perturb(
                sequence,
                rng_ops,
                int(settings["perturbation_ops"]),
                vocab_size=vocab.vocab_size,
                n_special=N_SPECIAL,
                seq_len=seq_len,
            )
        else:
            new, ops = list(sequence), []
        train_after.append(new)
        operations.append(ops)
    log.info(
        "perturbed %d of %d training sequences with %d operations each",
        int(perturbed.sum()),
        n_train,
        int(settings["perturbation_ops"]),
    )

    write_split(
        split_table(train_after, ids["train"], perturbed, operations), out / "train.parquet"
    )
    for split in ("desired", "test"):
        unperturbed = np.zeros(len(tokens[split]), dtype=bool)
        write_split(split_table(tokens[split], ids[split], unperturbed), out / f"{split}.parquet")
    vocab.save(
        out / "vocab.json",
        extra={
            "vocab_counted_on": "truncated sequences of the sampled train + desired + test stories"
            + (f" (of the first {n_base} desired ones)" if len(further) else ""),
            "seed": seed,
            "settings": dict(settings),
        },
    )

    lengths = {"train": [len(t) for t in train_after]}
    lengths |= {s: [len(t) for t in tokens[s]] for s in ("desired", "test")}
    stats = {
        "seed": seed,
        "n_loaded": len(stories),
        "n_train": n_train,
        "n_desired": n_desired,
        "n_desired_base": n_base,
        "n_test": n_test,
        "n_perturbed": int(perturbed.sum()),
        "vocab_size": vocab.vocab_size,
        "seq_len": seq_len,
        "distinct_pieces": len(counts),
        "unk_share": unk_share(compact),
        "unk_share_by_split": {s: unk_share(tokens[s]) for s in SPLITS},
        "truncated_share": float(np.mean([len(p) > seq_len - 1 for p in pieces])),
        "length": {s: length_stats(v) for s, v in lengths.items()},
    }
    histogram = length_histogram(lengths, seq_len)
    (out / "preview.md").write_text(
        preview_markdown(
            vocab,
            tokens["train"],
            train_after,
            operations,
            ids["train"],
            perturbed,
            stats,
            histogram,
        )
    )
    stats["seconds"] = round(time.perf_counter() - started, 3)
    log.info(
        "wrote %s in %.1f s: [UNK] share %.4f, train lengths %s",
        out,
        stats["seconds"],
        stats["unk_share"],
        stats["length"]["train"],
    )
    return stats


def perturbed_mask(train_path: str | Path):
    """The `perturbed` flag of each training example of a written train.parquet (row n is
    example n), as a bool tensor."""
    import torch  # here: a job loads torch only after it has set the thread environment

    column = read_pipeline_parquet(train_path, ["perturbed"]).column("perturbed")
    return torch.as_tensor(column.to_numpy(zero_copy_only=False), dtype=torch.bool)
