"""The reference of every config key in ``docs/config.md``, written from the config's schema.

``workflow/schemas/config.schema.yaml`` is the one place a key is declared (its type, bounds, default
and description); the part of ``docs/config.md`` between :data:`BEGIN` and :data:`END` is made from it
by :func:`reference`, one row per key, named by its dotted path (``split.ratios.train``;
``datasets.<name>.format`` under a section whose keys are names the user chooses;
``published.results[].source`` inside a list). ``tests/test_docs.py`` fails when that part is
not what the schema gives now. After an edit of the schema, rewrite it with::

    python -m leukobench.plan.config_docs
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DOCS = REPO / "docs" / "config.md"
BEGIN = "<!-- BEGIN generated from workflow/schemas/config.schema.yaml by `python -m leukobench.plan.config_docs`: do not edit -->"
END = "<!-- END generated -->"
NAMED = "<name>"  # a key of an object whose keys the user chooses (a dataset's or a variant's name)
ITEM = "[]"  # an item of a list


def load_schema(path: Path = SCHEMA) -> dict:
    return yaml.safe_load(path.read_text())


def schema_keys(node: dict, prefix: str = "") -> list[tuple[str, dict, bool]]:
    """Every key under ``node`` as (dotted path, its schema, required), parents before their children,
    in the schema's order."""
    keys = []
    required = set(node.get("required", ()))
    for name, child in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        keys.append((path, child, name in required))
        keys.extend(_children(child, path))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):  # keys the user names: a dataset's, a variant's, a published metric's
        path = f"{prefix}.{NAMED}" if prefix else NAMED
        keys.extend(_children(extra, path) or [(path, extra, False)])
    return keys


def _children(node: dict, path: str) -> list[tuple[str, dict, bool]]:
    if node.get("type") == "array" and isinstance(node.get("items"), dict) and node["items"].get("properties"):
        return schema_keys(node["items"], path + ITEM)
    if node.get("properties") or isinstance(node.get("additionalProperties"), dict):
        return schema_keys(node, path)
    return []


def kind(node: dict) -> str:
    """What a key takes, in words: type, allowed values and bounds."""
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    if "anyOf" in node:
        return " or ".join(kind(option) for option in node["anyOf"])
    types = node.get("type", "object" if "properties" in node else "any")
    types = types if isinstance(types, list) else [types]
    words = []
    for name in types:
        if name == "array":
            items = node.get("items")
            listed = "non-empty list" if node.get("minItems", 0) >= 1 else "list"
            words.append(listed + (f" of {kind(items)}" if isinstance(items, dict) and not items.get("properties") else ""))
        else:
            words.append({"null": "null", "object": "mapping"}.get(name, name))
    text = " or ".join(words)
    bounds = [f"{sign} {node[key]}" for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                                                       ("exclusiveMaximum", "<")) if key in node]
    if node.get("minItems", 0) > 1:
        bounds.append(f"at least {node['minItems']} items")
    if node.get("uniqueItems"):
        bounds.append("no repeats")
    if "pattern" in node:
        bounds.append(f"matching `{node['pattern']}`")
    return f"{text} ({', '.join(bounds)})" if bounds else text


def default(node: dict, required: bool) -> str:
    if "default" not in node:
        return "required" if required else "unset"
    value = node["default"]
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).removesuffix(chr(10)).removesuffix('...').strip()}`"


def table_cell(text: str) -> str:
    """Text that stays inside one cell of a Markdown table, a ``<name>`` outside code shown as written."""
    parts = re.sub(r"\s+", " ", text).replace("|", "\\|").strip().split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;").replace(">", "&gt;") for i, part in enumerate(parts))


def reference(schema: dict) -> str:
    """The generated part of docs/config.md: per section of the config, its description and one
    row per key below it."""
    lines = [BEGIN, ""]
    sections = schema_keys(schema)
    for section, node, required in (key for key in sections if "." not in key[0]):
        lines += [f"### `{section}`", "", table_cell(node.get("description", "")) + (" Required." if required else ""), ""]
        rows = [key for key in sections if key[0].startswith(section + ".")]
        if not rows:
            lines += [f"Takes {kind(node)}; default {default(node, required)}.", ""]
            continue
        lines += ["| key | takes | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{path}` | {table_cell(kind(child))} | {table_cell(default(child, child_required))} | "
                  f"{table_cell(child.get('description', ''))} |" for path, child, child_required in rows]
        lines.append("")
    return "\n".join([*lines, END])


def documented(text: str) -> str:
    """The generated part of a docs page's text (empty when its markers are missing)."""
    start, end = text.find(BEGIN), text.find(END)
    return text[start:end + len(END)] if 0 <= start < end else ""


def write(docs: Path = DOCS, schema_path: Path = SCHEMA) -> bool:
    """Rewrite the generated part of ``docs``; True when it changed."""
    text = docs.read_text()
    old = documented(text)
    if not old:
        raise SystemExit(f"{docs}: no generated part to rewrite; it needs the lines {BEGIN!r} and {END!r}")
    new = reference(load_schema(schema_path))
    if new != old:
        docs.write_text(text.replace(old, new))
    return new != old


if __name__ == "__main__":
    changed = write()
    print(f"{DOCS}: {'rewritten from' if changed else 'already in step with'} {SCHEMA}", file=sys.stderr)
