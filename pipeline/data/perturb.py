"""The noise added to half of the training sequences (Appendix D, docs/method.md §5).

``n_ops`` times (20 in the paper), one operation is chosen uniformly at random and applied:

* ``replace@i``: position i gets a token drawn uniformly from the non-special vocabulary
  (compact ids ``n_special .. vocab_size-1``; it may, with probability 1/(V - n_special),
  draw the token already there);
* ``delete_last``: the last token is removed;
* ``repeat@i``: a copy of the token at position i is inserted at i + 1; if that makes the
  sequence longer than ``seq_len`` its last token is dropped (so repeating the last token of a
  full sequence changes nothing).

Positions i count from 0 and include the leading [BOS] (i is always at least ``keep_prefix``),
and refer to the sequence as it is when the operation is applied. The first ``keep_prefix``
tokens (the [BOS]) are never replaced, deleted or repeated, so every sequence keeps its start
marker. When nothing is left after the prefix, the chosen operation cannot apply and is logged
as ``noop`` (the random draw still happens, so the remaining operations stay reproducible).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OPERATIONS: tuple[str, ...] = ("replace", "delete_last", "repeat")


def replace_token(tokens: list[int], position: int, token: int) -> list[int]:
    """Operation (1): the token at ``position`` becomes ``token``."""
    out = list(tokens)
    out[position] = token
    return out


def delete_last(tokens: list[int]) -> list[int]:
    """Operation (2): drop the last token."""
    return list(tokens[:-1])


def repeat_token(tokens: list[int], position: int, seq_len: int) -> list[int]:
    """Operation (3): insert a copy of the token at ``position`` right after it, keeping at
    most ``seq_len`` tokens."""
    out = list(tokens[: position + 1]) + list(tokens[position:])
    return out[:seq_len]


def perturb(
    tokens: Sequence[int],
    rng: np.random.Generator,
    n_ops: int,
    vocab_size: int,
    n_special: int,
    seq_len: int,
    keep_prefix: int = 1,
) -> tuple[list[int], list[str]]:
    """Apply ``n_ops`` uniformly chosen operations; returns the new ids and the labels of the
    operations applied, in order."""
    if vocab_size <= n_special:
        raise ValueError(f"vocab_size {vocab_size} has no non-special token to replace with")
    out = [int(t) for t in tokens[:seq_len]]
    labels: list[str] = []
    for _ in range(n_ops):
        op = OPERATIONS[int(rng.integers(len(OPERATIONS)))]
        if len(out) <= keep_prefix:
            labels.append("noop")
            continue
        if op == "replace":
            position = int(rng.integers(keep_prefix, len(out)))
            out = replace_token(out, position, int(rng.integers(n_special, vocab_size)))
            labels.append(f"replace@{position}")
        elif op == "delete_last":
            out = delete_last(out)
            labels.append("delete_last")
        else:
            position = int(rng.integers(keep_prefix, len(out)))
            out = repeat_token(out, position, seq_len)
            labels.append(f"repeat@{position}")
    return out, labels
