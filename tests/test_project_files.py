"""The files that describe the project agree with pyproject.toml: CI's lowest-versions
constraints, the conda environment, the licence."""

from __future__ import annotations

import tomllib
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import REPO

PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: conda-forge's name where it is not PyPI's.
CONDA_NAMES = {"matplotlib": "matplotlib-base", "duckdb": "python-duckdb"}
CONDA_NAMES |= {"playwright": "playwright-python"}


def requirements(*groups: str) -> dict[str, SpecifierSet]:
    """pyproject's requirements of ``groups`` (``""``: the runtime ones) by canonical name."""
    found: dict[str, SpecifierSet] = {}
    for group in groups:
        lines = PYPROJECT["optional-dependencies"][group] if group else PYPROJECT["dependencies"]
        for line in lines:
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement.specifier
    return found


def lower_bound(specifier: SpecifierSet) -> Version:
    (bound,) = [Version(s.version) for s in specifier if s.operator == ">="]
    return bound


def test_lowest_constraints_pin_each_runtime_dependency_at_its_lower_bound() -> None:
    """.ci/lowest.txt pins every runtime dependency and nothing else, each to a release of its
    lower bound's series (vcrpy>=9.4 to 9.4.2, the first 9.4 published)."""
    pins = {}
    for line in (REPO / ".ci" / "lowest.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    runtime = requirements("")
    assert set(pins) == set(runtime)
    for name, pin in pins.items():
        bound = lower_bound(runtime[name])
        assert pin in runtime[name] and pin.release[: len(bound.release)] == bound.release, name


def test_the_conda_environment_asks_what_pyproject_asks() -> None:
    """environment.yml lists every requirement (runtime, test, notebook, dev) under its
    conda-forge name with the same bounds, and installs cfanalytics with pip."""
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    listed: dict[str, SpecifierSet] = {}
    pip: list[str] = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            pip += entry["pip"]
            continue
        requirement = Requirement(entry)
        listed[requirement.name] = requirement.specifier
    assert pip == ["-e ."]
    assert listed.pop("python") == SpecifierSet(PYPROJECT["requires-python"])
    assert listed.pop("pip") == SpecifierSet()
    wanted = {
        CONDA_NAMES.get(name, name): specifier
        for name, specifier in requirements("", "test", "notebook", "dev").items()
    }
    assert listed == wanted


def test_the_licence_file_is_the_licence_pyproject_names() -> None:
    assert PYPROJECT["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
