"""Names of the data sets under results/data/: by every data setting and, for the Transformer,
by the content of the story files it reads, so that different data never share a directory.

The Perceptron's data is generated from its settings and seed: its name lists the settings that
differ from the main run's (`perceptron`, `perceptron-s1-n_desired2048`). The Transformer's
also depends on files outside the pipeline: its name lists the numbers that differ
(`tinystories-N64-V128-n_desired16`) and ends in a short hash of its other settings (source,
files, hub dataset, split, revision) and of the bytes of the local story files it reads. A story
file replaced by another, whatever its modification time (`cp -p`, `rsync -a`), changes the
name, so the data job runs again and every result built on the old data is rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

#: Digits of the content hash in a Transformer data set's name (32 bits).
HASH_DIGITS = 8
#: The Transformer's data settings that are numbers (shown in its name); the rest are hashed.
_NUMBERS = (int, float)


def format_number(x: float) -> str:
    """A number as it appears in a name: `%g` (0.001, 5e-06) where that reads back as the same
    number, else in full, so that two settings never share a name."""
    text = f"{x:g}"
    if float(text) == x:
        return text
    return str(x) if isinstance(x, int) else repr(float(x))


def _stat_key(path: Path) -> tuple | None:
    """What identifies a file's version without reading it: size, inode and change time (set by
    the system on every write or replacement, also by `cp -p`), and modification time."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_ctime_ns)


@functools.lru_cache(maxsize=256)
def _hash_file(path: str, stat_key: tuple) -> str:
    """SHA-256 of a file's bytes, computed once per version (`stat_key`) in a process."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path: str | Path) -> str | None:
    """The SHA-256 of a file's content, or None for a missing file."""
    key = _stat_key(Path(path))
    return None if key is None else _hash_file(str(Path(path).resolve()), key)


def story_files_read(data: dict) -> list[str]:
    """The local story files the data job reads (as pipeline/data/stories.py resolves them):
    all listed with `source: local`, the existing ones with `auto` (none: the hub), none from
    the hub."""
    files = [str(p) for p in data.get("local_files") or []]
    if data["source"] == "local":
        return files
    if data["source"] == "auto":
        return [p for p in files if Path(p).is_file()]
    return []


def content_key(data: dict) -> dict:
    """Everything of a Transformer data block that is not a number, and the content of the
    story files it reads (a missing file as None: the job then fails naming it)."""
    return {
        "settings": {k: v for k, v in sorted(data.items()) if not isinstance(v, _NUMBERS)},
        "files": [file_fingerprint(path) for path in story_files_read(data)],
    }


def content_hash(data: dict) -> str:
    """A short hash of `content_key`: the part of a Transformer data set's name that tells
    apart data with the same sizes but other stories."""
    text = json.dumps(content_key(data), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_DIGITS]


def _differing_numbers(data: dict, main: dict, skip: tuple[str, ...] = ()) -> str:
    return "".join(
        f"-{key}{format_number(value)}"
        for key, value in sorted(data.items())
        if key not in skip and isinstance(value, _NUMBERS) and value != main.get(key)
    )


def dataset_name(config: dict, settings: dict) -> str:
    """Directory under results/data/ of a run's data; runs with equal data and seed share it."""
    data, seed = settings["data"], settings["seed"]
    seed_part = f"-s{seed}" if seed != config["seed"] else ""
    if settings["kind"] == "perceptron":
        return "perceptron" + seed_part + _differing_numbers(data, config["perceptron"]["data"])
    main = config["transformer"]["data"]
    sizes = ""
    if any(isinstance(v, _NUMBERS) and v != main.get(k) for k, v in data.items()):
        sizes = f"-N{data['n_train']}-V{data['vocab_size']}" + _differing_numbers(
            data, main, skip=("n_train", "vocab_size")
        )
    return f"tinystories{sizes}-{content_hash(data)}{seed_part}"


def story_file_versions(config: dict) -> tuple:
    """The version (`_stat_key`) of every story file the configuration lists anywhere: a key
    under which names computed from the files stay valid."""
    found: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "local_files" and isinstance(value, list):
                    found.extend(str(p) for p in value)
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(config)
    return tuple((path, _stat_key(Path(path))) for path in sorted(set(found)))
