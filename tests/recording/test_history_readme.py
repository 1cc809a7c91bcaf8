"""The README's History examples run as written, on the shipped cassettes."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ..conftest import CASSETTES, REPO


def readme_history_code() -> str:
    """The Python blocks of the README's History section, one after another."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"\n## History.*?(?=\n## )", readme, flags=re.S)
    assert section is not None
    blocks = re.findall(r"```python\n(.*?)```", section.group(0), flags=re.S)
    assert len(blocks) >= 3  # the store, across rollouts, comparing two
    return "\n".join(blocks)


def test_the_readme_history_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Add both cassettes, read a rollout back, and let DuckDB and Dask count its rows."""
    pytest.importorskip("dask.dataframe")
    shutil.copytree(CASSETTES, tmp_path / "cassettes")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(readme_history_code(), "README.md", "exec"), scope)
    counts = (
        scope["duckdb"]
        .sql(  # type: ignore[attr-defined]
            "SELECT rollout, count(*) AS n FROM read_parquet('history/**/*.parquet', "
            "hive_partitioning = true) GROUP BY ALL"
        )
        .df()
    )
    events = scope["events"]
    assert int(counts.set_index("rollout").loc["1/886580", "n"]) == len(events)  # type: ignore[arg-type]
    assert os.path.isdir("history/asid=1")
    assert len(scope["history"].rollouts()) == 3  # type: ignore[attr-defined]
