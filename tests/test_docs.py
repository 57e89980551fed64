"""The README and docs/: every config key of the schema documented in docs/config.md, and only those
(leukobench.plan.config_docs); every link leads to a page and a heading that exist."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from leukobench.plan.config_docs import DOCS, documented, load_schema, reference, schema_keys

ROW = re.compile(r"^\| `([^`]+)` \|", flags=re.M)  # a table row of one key
SECTION = re.compile(r"^### `([^`]+)`$", flags=re.M)  # a top-level key's heading


def keys_in_docs(text: str) -> set[str]:
    part = documented(text)
    return set(ROW.findall(part)) | set(SECTION.findall(part))


def resolve(schema: dict, dotted: str) -> dict | None:
    """The schema of a documented key, followed step by step (``<name>``: a name the user chooses,
    ``[]``: a list's item); None where the schema has no such key."""
    node = schema
    for step in dotted.split("."):
        item = step.endswith("[]")
        step = step.removesuffix("[]")
        if step == "<name>" and isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif step in (node.get("properties") or {}):
            node = node["properties"][step]
        else:
            return None
        if item:
            if node.get("type") != "array" or not isinstance(node.get("items"), dict):
                return None
            node = node["items"]
    return node


def undocumented(schema: dict, text: str) -> tuple[set[str], set[str]]:
    """(keys of the schema missing from the docs, documented keys the schema does not have)."""
    documented_keys = keys_in_docs(text)
    declared = {path for path, _, _ in schema_keys(schema)}
    return declared - documented_keys, {key for key in documented_keys if resolve(schema, key) is None}


def test_every_key_of_the_schema_is_in_the_docs_and_no_other():
    missing, unknown = undocumented(load_schema(), DOCS.read_text())
    assert not missing, f"config keys not in {DOCS.name}: {sorted(missing)}; run python -m leukobench.plan.config_docs"
    assert not unknown, f"{DOCS.name} documents keys the schema does not have: {sorted(unknown)}"


def test_the_keys_part_of_the_docs_is_what_the_schema_gives_now():
    assert documented(DOCS.read_text()) == reference(load_schema()), (
        f"{DOCS} is not in step with workflow/schemas/config.schema.yaml: run python -m leukobench.plan.config_docs")


def test_every_key_of_the_schema_has_a_description():
    assert [path for path, node, _ in schema_keys(load_schema()) if not node.get("description")] == []


def test_the_walk_reaches_every_kind_of_key():
    """Keys of sections, of named entries, of list items and named values below list items."""
    schema = load_schema()
    keys = {path for path, _, _ in schema_keys(schema)}
    for key in ("split", "split.ratios.train", "datasets.<name>.synthetic.seed", "variants.<name>.color",
                "published.data.<name>", "published.results[].trial", "published.results[].<name>", "scale", "exclude"):
        assert key in keys
    assert all(resolve(schema, key) is not None for key in keys)


@pytest.mark.parametrize("change", ["a new key", "a removed key", "a new section"])
def test_a_schema_change_the_docs_lack_is_caught(change):
    schema, text = load_schema(), DOCS.read_text()
    edited = copy.deepcopy(schema)
    if change == "a new key":
        edited["properties"]["evaluation"]["properties"]["new_option"] = {"type": "boolean", "description": "new"}
        expected = ({"evaluation.new_option"}, set())
    elif change == "a removed key":
        del edited["properties"]["split"]["properties"]["duplicates"]
        expected = (set(), {"split.duplicates"})
    else:
        edited["properties"]["extra"] = {"type": "object", "properties": {"depth": {"type": "integer"}}}
        expected = ({"extra", "extra.depth"}, set())
    assert undocumented(edited, text) == expected
    assert documented(text) != reference(edited)
    assert undocumented(edited, reference(edited)) == (set(), set())  # what the rewrite gives is complete


# --- links between the README and the docs pages -----------------------------------------------

PAGES = [DOCS.parents[1] / "README.md", *sorted(DOCS.parent.glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # a Markdown link's target
HEADING = re.compile(r"^#+ (.+)$", flags=re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(page) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif fragment and linked.suffix == ".md" and fragment not in {anchor(h) for h in HEADING.findall(linked.read_text())}:
            broken.append(f"{target}: no heading #{fragment} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_of_the_readme_and_the_docs_leads_somewhere(page):
    assert broken_links(page) == []


def test_the_readme_links_every_docs_page_and_stays_short():
    readme = PAGES[0].read_text()
    linked = {target.partition("#")[0] for target in LINK.findall(readme)}
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= linked
    assert len(readme.splitlines()) < 150


def test_a_dead_link_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A title\n[ok](#a-title) [gone](missing.md) [no such part](#elsewhere) [web](https://example.org)\n")
    assert broken_links(page) == [f"missing.md: no file {tmp_path / 'missing.md'}", "#elsewhere: no heading #elsewhere in page.md"]


def test_the_run_that_drew_the_readmes_picture_is_a_valid_config():
    from snakemake.utils import validate

    from leukobench.plan.config import config_problems

    config = yaml.safe_load((DOCS.parent / "comparison.yaml").read_text())
    validate(config, str(DOCS.parents[1] / "workflow/schemas/config.schema.yaml"))
    assert config_problems(config) == []
    assert (DOCS.parent / "comparison.png").stat().st_size < 60_000  # small enough to sit in git
