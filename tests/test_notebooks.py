"""The shipped notebooks: thin, committed without outputs, and they run from top to bottom."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cfanalytics import events_from_cassette, rollout_metrics

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
CASSETTES = NOTEBOOKS.parent / "cassettes"


def read(path: Path) -> nbformat.NotebookNode:
    """A notebook, validated against the format's schema."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    return notebook


def parameters_cell(notebook: nbformat.NotebookNode) -> int:
    """Index of the cell tagged ``parameters`` (papermill's convention)."""
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    return tagged[0]


def execute(notebook: nbformat.NotebookNode, **parameters: object) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel in the notebooks folder; parameters as papermill injects."""
    if parameters:
        lines = [f"{name} = {value!r}" for name, value in parameters.items()]
        cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected"]})
        notebook.cells.insert(parameters_cell(notebook) + 1, cell)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    )
    return client.execute()


def test_there_are_notebooks() -> None:
    """The timing notebook ships."""
    assert NOTEBOOKS / "rollout_timing.ipynb" in ALL


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_committed_without_outputs(path: Path) -> None:
    """No outputs or execution counts are committed: they go stale and can leak data."""
    for cell in read(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_thin(path: Path) -> None:
    """Notebooks call the library; they define nothing worth testing."""
    notebook = read(path)
    parameters_cell(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source and "class " not in cell.source
            assert len(cell.source.splitlines()) <= 12


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_runs_top_to_bottom(path: Path) -> None:
    """Every cell runs without an error, and the plots come out as pictures."""
    ran = execute(read(path))
    outputs = [o for c in ran.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.timeout(600)
def test_timing_notebook_takes_another_source() -> None:
    """The parameters cell selects the source: the troubled cassette gives its own numbers."""
    notebook = read(NOTEBOOKS / "rollout_timing.ipynb")
    ran = execute(notebook, source=str(CASSETTES / "troubled.yaml"))
    first = next(c for c in ran.cells if c.cell_type == "code" and "rollout_metrics" in c.source)
    shown = first.outputs[0]["data"]["text/plain"].split()
    expected = rollout_metrics(events_from_cassette(CASSETTES / "troubled.yaml"))
    assert shown[shown.index("n_jobs") + 1] == str(expected["n_jobs"])
    assert (
        expected["n_jobs"]
        != rollout_metrics(events_from_cassette(CASSETTES / "demo.yaml"))["n_jobs"]
    )
