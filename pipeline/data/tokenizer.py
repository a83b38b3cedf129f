"""The Mistral-7B BPE tokenizer cut down to the top-V vocabulary of the sampled corpus
(docs/method.md §5).

The SentencePiece model ``tokenizer.model.v1`` ships inside the ``mistral-common`` package, so no
hub download is needed. A story becomes SentencePiece ids (no BOS/EOS from SentencePiece), is
truncated to ``seq_len - 1`` pieces and gets a leading [BOS], so a sequence holds at most
``seq_len`` tokens, the Transformer's context.

Compact ids (what the model sees):

* 0 = [PAD]: fills batches to a common length; the loss ignores it.
* 1 = [UNK]: every piece outside the top V, and SentencePiece's own ``<unk>``.
* 2 = [BOS]: starts every story (the first target the model predicts is the first piece).
* 3 .. V-1: the V-3 most frequent SentencePiece pieces of the counted sequences, most frequent
  first, ties broken by the smaller SentencePiece id. SentencePiece's control pieces (``<s>``,
  ``</s>``) never occur in the counts and are never kept.

There is no [EOS]: nearly every TinyStories story is longer than the context, so an end marker
would almost never be seen. Frequencies are counted on the truncated sequences, i.e. on the
tokens the model actually sees, so V slots are not spent on pieces of cut-off text.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import sentencepiece as spm
from tqdm import tqdm

log = logging.getLogger("pipeline.data")

TOKENIZER_PACKAGE = "mistral_common"
TOKENIZER_FILE = "tokenizer.model.v1"
PAD, UNK, BOS = "[PAD]", "[UNK]", "[BOS]"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS)
PAD_ID, UNK_ID, BOS_ID = 0, 1, 2
N_SPECIAL = len(SPECIAL_TOKENS)
UNK_SHOWN = "⁇"  # how SentencePiece renders its own <unk>, which [UNK] decodes through


@lru_cache(maxsize=1)
def mistral_tokenizer_path() -> Path:
    """Path of the Mistral-7B SentencePiece model inside the installed ``mistral-common``."""
    candidate = importlib.resources.files(TOKENIZER_PACKAGE) / "data" / TOKENIZER_FILE
    path = Path(str(candidate))
    if not path.is_file():
        raise FileNotFoundError(
            f"{TOKENIZER_FILE} not found at {path}; install the 'mistral-common' package "
            "(it ships the Mistral-7B SentencePiece model)."
        )
    return path


@lru_cache(maxsize=1)
def load_mistral_sentencepiece() -> spm.SentencePieceProcessor:
    """The Mistral-7B BPE (32,000 pieces, byte fallback), loaded once per process."""
    return spm.SentencePieceProcessor(model_file=str(mistral_tokenizer_path()))


def encode_pieces(texts: Sequence[str], chunk_size: int = 1024) -> list[list[int]]:
    """SentencePiece ids of every text, untruncated, with no BOS/EOS. Encodes in chunks so a
    progress bar can show (only if it takes more than two seconds)."""
    sp = load_mistral_sentencepiece()
    out: list[list[int]] = []
    with tqdm(total=len(texts), desc="tokenising", unit="story", delay=2.0) as bar:
        for start in range(0, len(texts), chunk_size):
            chunk = list(texts[start : start + chunk_size])
            out.extend(sp.encode(chunk, out_type=int))
            bar.update(len(chunk))
    return out


def count_pieces(sequences: Iterable[Sequence[int]]) -> Counter[int]:
    """How often each SentencePiece id occurs in the sequences."""
    counts: Counter[int] = Counter()
    for sequence in sequences:
        counts.update(sequence)
    return counts


@dataclass(frozen=True)
class TopVocabulary:
    """The specials plus the V - 3 most frequent pieces; compact id ``N_SPECIAL + i`` is
    SentencePiece id ``sp_ids[i]``."""

    sp_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    counts: tuple[int, ...]
    seq_len: int
    tokenizer_file: str = TOKENIZER_FILE
    _compact: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compact = {sp_id: N_SPECIAL + i for i, sp_id in enumerate(self.sp_ids)}
        object.__setattr__(self, "_compact", compact)

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + len(self.sp_ids)

    @classmethod
    def from_counts(cls, counts: Counter[int], vocab_size: int, seq_len: int) -> TopVocabulary:
        """Keep the ``vocab_size - N_SPECIAL`` most frequent non-control pieces."""
        if vocab_size <= N_SPECIAL:
            raise ValueError(
                f"transformer.data.vocab_size = {vocab_size} leaves no room beside the "
                f"{N_SPECIAL} special tokens {SPECIAL_TOKENS}; raise it."
            )
        sp = load_mistral_sentencepiece()
        ranked = sorted(
            (sp_id for sp_id in counts if not (sp.is_control(sp_id) or sp.is_unknown(sp_id))),
            key=lambda sp_id: (-counts[sp_id], sp_id),
        )
        wanted = vocab_size - N_SPECIAL
        if len(ranked) < wanted:
            raise ValueError(
                f"transformer.data.vocab_size = {vocab_size} needs {wanted} distinct pieces "
                f"besides the specials, but the sampled corpus has only {len(ranked)}; lower "
                "transformer.data.vocab_size or sample more stories (n_train)."
            )
        kept = ranked[:wanted]
        return cls(
            sp_ids=tuple(kept),
            pieces=tuple(sp.id_to_piece(i) for i in kept),
            counts=tuple(counts[i] for i in kept),
            seq_len=seq_len,
        )

    def compact(self, sp_ids: Sequence[int]) -> list[int]:
        """[BOS] + the first ``seq_len - 1`` pieces as compact ids, [UNK] for the rest of the
        vocabulary."""
        return [BOS_ID] + [self._compact.get(i, UNK_ID) for i in sp_ids[: self.seq_len - 1]]

    def encode(self, text: str) -> list[int]:
        """Text → compact ids, starting with [BOS], at most ``seq_len`` of them."""
        return self.compact(load_mistral_sentencepiece().encode(text, out_type=int))

    def decode(self, ids: Iterable[int]) -> str:
        """Compact ids → text; [PAD] and [BOS] are dropped, [UNK] is shown as " ⁇ "."""
        sp_ids = []
        for i in ids:
            i = int(i)
            if i >= N_SPECIAL:
                sp_ids.append(self.sp_ids[i - N_SPECIAL])
            elif i == UNK_ID:
                sp_ids.append(load_mistral_sentencepiece().unk_id())
        return load_mistral_sentencepiece().decode(sp_ids)

    def to_json(self) -> dict:
        """Serialisable description: SentencePiece id and piece of every compact id."""
        tokens = [{"id": i, "sp_id": None, "piece": name} for i, name in enumerate(SPECIAL_TOKENS)]
        tokens += [
            {"id": N_SPECIAL + i, "sp_id": sp_id, "piece": piece, "count": count}
            for i, (sp_id, piece, count) in enumerate(
                zip(self.sp_ids, self.pieces, self.counts, strict=True)
            )
        ]
        return {
            "tokenizer_file": self.tokenizer_file,
            "tokenizer_package": TOKENIZER_PACKAGE,
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "special_tokens": {name: i for i, name in enumerate(SPECIAL_TOKENS)},
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "bos_id": BOS_ID,
            "tokens": tokens,
        }

    def save(self, path: Path | str, extra: dict | None = None) -> None:
        """Write `to_json` (plus ``extra`` fields) as ``vocab.json``."""
        payload = self.to_json() | (extra or {})
        tokens = payload.pop("tokens")
        head = json.dumps(payload, ensure_ascii=False, indent=1)[:-2]  # drop the closing "\n}"
        rows = ",\n  ".join(json.dumps(t, ensure_ascii=False) for t in tokens)
        Path(path).write_text(f'{head},\n "tokens": [\n  {rows}\n ]\n}}\n')

    @classmethod
    def load(cls, path: Path | str) -> TopVocabulary:
        """Read a ``vocab.json`` written by `save`."""
        payload = json.loads(Path(path).read_text())
        if payload["special_tokens"] != {n: i for i, n in enumerate(SPECIAL_TOKENS)}:
            raise ValueError(
                f"{path}: special tokens {payload['special_tokens']} differ from this code's "
                f"{SPECIAL_TOKENS}; rebuild the data."
            )
        if payload["tokenizer_file"] != TOKENIZER_FILE:
            raise ValueError(
                f"{path}: built with {payload['tokenizer_file']}, this code uses "
                f"{TOKENIZER_FILE}; rebuild the data."
            )
        rest = payload["tokens"][N_SPECIAL:]
        return cls(
            sp_ids=tuple(t["sp_id"] for t in rest),
            pieces=tuple(t["piece"] for t in rest),
            counts=tuple(t["count"] for t in rest),
            seq_len=payload["seq_len"],
            tokenizer_file=payload["tokenizer_file"],
        )
