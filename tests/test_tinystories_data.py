"""The TinyStories data stage: loading, top-V tokenizer, perturbation and the built splits."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import stories as stories_module
from pipeline.data.perturb import delete_last, perturb, repeat_token, replace_token
from pipeline.data.stories import StoriesUnavailableError, load_stories, split_txt_records
from pipeline.data.tinystories import build_tinystories, choose_perturbed
from pipeline.data.tokenizer import (
    BOS_ID,
    N_SPECIAL,
    PAD_ID,
    UNK_ID,
    TopVocabulary,
    count_pieces,
    encode_pieces,
)

SHARED_STORIES = (
    Path(__file__).parents[1] / "../shared/data/tinystories/stories.parquet"
).resolve()
WORDS = [
    *("Tim", "Lily", "dog", "cat", "ball", "park", "sun", "tree", "happy", "sad", "big"),
    *("little", "red", "blue", "ran", "jumped", "saw", "found", "played", "said", "and"),
    *("the", "a", "to", "with", "in", "on", "was", "were", "very", "then", "one", "day"),
]


def synthetic_stories(count: int, seed: int = 0) -> list[str]:
    """Distinct short stories from a small word list (a cheap stand-in for TinyStories)."""
    rng = np.random.default_rng(seed)
    return [f"Story {i}. " + " ".join(rng.choice(WORDS, size=30)) + "." for i in range(count)]


def write_parquet_stories(path: Path, texts: list[str]) -> Path:
    pq.write_table(pa.table({"text": texts}), path)
    return path


def settings_for(local_file: Path, **overrides) -> dict:
    settings = {
        "source": "local",
        "local_files": [str(local_file)],
        "hub_dataset": "roneneldan/TinyStories",
        "hub_split": "train",
        "hub_revision": "main",
        "n_train": 40,
        "n_desired": 8,
        "n_desired_base": 0,
        "n_test": 8,
        "vocab_size": 24,
        "seq_len": 16,
        "perturbed_fraction": 0.5,
        "perturbation_ops": 20,
    }
    return settings | overrides


def read_split(out: Path, split: str) -> pa.Table:
    return pq.read_table(out / f"{split}.parquet")


# ----------------------------------------------------------------------------- perturbation


def test_each_operation_on_a_hand_made_sequence():
    seq = [BOS_ID, 10, 11, 12, 13]
    assert replace_token(seq, 2, 7) == [BOS_ID, 10, 7, 12, 13]
    assert delete_last(seq) == [BOS_ID, 10, 11, 12]
    assert repeat_token(seq, 1, seq_len=8) == [BOS_ID, 10, 10, 11, 12, 13]
    assert repeat_token(seq, 4, seq_len=8) == [BOS_ID, 10, 11, 12, 13, 13]
    # at full length the insertion pushes the last token out
    assert repeat_token(seq, 1, seq_len=5) == [BOS_ID, 10, 10, 11, 12]
    assert seq == [BOS_ID, 10, 11, 12, 13]  # inputs are not modified


@pytest.mark.parametrize("seed", range(60))
def test_one_perturbation_matches_its_label(seed):
    seq, vocab_size, seq_len = [BOS_ID, 10, 11, 12, 13, 14], 30, 8
    out, (label,) = perturb(seq, np.random.default_rng(seed), 1, vocab_size, N_SPECIAL, seq_len)
    if label == "delete_last":
        assert out == seq[:-1]
    elif label.startswith("repeat@"):
        position = int(label.split("@")[1])
        assert 1 <= position < len(seq)
        assert out == seq[: position + 1] + seq[position:]
    else:
        assert label.startswith("replace@")
        position = int(label.split("@")[1])
        assert 1 <= position < len(seq)
        assert N_SPECIAL <= out[position] < vocab_size
        assert out[:position] + out[position + 1 :] == seq[:position] + seq[position + 1 :]


def test_perturbation_keeps_bos_and_length_and_uses_all_operations():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(50):
        seq = [BOS_ID, *rng.integers(N_SPECIAL, 50, size=15).tolist()]
        out, labels = perturb(seq, rng, 20, 50, N_SPECIAL, seq_len=16)
        assert len(labels) == 20
        assert out[0] == BOS_ID and BOS_ID not in out[1:]
        assert 1 <= len(out) <= 16
        assert all(N_SPECIAL <= t < 50 for t in out[1:])
        seen |= {label.split("@")[0] for label in labels}
    assert seen == {"replace", "delete_last", "repeat"}


def test_perturbing_a_bos_only_sequence_is_a_noop():
    out, labels = perturb([BOS_ID], np.random.default_rng(0), 5, 50, N_SPECIAL, seq_len=16)
    assert out == [BOS_ID] and labels == ["noop"] * 5


@pytest.mark.parametrize(("n", "fraction"), [(64, 0.5), (7, 0.5), (10, 0.3), (5, 0.0), (5, 1.0)])
def test_exactly_the_rounded_fraction_is_perturbed(n, fraction):
    mask = choose_perturbed(n, fraction, np.random.default_rng(3))
    assert mask.dtype == bool and mask.shape == (n,)
    assert mask.sum() == round(fraction * n)


# ----------------------------------------------------------------------------- tokenizer


def corpus_counts(text: str):
    return count_pieces(encode_pieces([text]))


def test_tokenizer_round_trip_without_unk():
    texts = ["Once upon a time, Lily saw a big red ball.\nShe was happy!", "Tim ran to the park."]
    counts = count_pieces(encode_pieces(texts))
    vocab = TopVocabulary.from_counts(counts, N_SPECIAL + len(counts), seq_len=64)
    for text in texts:
        ids = vocab.encode(text)
        assert ids[0] == BOS_ID and UNK_ID not in ids and PAD_ID not in ids
        assert vocab.decode(ids) == text


def test_tokenizer_maps_rare_pieces_to_unk_and_truncates():
    text = "the the the the cat"
    vocab = TopVocabulary.from_counts(count_pieces(encode_pieces([text])), N_SPECIAL + 1, 64)
    ids = vocab.encode(text)
    assert ids == [BOS_ID, N_SPECIAL, N_SPECIAL, N_SPECIAL, N_SPECIAL, UNK_ID]
    assert vocab.decode(ids) == "the the the the ⁇ "  # SentencePiece's rendering of <unk>
    assert len(TopVocabulary.from_counts(corpus_counts(text), N_SPECIAL + 1, 3).encode(text)) == 3


def test_vocabulary_too_large_for_the_corpus_names_the_setting():
    with pytest.raises(ValueError, match="transformer.data.vocab_size"):
        TopVocabulary.from_counts(corpus_counts("a tiny text"), 1000, 16)


def test_vocabulary_json_round_trip(tmp_path):
    vocab = TopVocabulary.from_counts(corpus_counts("Lily and Tim play."), N_SPECIAL + 4, 16)
    vocab.save(tmp_path / "vocab.json")
    payload = json.loads((tmp_path / "vocab.json").read_text())
    assert payload["special_tokens"] == {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2}
    assert [t["id"] for t in payload["tokens"]] == list(range(vocab.vocab_size))
    assert TopVocabulary.load(tmp_path / "vocab.json") == vocab


# ----------------------------------------------------------------------------- loading


def test_every_local_format_loads(tmp_path):
    texts = ["First story.\nIt has two lines.", "Second story.", "Third story."]
    parquet = write_parquet_stories(tmp_path / "a.parquet", [*texts, "", texts[0]])
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n\n")
    eot = tmp_path / "c.txt"
    eot.write_text("<|endoftext|>\n".join(texts) + "<|endoftext|>\n")
    blank = tmp_path / "d.txt"
    blank.write_text("First story.\n\nSecond story.\n  \nThird story.\n")
    for path in (parquet, jsonl, eot):
        assert load_stories("local", [str(path)], "x/y", "train", needed=3) == texts
    assert load_stories("auto", [str(blank)], "x/y", "train", 3) == [
        "First story.",
        "Second story.",
        "Third story.",
    ]
    # duplicates across files are dropped, the first occurrence wins
    both = load_stories("local", [str(parquet), str(jsonl)], "x/y", "train", 3)
    assert both == texts


def test_txt_separator_choice():
    assert split_txt_records("a\n\nb<|endoftext|>c") == ["a\n\nb", "c"]
    assert split_txt_records("a\nstill a\n\nb") == ["a\nstill a", "b"]


def test_bad_local_files_name_the_setting(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("text\nx\n")
    with pytest.raises(StoriesUnavailableError, match="unsupported story file type"):
        load_stories("local", [str(csv)], "x/y", "train", 1)
    with pytest.raises(StoriesUnavailableError, match="transformer.data.local_files"):
        load_stories("local", [str(tmp_path / "missing.parquet")], "x/y", "train", 1)
    no_text = tmp_path / "no_text.parquet"
    pq.write_table(pa.table({"story": ["x"]}), no_text)
    with pytest.raises(StoriesUnavailableError, match="no 'text' column"):
        load_stories("local", [str(no_text)], "x/y", "train", 1)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.parquet", b""),
        ("csv_named.parquet", b"text\nOnce upon a time\n"),
        ("truncated.parquet", None),  # a real Parquet file cut in half
        ("bad.jsonl", b'{"text": "a"}\n{"text": \n'),
        ("latin1.txt", "Es war einmal ein M\u00e4dchen".encode("latin-1")),
    ],
)
def test_unreadable_local_file_names_the_file_and_the_setting(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        pq.write_table(pa.table({"text": [f"story {i}" for i in range(100)]}), path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    for source in ("local", "auto"):
        with pytest.raises(StoriesUnavailableError) as caught:
            load_stories(source, [str(path)], "x/y", "train", 1)
        message = str(caught.value)
        assert str(path) in message and "transformer.data.local_files" in message, message
        assert "cannot be read as" in message


def _forbid_hub_download(monkeypatch):
    import datasets

    def refuse(*args, **kwargs):
        raise AssertionError("load_dataset must not be called when the hub is unreachable")

    monkeypatch.setattr(datasets, "load_dataset", refuse)


@pytest.mark.parametrize(
    ("source", "files"), [("hub", []), ("auto", []), ("auto", ["no/such/file.parquet"])]
)
def test_offline_hub_fails_at_once_naming_both_fixes(monkeypatch, source, files):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(stories_module, "_hub_reachable", lambda timeout=0: False)
    _forbid_hub_download(monkeypatch)
    started = time.perf_counter()
    with pytest.raises(StoriesUnavailableError) as caught:
        load_stories(source, files, "roneneldan/TinyStories", "train", 10)
    assert time.perf_counter() - started < 2.0
    message = str(caught.value)
    assert "transformer.data.source" in message and "transformer.data.local_files" in message
    assert "cannot be reached" in message and "'hub'" in message


def test_hub_errors_are_turned_into_a_config_message(monkeypatch):
    import datasets

    def no_connection(*args, **kwargs):
        raise ConnectionError("simulated: no route to host")

    monkeypatch.setattr(stories_module, "_hub_reachable", lambda timeout=0: True)
    monkeypatch.setattr(datasets, "load_dataset", no_connection)
    with pytest.raises(StoriesUnavailableError, match="transformer.data.local_files") as caught:
        load_stories("hub", [], "roneneldan/TinyStories", "train", 10)
    assert "simulated: no route to host" in str(caught.value)


def test_hub_stream_takes_the_first_needed_distinct_stories(monkeypatch):
    import datasets

    records = [{"text": t} for t in ["a", "a", " ", "b", "c", "d"]]
    monkeypatch.setattr(stories_module, "_hub_reachable", lambda timeout=0: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: iter(records))
    assert load_stories("hub", [], "x/y", "train", 3) == ["a", "b", "c"]
    with pytest.raises(StoriesUnavailableError, match="1 missing"):
        load_stories("hub", [], "x/y", "train", 5)


def test_too_few_stories_says_how_many_are_missing(tmp_path):
    path = write_parquet_stories(tmp_path / "few.parquet", synthetic_stories(50))
    with pytest.raises(StoriesUnavailableError) as caught:
        build_tinystories(settings_for(path, n_train=40, n_desired=8, n_test=8), tmp_path, 0)
    message = str(caught.value)
    assert "50 distinct stories" in message and "= 56: 6 missing" in message
    assert "transformer.data.local_files" in message and "'hub'" in message


# ----------------------------------------------------------------------------- built data


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory) -> Path:
    return write_parquet_stories(
        tmp_path_factory.mktemp("stories") / "stories.parquet", synthetic_stories(120)
    )


def test_splits_are_disjoint_half_perturbed_and_well_formed(tmp_path, synthetic_file):
    settings = settings_for(synthetic_file, n_train=41)
    stats = build_tinystories(settings, tmp_path, seed=5)
    train, desired, test = (read_split(tmp_path, s) for s in ("train", "desired", "test"))
    assert (train.num_rows, desired.num_rows, test.num_rows) == (41, 8, 8)
    ids = [set(t.column("story_id").to_pylist()) for t in (train, desired, test)]
    assert sum(map(len, ids)) == 57 and len(set.union(*ids)) == 57
    assert sum(train.column("perturbed").to_pylist()) == round(0.5 * 41) == stats["n_perturbed"]
    assert not any(desired.column("perturbed").to_pylist() + test.column("perturbed").to_pylist())
    for row in train.to_pylist():
        assert row["tokens"][0] == BOS_ID and row["length"] == len(row["tokens"]) <= 16
        assert all(0 < t < settings["vocab_size"] for t in row["tokens"])
        assert (len(row["operations"]) == 20) == row["perturbed"]
    vocab = TopVocabulary.load(tmp_path / "vocab.json")
    loaded = load_stories("local", [str(synthetic_file)], "x/y", "train", 1)
    for row in desired.to_pylist():  # story_id points at the source story
        assert row["tokens"] == vocab.encode(loaded[row["story_id"]])


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, synthetic_file):
    settings = settings_for(synthetic_file)
    names = ("train.parquet", "desired.parquet", "test.parquet", "vocab.json", "preview.md")
    build_tinystories(settings, tmp_path / "a", seed=11)
    build_tinystories(settings, tmp_path / "b", seed=11)
    build_tinystories(settings, tmp_path / "c", seed=12)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "train.parquet").read_bytes() != (
        tmp_path / "c" / "train.parquet"
    ).read_bytes()


def assert_the_desired_set_grows_alone(base: Path, larger: Path, n_base: int) -> None:
    """`larger` holds `base`'s train and test sets and vocabulary byte for byte, and its desired
    set is `base`'s followed by stories of neither split, tokenised with that vocabulary."""
    for name in ("train.parquet", "test.parquet"):
        assert (base / name).read_bytes() == (larger / name).read_bytes(), name
    vocab = TopVocabulary.load(base / "vocab.json")
    assert TopVocabulary.load(larger / "vocab.json") == vocab  # pieces, ids and counts
    small, large = read_split(base, "desired"), read_split(larger, "desired")
    assert large.slice(0, n_base).equals(small) and large.num_rows > n_base
    taken = {i for split in ("train", "desired", "test")
             for i in read_split(base, split).column("story_id").to_pylist()}  # fmt: skip
    further = large.column("story_id").to_pylist()[n_base:]
    assert len(set(further)) == len(further) and not taken & set(further)
    assert max(t for row in large.column("tokens").to_pylist() for t in row) < vocab.vocab_size


def test_a_larger_desired_set_over_its_base_draw_changes_nothing_else(tmp_path, synthetic_file):
    """`n_desired_base` (transformer_ablation's k512): K = 20 over the draw of K = 8 keeps the
    train and test sets and the vocabulary of K = 8; K = 20 drawn alone moves the test set (it
    follows the desired stories in the permutation) and the vocabulary (counted on all three)."""
    build_tinystories(settings_for(synthetic_file), tmp_path / "k8", seed=3)
    larger = settings_for(synthetic_file, n_desired=20, n_desired_base=8)
    stats = build_tinystories(larger, tmp_path / "k20", seed=3)
    assert (stats["n_desired"], stats["n_desired_base"]) == (20, 8)
    assert_the_desired_set_grows_alone(tmp_path / "k8", tmp_path / "k20", 8)
    loaded = load_stories("local", [str(synthetic_file)], "x/y", "train", 1)
    vocab = TopVocabulary.load(tmp_path / "k20" / "vocab.json")
    for row in read_split(tmp_path / "k20", "desired").to_pylist()[8:]:
        assert row["tokens"] == vocab.encode(loaded[row["story_id"]])

    build_tinystories(settings_for(synthetic_file, n_desired=20), tmp_path / "alone", seed=3)
    test_ids = [read_split(tmp_path / d, "test").column("story_id") for d in ("k8", "alone")]
    assert not test_ids[0].equals(test_ids[1])
    with pytest.raises(ValueError, match="transformer.data.n_desired_base = 9 must lie between"):
        build_tinystories(settings_for(synthetic_file, n_desired_base=9), tmp_path / "bad", 3)


@pytest.mark.skipif(not SHARED_STORIES.is_file(), reason=f"shared stories not at {SHARED_STORIES}")
def test_build_on_the_shared_tinystories(tmp_path):
    settings = settings_for(
        SHARED_STORIES,
        source="auto",
        n_train=64,
        n_desired=16,
        n_test=16,
        vocab_size=256,
        seq_len=32,
    )
    stats = build_tinystories(settings, tmp_path, seed=0)
    assert stats["n_loaded"] == 12237 and stats["n_perturbed"] == 32
    assert 0.0 < stats["unk_share"] < 0.5
    assert stats["length"]["desired"]["max"] == 32 and stats["length"]["train"]["min"] >= 1
    train = read_split(tmp_path, "train")
    assert train.schema.field("tokens").type == pa.list_(pa.int32())
    assert train.schema.field("operations").type == pa.list_(pa.string())
    test_columns = read_split(tmp_path, "test").schema.names
    assert test_columns == ["tokens", "length", "perturbed", "story_id"]
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert vocab["vocab_size"] == 256 and vocab["tokenizer_file"] == "tokenizer.model.v1"
    preview = (tmp_path / "preview.md").read_text()
    assert "| story | operations | before | after |" in preview and "[UNK] share" in preview


# ----------------------------------------------------------------------------- the real hub path


def _hub_layout(root: Path, texts: list[str], split: str = "train") -> Path:
    """A directory laid out as the hub serves TinyStories: Parquet shards with a `text` column
    under data/, named <split>-NNNNN-of-NNNNN.parquet."""
    shards = root / "data"
    shards.mkdir(parents=True)
    half = len(texts) // 2
    for i, part in enumerate((texts[:half], texts[half:])):
        pq.write_table(pa.table({"text": part}), shards / f"{split}-{i:05d}-of-00002.parquet")
    return root


def test_the_hub_path_runs_through_the_real_load_dataset(tmp_path, monkeypatch, stories_path):
    """The data job with the paper preset's data settings (source: hub, seq_len 64, half the
    training stories perturbed by 20 operations) at a tiny size, the hub replaced by a local
    directory laid out like it and read by the unmocked `datasets.load_dataset` (streaming).
    It gives the same bytes as the same stories read from a local file."""
    import datasets
    import yaml

    from tests.conftest import ROOT

    paper = yaml.safe_load((ROOT / "workflow" / "presets" / "paper.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    data = {**config["transformer"]["data"], **paper["transformer"]["data"]}
    data.update(n_train=40, n_desired=8, n_test=8, vocab_size=200)
    assert data["source"] == "hub" and data["seq_len"] == 64 and data["perturbation_ops"] == 20
    needed = data["n_train"] + data["n_desired"] + data["n_test"]
    rows = pq.read_table(stories_path, columns=["text"]).slice(0, 2 * needed)
    texts = stories_module.distinct_texts(rows.column("text").to_pylist(), limit=needed)
    hub = _hub_layout(tmp_path / "TinyStories", texts)

    calls = []
    real_load = datasets.load_dataset

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    for name in stories_module.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(stories_module, "_hub_reachable", lambda timeout=0: False)  # no network
    stats = build_tinystories({**data, "hub_dataset": str(hub)}, tmp_path / "hub", seed=0)
    assert calls == [((str(hub),), {"split": "train", "revision": "main", "streaming": True})]
    assert stats["n_loaded"] == needed and stats["n_perturbed"] == 20
    assert read_split(tmp_path / "hub", "train").column("operations").to_pylist()[0] is not None

    # 12 desired stories more over the same base draw (n_desired_base): the stream's next ones
    more = stories_module.distinct_texts(rows.column("text").to_pylist(), limit=needed + 12)
    larger = {**data, "hub_dataset": str(_hub_layout(tmp_path / "More", more))}
    build_tinystories(larger | {"n_desired": 20, "n_desired_base": 8}, tmp_path / "hub20", 0)
    assert_the_desired_set_grows_alone(tmp_path / "hub", tmp_path / "hub20", 8)
    further = read_split(tmp_path / "hub20", "desired").column("story_id").to_pylist()[8:]
    assert further == list(range(needed, needed + 12))

    local = write_parquet_stories(tmp_path / "stories.parquet", texts)
    build_tinystories(
        {**data, "source": "local", "local_files": [str(local)]}, tmp_path / "local", 0
    )
    for name in ("train.parquet", "desired.parquet", "test.parquet"):
        assert (tmp_path / "hub" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_the_offline_variables_and_the_probe_with_the_real_environment(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1 in a fresh process (the `datasets` library
    reads them when imported) with an empty cache: the error says offline mode is on and how to
    fix it. Without them, HF_ENDPOINT at a closed port fails the probe at once; at a server
    that answers, the probe passes."""
    import http.server
    import socket
    import subprocess
    import sys
    import threading

    from tests.conftest import ROOT

    program = (
        "from pipeline.data.stories import load_stories\n"
        "load_stories('hub', [], 'roneneldan/TinyStories', 'train', 10)\n"
    )
    runs = {}
    for name in stories_module.OFFLINE_VARIABLES:
        env = {k: v for k, v in os.environ.items() if k not in stories_module.OFFLINE_VARIABLES}
        env.update({name: "1", "HF_HOME": str(tmp_path / name), "PYTHONPATH": str(ROOT)})
        command = [sys.executable, "-c", program]
        runs[name] = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    for name, process in runs.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode != 0
        assert "StoriesUnavailableError" in stderr and f"Offline mode is on ({name}=1)" in stderr
        assert "transformer.data.local_files" in stderr

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    for name in stories_module.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    with pytest.raises(StoriesUnavailableError, match=f"127.0.0.1:{closed} cannot be reached"):
        load_stories("hub", [], "roneneldan/TinyStories", "train", 10)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert stories_module._hub_reachable(timeout=5)  # answered (501): reachable
    finally:
        server.server_close()
