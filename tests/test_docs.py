"""The README and docs/: short README with the commands CI runs, links that resolve, the
configuration reference and docs/results/ as the generators make them, and no README number
that its generated table lacks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import docs
from tests.conftest import ROOT, SMOKE, copy_of_smoke_run, snakemake

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
#: Reading pages: neither the measurements log nor the generated reference.
READING = [README, *(p for p in PAGES if p.name not in {"measurements.md", "configuration.md"})]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
#: docs/results/ files that pages link but rule `docs` does not write: the optimum's, copied from
#: `policy_frontier` and `optimum_k` (docs/optimum.md says so), and the minibatch study's, copied
#: from `minibatch_online` and `python -m pipeline.bench.minibatch_sweep` (docs/minibatch.md).
COPIED_FILES = re.compile(r"^(policy_frontier|optimum|minibatch)_")


def links(page: Path) -> list[str]:
    """Every link and image target of a Markdown page, outside code blocks and spans."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m[1]) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def test_readme_is_short_and_holds_the_commands_ci_and_a_new_user_run():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    ci = (ROOT / ".ci" / "run").read_text().splitlines()[-1]
    assert ci.startswith("python3.11 -m venv .venv && ") and ci in text.splitlines()
    run = next(x for x in text.splitlines() if x.startswith("python3.11 -m venv .venv &&"))
    assert run.endswith(".venv/bin/snakemake --cores all") and "'.[test]'" not in run
    for heading in ("Results at a glance", "Targets", "Where to read more"):
        assert f"## {heading}" in text
    # every docs page is on the README's map
    mapped = {Path(target).name for target in links(README) if target.startswith("docs/")}
    assert {p.name for p in PAGES} <= mapped, {p.name for p in PAGES} - mapped


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # http(s):, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{page.name}: {broken}"


@pytest.mark.parametrize("page", READING, ids=lambda p: p.name)
def test_reading_pages_hold_no_commit_hash_or_date(page):
    """Dated measurements and their commits belong in docs/measurements.md."""
    text = page.read_text()
    hashes = re.findall(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b", text)
    dates = re.findall(r"\b20\d\d-\d\d-\d\d\b", text)
    assert not hashes and not dates, (hashes, dates)


def test_configuration_reference_equals_what_the_generator_makes():
    assert (ROOT / "docs" / "configuration.md").read_text() == docs.current_reference(), (
        "docs/configuration.md is out of date: run `python -m pipeline.docs`"
    )


def test_configuration_reference_has_a_row_for_every_key_of_config_yaml():
    rows = {path for path, *_ in docs.settings(yaml.safe_load(docs.SCHEMA.read_text()), {})}

    def keys(block: dict, prefix: str):
        for key, value in block.items():
            path = f"{prefix}{key}"
            if prefix.endswith("definitions."):
                path = f"{prefix}<name>"  # a name the user chooses
            yield path
            if isinstance(value, dict):
                yield from keys(value, f"{path}.")

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    leaves = {row for row in rows if not any(other.startswith(f"{row}.") for other in rows)}
    # a key under a free-form block (an ablation's `base`, a variant) is covered by its block
    missing = [path for path in keys(config, "") if path not in rows
               and not any(path.startswith(f"{row}.") for row in leaves)]  # fmt: skip
    assert not missing, missing
    reference = docs.configuration_reference(yaml.safe_load(docs.SCHEMA.read_text()), config)
    assert "| `perceptron.policy.step_size` | number (> 0) | `0.001` |" in reference


def test_readme_includes_the_committed_at_a_glance_table():
    """The README shows the committed table's rows, or (from a reduced-size run) only a link."""
    committed = (ROOT / docs.DOCS_RESULTS / "at_a_glance.md").read_text()
    block = README.read_text().split(docs.GLANCE_START)[1].split(docs.GLANCE_END)[0]
    assert docs.glance_rows(committed), "the committed at-a-glance page has no table"
    if docs.REDUCED in (ROOT / docs.DOCS_RESULTS / "README.md").read_text():
        assert not docs.glance_rows(block) and "docs/results/at_a_glance.md" in block
    else:
        assert docs.glance_rows(block) == docs.glance_rows(committed)


NUMBER = re.compile(r"\d+(?:\.\d+)?×|\d+\.\d+")
VERDICTS = ("not reproduced", "partly", "reproduced", "no data")


def disagreements(markdown: str, root: Path = ROOT) -> list[str]:
    """Numbers and bold verdicts of each prose paragraph that links docs/results/<X>.md, absent
    from the X it links (the at-a-glance block itself is compared whole, above)."""
    found = []
    for block in markdown.split("\n\n"):
        paragraph = "\n".join(x for x in block.splitlines() if not x.startswith("|"))  # prose
        cited = re.findall(r"\]\((docs/results/[^)#]+\.md)\)", paragraph)
        if not cited or docs.GLANCE_START in paragraph:
            continue
        tables = "\n".join((root / path).read_text() for path in cited)
        prose = re.sub(r"\[[^\]]*\]\([^)]*\)", "", paragraph)  # not the link texts
        found += [f"{n} ∉ {cited}" for n in NUMBER.findall(prose) if n not in tables]
        bold = [v for v in VERDICTS if re.search(rf"\*\*{v}\*\*", prose, flags=re.I)]
        found += [f"{v} ∉ {cited}" for v in bold if v not in tables.lower()]
    return found


def test_no_readme_number_disagrees_with_the_generated_table_it_cites():
    text = README.read_text()
    cited = [p for p in text.split("\n\n") if "5.50×" in p and "docs/results/at_a_glance.md" in p]
    assert cited, "the README quotes the paper's 5.50× beside the generated table"
    assert not disagreements(text)
    bad = "Ours: AR 123.45× ([at a glance](docs/results/at_a_glance.md))."  # a stale number
    assert disagreements(bad) == ["123.45× ∉ ['docs/results/at_a_glance.md']"]


def test_splice_replaces_only_the_block_and_names_a_missing_marker():
    text = f"head\n{docs.GLANCE_START}\nold\n{docs.GLANCE_END}\ntail\n"
    assert docs.splice(text, "| new |") == (
        f"head\n{docs.GLANCE_START}\n| new |\n{docs.GLANCE_END}\ntail\n"
    )
    with pytest.raises(ValueError, match="at-a-glance markers"):
        docs.splice("no markers here", "| new |")


def test_rule_docs_writes_every_file_the_docs_link(smoke_run, tmp_path):
    """`snakemake docs` on a copy of the smoke run (its studies outside `all` at smoke size too):
    every docs/results/ file that README.md or docs/ link, the Markdown as the run wrote it, the
    README's block from the run's table, and where the files come from."""
    copy_of_smoke_run(smoke_run, tmp_path)
    shutil.copy(README, tmp_path / "README.md")
    # the studies at their smallest, mostly the smoke run's own runs: a few jobs to add
    overlay = tmp_path / "studies.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {  # the scale fit needs 3 runs: the smoke preset's two seeds stay
                "perceptron_ablation": {"seeds": [0], "variants": ["default"]},
                "transformer_ablation": {"seeds": [0], "variants": ["authors"]},
            }
        )
    )
    stories = str(tmp_path / "stories.yaml")
    snakemake(tmp_path, "docs", "docs_studies", "--configfile", SMOKE, stories, str(overlay))
    out = tmp_path / docs.DOCS_RESULTS
    linked = set()
    for page in [README, *PAGES]:
        for target in links(page):
            path = (page.parent / target.partition("#")[0]).resolve()
            if path.parent == (ROOT / docs.DOCS_RESULTS).resolve():
                linked.add(path.name)
    linked = {name for name in linked if not COPIED_FILES.match(name)}
    assert {"at_a_glance.md", "README.md", "transformer_ablation.md",
            "studies_provenance.md"} <= linked  # fmt: skip
    missing = [name for name in sorted(linked) if not (out / name).exists()]
    assert not missing, f"rule docs does not write {missing}"
    glance = (tmp_path / "results" / "at_a_glance.md").read_text()
    assert (out / "at_a_glance.md").read_text() == f"{docs.GENERATED}\n{glance.rstrip()}\n"
    assert (out / "transformer_scale.png").read_bytes() == (
        tmp_path / "results" / "figures" / "transformer_scale.png"
    ).read_bytes()
    readme = (tmp_path / "README.md").read_text()
    block = readme.split(docs.GLANCE_START)[1].split(docs.GLANCE_END)[0]
    assert docs.glance_rows(glance) and not docs.glance_rows(block)  # a smoke table: a link
    assert "a reduced size" in block and "a reduced size" in (out / "README.md").read_text()
    assert "`workflow/presets/smoke.yaml`" in (out / "README.md").read_text()
    studies = (out / "studies_provenance.md").read_text()
    assert "snakemake docs_studies" in studies and "a reduced size" in studies


def test_no_code_comment_points_at_a_readme_section_or_the_spec():
    """Comments and docstrings name a docs page (a stable file), never a README section title
    (which moves with every edit) nor SPEC.md (not part of the repository)."""
    files = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "workflow").rglob("*.smk"),
             *(ROOT / "workflow").rglob("*.yaml"), *(ROOT / "workflow").rglob("*.rst"),
             *(ROOT / "workflow").rglob("*.py"), *(ROOT / "profiles").rglob("*.yaml"),
             *(ROOT / "envs").glob("*.yaml"), ROOT / "config.yaml", ROOT / "Snakefile"]  # fmt: skip
    pattern = re.compile(r"README(?:'s)?:? [\"§]|README(?:'s)? \"|\bSPEC\b")
    found = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in files
             for line in path.read_text().splitlines() if pattern.search(line)]  # fmt: skip
    assert not found, found
    # and the pages they name exist
    named = {m for path in files for m in re.findall(r"docs/[\w-]+\.md", path.read_text())}
    assert named and all((ROOT / name).exists() for name in named), named
