"""A run as the engine needs it: the model, the three data sets on the device, η and T.

With several processes (pipeline/distributed.py) each holds its contiguous share of each split;
`Run.train_shard` says which training examples (and columns of γ) are this process's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.config import validation_split
from pipeline.data.perceptron import load_perceptron_split
from pipeline.data.tokenizer import PAD_ID  # the padding id of the TinyStories vocabulary
from pipeline.distributed import Shard, local_shard, world_size
from pipeline.metrics import log_vocab
from pipeline.models.base import Batch, LossModel, batch_size, batch_slice
from pipeline.models.perceptron import Perceptron
from pipeline.models.transformer import Transformer, TransformerShape
from pipeline.results import read_pipeline_parquet


@dataclass
class Run:
    """Everything that defines one training process up to its policy."""

    settings: dict
    model: LossModel
    train: Batch
    desired: Batch
    test: Batch
    device: torch.device
    dtype: torch.dtype
    #: This process's training examples among all N (all of them in one process).
    train_shard: Shard = field(default=None)  # type: ignore[assignment]
    validation: Batch | None = None  # held out of the desired set (`policy.selection: validation`)

    def __post_init__(self) -> None:
        if self.train_shard is None:
            n = batch_size(self.train)
            self.train_shard = Shard(0, n, n)

    @property
    def eta(self) -> float:
        return float(self.settings["train"]["eta"])

    @property
    def steps(self) -> int:
        return int(self.settings["train"]["steps"])

    @property
    def n_train(self) -> int:
        """N, the training examples of all processes together."""
        return self.train_shard.total

    @property
    def log_vocab(self) -> float:
        """ln |V|: the loss of a uniform guess, in nats (|V| = 2 for the Perceptron)."""
        return log_vocab(self.settings)


def load_token_split(path: str | Path, seq_len: int, device: torch.device) -> Batch:
    """Token sequences right-padded with PAD_ID to seq_len: {tokens: (n, seq_len) long}."""
    table = read_pipeline_parquet(path, ["tokens"])
    tokens = torch.full((table.num_rows, seq_len), PAD_ID, dtype=torch.long)
    for i, row in enumerate(table.column("tokens").to_pylist()):
        tokens[i, : len(row)] = torch.as_tensor(np.asarray(row[:seq_len], dtype=np.int64))
    return {"tokens": tokens.to(device)}


def build_model(settings: dict, device: torch.device, compile: bool = False) -> LossModel:
    """The run's model: the Perceptron, or the Transformer sized by its settings (`compile`:
    its operations through `torch.compile`; the job decides, by `train.compile`)."""
    chunk = settings["train"]["chunk_size"] or None
    if settings["kind"] == "perceptron":
        return Perceptron(dim=settings["data"]["dim"], init=settings["model"]["init"])
    data, arch = settings["data"], settings["model"]
    shape = TransformerShape(
        vocab_size=data["vocab_size"],
        seq_len=data["seq_len"],
        n_layer=arch["n_layer"],
        n_embd=arch["n_embd"],
        n_head=arch["n_head"],
        ffn_mult=arch["ffn_mult"],
        pad_id=PAD_ID,
        attention_scale=arch["attention_scale"],
        norm=arch["norm"],
    )
    return Transformer(
        shape,
        chunk_size=chunk,
        device=device,
        compile=compile,
        init=arch["init"],
    )


def load_run(
    settings: dict,
    data_dir: str | Path,
    device: torch.device,
    dtype: torch.dtype,
    compile: bool = False,
) -> Run:
    """Read the run's three splits from `data_dir` and build its model (`compile`: as
    `build_model`)."""
    data_dir = Path(data_dir)
    if settings["kind"] == "perceptron":
        splits = {
            s: load_perceptron_split(data_dir / f"{s}.parquet", dtype, device)
            for s in ("train", "desired", "test")
        }
    else:
        vocab = json.loads((data_dir / "vocab.json").read_text())
        if vocab.get("pad_id", PAD_ID) != PAD_ID:
            raise ValueError(
                f"{data_dir}/vocab.json has pad_id {vocab['pad_id']}, expected {PAD_ID}"
            )
        seq_len = settings["data"]["seq_len"]
        splits = {
            s: load_token_split(data_dir / f"{s}.parquet", seq_len, device)
            for s in ("train", "desired", "test")
        }
    if settings["policy"]["selection"] == "validation":
        splits["desired"], splits["validation"] = split_validation(
            splits["desired"], settings["policy"]["validation_fraction"]
        )
    n_train = batch_size(splits["train"])
    splits = {s: shard_batch(batch, s, settings) for s, batch in splits.items()}
    model = build_model(settings, device, compile)
    splits = {s: model.prepare(batch) for s, batch in splits.items()}  # the model's layout
    return Run(
        settings,
        model,
        splits["train"],
        splits["desired"],
        splits["test"],
        device,
        dtype,
        local_shard(n_train),
        validation=splits.get("validation"),
    )


def split_validation(desired: Batch, fraction: float) -> tuple[Batch, Batch]:
    """(the examples J is computed on, the held-out validation examples): the last
    round(fraction · K) desired examples are held out (the examples are i.i.d.; at least one on
    each side)."""
    k = batch_size(desired)
    if k < 2:
        raise ValueError(
            f"the desired set has {k} example(s): too few to hold out a validation part for "
            "`policy.selection: validation`; raise `data.n_desired` or use `selection: last`"
        )
    kept, _ = validation_split(k, fraction)
    return batch_slice(desired, 0, kept), batch_slice(desired, kept, k)


def shard_batch(batch: Batch, split: str, settings: dict) -> Batch:
    """This process's contiguous share of a split (the whole split in one process)."""
    processes = world_size()
    if processes == 1:
        return batch
    n = batch_size(batch)
    if n < processes:
        raise ValueError(
            f"the {split} set of run {settings['name']} has {n} examples, fewer than the "
            f"{processes} processes that share it: lower `{settings['kind']}.resources.processes`"
            f" (or `{settings['kind']}.resources.gpus`) to at most {n}"
        )
    share = local_shard(n)
    return {k: v[share.slice].clone() for k, v in batch.items()}


def initial_parameters(run: Run, seed: int) -> torch.Tensor:
    """θ_0 of the run, the same for every policy: a function of the seed alone."""
    generator = torch.Generator().manual_seed(seed)
    return run.model.init_params(generator).to(device=run.device, dtype=run.dtype)
