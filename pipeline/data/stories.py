"""Loading raw TinyStories texts from local files or the Hugging Face hub (docs/method.md §5).

Sources (the `transformer.data` block of the config):

* ``local``: every file in ``local_files`` must exist. Formats, chosen by suffix:
  ``.parquet`` (a ``text`` column), ``.jsonl`` (one JSON object with a ``text`` field per line),
  ``.txt`` (one story per record: if the file contains ``<|endoftext|>`` that marker separates
  the records, as in the original TinyStories release; otherwise records are separated by one
  or more blank lines).
* ``hub``: ``datasets.load_dataset(hub_dataset, split=hub_split, revision=hub_revision,
  streaming=True)``; the first
  ``needed`` distinct stories of the split are taken (the split is in generation order, not
  sorted, and the seeded sampling downstream assigns them to the splits).
* ``auto``: the listed local files that exist (a warning names any missing one), or the hub when
  none of them exists.

Texts are stripped; empty texts and exact duplicates (after stripping) are dropped, the first
occurrence winning, so the returned order is stable: files in the listed order, records in file
order. The index into the returned list is the ``story_id`` of the built data set.

Without a network the hub is probed with a short timeout and the error is raised at once (no
retry loop); it names ``transformer.data.source`` / ``transformer.data.local_files`` and both
ways to fix it. With HF_HUB_OFFLINE or HF_DATASETS_OFFLINE set there is no probe: `datasets`
serves its local cache, and the error says so if the dataset is not there. ``hub_dataset`` may
also be a local directory laid out like the hub's dataset (``data/<split>-NNNNN-of-NNNNN.parquet``),
read by the same `datasets.load_dataset` without a network.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger("pipeline.data")

SOURCES = ("auto", "local", "hub")
LOCAL_FORMATS = (".parquet", ".jsonl", ".txt")
END_OF_TEXT = "<|endoftext|>"
HUB_PROBE_TIMEOUT_S = 5.0

_BLANK_LINES = re.compile(r"\n[ \t\r]*\n")


class StoriesUnavailableError(RuntimeError):
    """The configured story source cannot deliver the stories the experiment needs."""


def _fix_hint(hub_dataset: str) -> str:
    return (
        "Fix it either way: (1) point transformer.data.local_files at TinyStories files "
        "(parquet with a 'text' column, jsonl with a 'text' field, or txt with stories separated "
        f"by '{END_OF_TEXT}' or blank lines) and set transformer.data.source to 'local' or "
        "'auto'; or (2) set transformer.data.source to 'hub' on a machine that can reach the "
        f"Hugging Face hub (dataset {hub_dataset!r})."
    )


# ----------------------------------------------------------------------------- local formats


def read_parquet_texts(path: Path) -> list[str]:
    """The ``text`` column of a Parquet file."""
    schema = pq.read_schema(path)
    if "text" not in schema.names:
        raise StoriesUnavailableError(
            f"{path}: Parquet file has no 'text' column (columns: {schema.names}); "
            "fix the file or remove it from transformer.data.local_files."
        )
    return [t for t in pq.read_table(path, columns=["text"]).column("text").to_pylist() if t]


def read_jsonl_texts(path: Path) -> list[str]:
    """The ``text`` field of every non-blank line of a JSON-lines file."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"line {number} is not JSON ({error})") from None
            if not isinstance(record, dict) or "text" not in record:
                raise StoriesUnavailableError(
                    f"{path}:{number}: JSON line has no 'text' field; fix the file or remove "
                    "it from transformer.data.local_files."
                )
            texts.append(record["text"])
    return texts


def split_txt_records(content: str) -> list[str]:
    """Stories of a text file: ``<|endoftext|>``-separated if the marker occurs, else blank-line
    separated (a blank line may hold spaces or tabs)."""
    content = content.replace("\r\n", "\n")
    if END_OF_TEXT in content:
        return content.split(END_OF_TEXT)
    return _BLANK_LINES.split(content)


def read_txt_texts(path: Path) -> list[str]:
    """Stories of a plain-text file (see `split_txt_records`)."""
    return split_txt_records(path.read_text(encoding="utf-8"))


_READERS = {".parquet": read_parquet_texts, ".jsonl": read_jsonl_texts, ".txt": read_txt_texts}


def read_local_texts(path: Path) -> list[str]:
    """Raw texts of one local file, by its suffix; a file that is not what its suffix says
    (empty, truncated, another format, not UTF-8) is an error naming it and the setting."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise StoriesUnavailableError(
            f"{path}: unsupported story file type {path.suffix!r} in transformer.data.local_files;"
            f" use one of {', '.join(LOCAL_FORMATS)}."
        )
    try:
        return reader(path)
    except (pa.ArrowException, OSError, ValueError) as error:  # ValueError: text and JSON
        size = path.stat().st_size
        raise StoriesUnavailableError(
            f"{path} ({size} bytes) in transformer.data.local_files cannot be read as "
            f"{path.suffix.lower()[1:]}: {type(error).__name__}: {error}. Replace the file (an "
            "interrupted download?) or remove it from transformer.data.local_files."
        ) from error


def distinct_texts(texts: Iterable[str], limit: int | None = None) -> list[str]:
    """Stripped, non-empty texts without exact duplicates, first occurrence first; stops after
    ``limit`` texts when given."""
    seen: set[str] = set()
    kept: list[str] = []
    for raw in texts:
        text = raw.strip() if isinstance(raw, str) else ""
        if text and text not in seen:
            seen.add(text)
            kept.append(text)
            if limit is not None and len(kept) >= limit:
                break
    return kept


# ----------------------------------------------------------------------------- hub


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the hub answers an HTTP request within ``timeout`` seconds (any status counts)."""
    request = urllib.request.Request(hub_endpoint(), method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # the server answered, even if with an error status
    except (urllib.error.URLError, OSError, ValueError):
        return False


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _offline_variables() -> list[str]:
    """The Hugging Face offline-mode variables set in the environment."""
    return [
        name
        for name in OFFLINE_VARIABLES
        if os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
    ]


def _offline_mode() -> bool:
    return bool(_offline_variables())


def _offline_hint() -> str:
    """What offline mode means for a failed load, when it is on."""
    names = _offline_variables()
    if not names:
        return ""
    return (
        f"Offline mode is on ({', '.join(f'{n}=1' for n in names)}): `datasets` reads only its "
        "local cache, which does not hold this dataset; unset the variable on a machine that "
        "reaches the hub, or fill the cache there first. "
    )


def iter_hub_texts(
    hub_dataset: str, hub_split: str, reason: str = "", revision: str = "main"
) -> Iterator[str]:
    """Stream the ``text`` field of a hub split; fails at once when the hub is unreachable
    (unless HF offline mode is on, in which case `datasets` may serve its local cache).
    ``reason`` says in the error why the hub was chosen."""
    local = Path(hub_dataset).is_dir()  # a directory laid out like the hub's: no network
    if not local and not _offline_mode() and not _hub_reachable():
        raise StoriesUnavailableError(
            f"{reason or 'transformer.data.source is hub'}, so the stories must come from the "
            f"Hugging Face hub ({hub_dataset!r}, split {hub_split!r}), but {hub_endpoint()} "
            "cannot be reached (no network?). " + _fix_hint(hub_dataset)
        )
    try:
        import datasets  # imported here: slow to import and only needed for the hub

        stream = datasets.load_dataset(
            hub_dataset, split=hub_split, revision=revision, streaming=True
        )
        for record in stream:
            yield record["text"]
    except StoriesUnavailableError:
        raise
    except Exception as error:  # the hub/datasets raise many types; all mean "no stories"
        raise StoriesUnavailableError(
            f"loading {hub_dataset!r} (split {hub_split!r}) from the Hugging Face hub failed "
            f"for transformer.data.source: {type(error).__name__}: {error}. "
            + _offline_hint()
            + _fix_hint(hub_dataset)
        ) from error


# ----------------------------------------------------------------------------- entry point


def resolve_source(source: str, local_files: list[str]) -> tuple[str, list[Path]]:
    """The effective source (``local`` or ``hub``) and the local files to read."""
    if source not in SOURCES:
        raise StoriesUnavailableError(
            f"transformer.data.source is {source!r}; use one of {', '.join(SOURCES)}."
        )
    paths = [Path(p) for p in local_files]
    existing = [p for p in paths if p.is_file()]
    missing = [str(p) for p in paths if not p.is_file()]
    if source == "local":
        if not paths or missing:
            raise StoriesUnavailableError(
                "transformer.data.source is 'local' but transformer.data.local_files "
                + (f"names missing files {missing}" if missing else "is empty")
                + f" (relative paths are taken from the working directory {Path.cwd()}). "
                + "Fix the paths, or set transformer.data.source to 'hub' on a machine "
                "with network access."
            )
        return "local", paths
    if source == "auto" and existing:
        if missing:
            log.warning("transformer.data.local_files: skipping missing files %s", missing)
        return "local", existing
    return "hub", []


def load_stories(
    source: str,
    local_files: list[str],
    hub_dataset: str,
    hub_split: str,
    needed: int,
    hub_revision: str = "main",
) -> list[str]:
    """Distinct, stripped, non-empty stories from the configured source, at least ``needed``
    of them (``needed`` = n_train + n_desired + n_test); from the hub exactly ``needed``."""
    effective, paths = resolve_source(source, local_files)
    if effective == "local":
        raw: list[str] = []
        for path in paths:
            texts = read_local_texts(path)
            log.info("read %d records from %s", len(texts), path)
            raw.extend(texts)
        stories = distinct_texts(raw)
        origin = f"transformer.data.local_files ({', '.join(str(p) for p in paths)})"
    else:
        if source == "hub":
            reason = "transformer.data.source is 'hub'"
        else:
            reason = (
                f"transformer.data.source is {source!r} and transformer.data.local_files "
                f"lists no existing file ({[str(p) for p in local_files]})"
            )
        log.info(
            "streaming %d stories from the hub: %s split %s revision %s",
            needed,
            hub_dataset,
            hub_split,
            hub_revision,
        )
        texts = iter_hub_texts(hub_dataset, hub_split, reason, hub_revision)
        stories = distinct_texts(texts, limit=needed)
        origin = f"the hub dataset {hub_dataset!r} split {hub_split!r}"
    log.info("loaded %d distinct non-empty stories from %s", len(stories), origin)
    if len(stories) < needed:
        raise StoriesUnavailableError(
            f"{origin} give {len(stories)} distinct stories, but n_train + n_desired + n_test "
            f"= {needed}: {needed - len(stories)} missing. Add files to "
            "transformer.data.local_files, set transformer.data.source to 'hub' (needs network; "
            f"{hub_dataset!r} has about 2.1M stories), or lower transformer.data.n_train / "
            "n_desired / n_test."
        )
    return stories
