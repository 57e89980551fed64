"""The rules' conda environments (`--sdm conda`) pin exactly what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
CONDA_DIRECTIVE = re.compile(r"^[ \t]+conda:[ \t]*(?:\n[ \t]+)?(?P<value>\S.*)$", re.M)
CONDA_SPEC = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)(?:\s*(?P<op>==|=)\s*(?P<version>[^\s=]+))?(?:=\S+)?")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def project_pins() -> dict[str, str]:
    """pyproject's dependencies as name -> exact version (each must be pinned with ==)."""
    pins = {}
    for line in pyproject()["project"]["dependencies"]:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"pyproject.toml: {line} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def env_files_named_by_rules() -> dict[Path, list[str]]:
    """Every env file of a `conda:` directive, with where it is named (Snakefile or rule file)."""
    named: dict[Path, list[str]] = {}
    for source in WORKFLOW_FILES:
        for match in CONDA_DIRECTIVE.finditer(source.read_text()):
            value = match["value"].strip()
            assert re.fullmatch(r'"[^"]+\.ya?ml"|\'[^\']+\.ya?ml\'', value), (
                f"{source.name}: conda: {value} is not a literal path of a YAML file, which this test can check")
            named.setdefault((source.parent / value[1:-1]).resolve(), []).append(source.name)
    return named


def env_pins(env: dict) -> tuple[dict[str, tuple[str, str]], str | None]:
    """An environment's packages as name -> (operator, version), pip and conda alike, and its python spec."""
    pins: dict[str, tuple[str, str]] = {}
    python = None
    for entry in env.get("dependencies") or []:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                if line.startswith("-"):  # pip options (--editable, --index-url) pin nothing
                    continue
                requirement = Requirement(line)
                specifiers = list(requirement.specifier)
                exact = len(specifiers) == 1
                pins[canonicalize_name(requirement.name)] = (
                    (specifiers[0].operator, specifiers[0].version) if exact else ("", str(requirement.specifier)))
            continue
        spec = CONDA_SPEC.fullmatch(str(entry).strip())
        assert spec, f"unreadable conda dependency {entry!r}"
        if spec["name"] == "python":
            python = spec["version"]
        elif spec["name"] != "pip":
            pins[canonicalize_name(spec["name"])] = (spec["op"] or "", spec["version"] or "")
    return pins, python


def pin_mismatches(env: dict, project: dict[str, str]) -> list[str]:
    """What differs between an environment and pyproject's pins; empty when they agree exactly."""
    pins, _ = env_pins(env)
    problems = []
    for name, version in project.items():
        if name not in pins:
            problems.append(f"{name}=={version} (pyproject.toml) is missing")
        elif pins[name][0] not in ("==", "=") or Version(pins[name][1]) != Version(version):
            found = "".join(pins[name]) or "no version"
            problems.append(f"{name}: pyproject.toml pins =={version}, the environment has {found}")
    for name, (op, version) in pins.items():
        if name not in project:
            problems.append(f"{name}{op}{version} is not a dependency in pyproject.toml")
    return problems


ENV_FILES = env_files_named_by_rules()


def test_the_rules_name_conda_environments():
    assert ENV_FILES, "no rule has a conda: directive"


@pytest.mark.parametrize("env_file", sorted(ENV_FILES), ids=lambda p: p.name)
def test_each_environment_exists_and_parses(env_file):
    assert env_file.is_file(), f"{env_file} is named by {ENV_FILES[env_file]} but does not exist"
    env = yaml.safe_load(env_file.read_text())
    assert isinstance(env, dict) and env.get("dependencies"), f"{env_file}: no dependencies"
    assert isinstance(env.get("channels"), list) and env["channels"], f"{env_file}: no channels"


@pytest.mark.parametrize("env_file", sorted(ENV_FILES), ids=lambda p: p.name)
def test_each_environment_pins_what_pyproject_pins(env_file):
    env = yaml.safe_load(env_file.read_text())
    problems = pin_mismatches(env, project_pins())
    assert not problems, f"{env_file.name} differs from pyproject.toml:\n" + "\n".join(problems)
    _, python = env_pins(env)
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert python and Version(python) in requires, f"{env_file.name}: python={python} outside requires-python {requires}"


def test_a_drifted_version_is_caught():
    project = project_pins()
    pip = [f"{name}=={version}" for name, version in project.items()]
    env = {"dependencies": ["python=3.11", "pip", {"pip": pip}]}
    assert pin_mismatches(env, project) == []
    pip[:] = [re.sub(r"^numpy==.*", "numpy==1.26.4", line) for line in pip if not line.startswith("keras==")]
    pip.append("requests")
    assert set(pin_mismatches(env, project)) == {
        f"numpy: pyproject.toml pins =={project['numpy']}, the environment has ==1.26.4",
        f"keras=={project['keras']} (pyproject.toml) is missing",
        "requests is not a dependency in pyproject.toml",
    }
    pip.remove("numpy==1.26.4")
    env["dependencies"].insert(0, f"numpy={project['numpy']}")  # a conda pin counts as well
    assert not any(problem.startswith("numpy") for problem in pin_mismatches(env, project))
