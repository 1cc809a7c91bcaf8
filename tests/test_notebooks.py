"""The shipped notebooks: thin, committed without outputs, and they run from top to bottom."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cfanalytics import (
    HistoryStore,
    compare,
    events_from_cassette,
    machine_history,
    rollout_metrics,
    rollouts,
)

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
LIVE = NOTEBOOKS / "live_queue.ipynb"
#: Notebooks that read a recording and show plots (the live one shows widgets instead).
STATIC = [p for p in ALL if p != LIVE]
CASSETTES = NOTEBOOKS.parent / "cassettes"
HISTORY = NOTEBOOKS / "rollout_history.ipynb"


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


def execute(
    notebook: nbformat.NotebookNode, *, folder: Path = NOTEBOOKS, **parameters: object
) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel in ``folder``; parameters as papermill injects them."""
    if parameters:
        lines = [f"{name} = {value!r}" for name, value in parameters.items()]
        cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected"]})
        notebook.cells.insert(parameters_cell(notebook) + 1, cell)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": folder}}
    )
    return client.execute()


def test_there_are_notebooks() -> None:
    """The timing, postmortem, history and live notebooks ship."""
    names = {p.name for p in ALL}
    expected = {"rollout_timing.ipynb", "failed_install_postmortem.ipynb", HISTORY.name, LIVE.name}
    assert expected <= names


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
@pytest.mark.parametrize("path", STATIC, ids=[p.name for p in STATIC])
def test_runs_top_to_bottom(path: Path) -> None:
    """Every cell runs without an error, and the plots come out as pictures."""
    ran = execute(read(path))
    outputs = [o for c in ran.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.timeout(600)
def test_timing_notebook_takes_another_source() -> None:
    """The parameters cell selects the source and its rollout: they give their own numbers."""
    notebook = read(NOTEBOOKS / "rollout_timing.ipynb")
    troubled = events_from_cassette(CASSETTES / "troubled.yaml")
    idle = rollouts(troubled)[1]
    ran = execute(notebook, source=str(CASSETTES / "troubled.yaml"), rollout=idle)
    first = next(c for c in ran.cells if c.cell_type == "code" and "rollout_metrics" in c.source)
    shown = first.outputs[0]["data"]["text/plain"].split()
    expected = rollout_metrics(troubled, rollout=idle)
    assert shown[shown.index("rollout") + 1] == idle
    assert shown[shown.index("n_jobs") + 1] == str(expected["n_jobs"])
    assert (
        expected["n_jobs"]
        != rollout_metrics(events_from_cassette(CASSETTES / "demo.yaml"))["n_jobs"]
    )


@pytest.mark.timeout(600)
def test_postmortem_notebook_shows_the_diff_lock_first() -> None:
    """The troubled source: the refusals cell names diff 218599 and its remedy, before the
    error classes of the install failures."""
    ran = execute(read(NOTEBOOKS / "failed_install_postmortem.ipynb"))
    code = [c for c in ran.cells if c.cell_type == "code"]
    refused = next(i for i, c in enumerate(code) if "refusal_reasons" in c.source)
    classes = next(i for i, c in enumerate(code) if "error_class" in c.source)
    shown = code[refused].outputs[0]["data"]["text/plain"]
    assert refused < classes
    assert "image locked by diff 218599" in shown and "reject or finish diff 218599" in shown


#: Appended to the history notebook: what it studied, as plain text.
STUDIED = """\
print(h.path)
print(rollout, previous, metric)
print(len(table), len(diff[diff["verdict"].isin(["worse", "better"])]))
print(int(machines["repeat_offender"].sum()))
"""


def studied(notebook: nbformat.NotebookNode, **parameters: object) -> list[str]:
    """Run the history notebook with ``parameters`` and :data:`STUDIED` appended; its lines."""
    notebook.cells.append(nbformat.v4.new_code_cell(STUDIED))
    before = sorted(NOTEBOOKS.iterdir())
    ran = execute(notebook, **parameters)
    outputs = [o for c in ran.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # by location, headlines
    assert sorted(NOTEBOOKS.iterdir()) == before  # nothing written next to the notebooks
    return ran.cells[-1].outputs[0]["text"].splitlines()


@pytest.mark.timeout(600)
def test_history_notebook_studies_the_chosen_rollout(tmp_path: Path) -> None:
    """The parameters cell picks the recordings (here a list), the store, the rollout, the
    metric and the repeat-offender rule: the store is built where asked, and the comparison
    is the chosen rollout against the one before, as the two recordings alone give it."""
    weeks = sorted((CASSETTES / "history").glob("week-*.yaml"))
    before, chosen = (events_from_cassette(w) for w in weeks[1:3])
    store = tmp_path / "store"
    lines = studied(
        read(HISTORY),
        sources=[str(w) for w in weeks],
        store=str(store),
        rollout=rollouts(chosen)[0],
        metric="eta_mae_s",
        k=1,
        n=1,
    )
    assert lines[0] == str(store)
    assert lines[1].split() == [rollouts(chosen)[0], rollouts(before)[0], "eta_mae_s"]
    diff = compare(before, chosen)
    moved = int(diff["verdict"].isin(["worse", "better"]).sum())
    assert lines[2].split() == ["6", str(moved)]
    assert HistoryStore(store).catalog()["rollout"].nunique() == 6
    expected = machine_history(store, k=1, n=1)["repeat_offender"].sum()
    assert lines[3] == str(expected) != str(machine_history(store)["repeat_offender"].sum())


@pytest.mark.timeout(600)
def test_history_notebook_leaves_no_store_behind() -> None:
    """By default the store is a temporary folder, the latest rollout is studied against the
    one before, and the folder is gone once the kernel stops."""
    lines = studied(read(HISTORY))
    latest, previous = (
        rollouts(events_from_cassette(CASSETTES / "history" / f"week-{w}.yaml"))[0] for w in (6, 5)
    )
    assert lines[1].split() == [latest, previous, "install_p50_s"]
    assert not Path(lines[0]).is_relative_to(NOTEBOOKS.parent)
    assert not Path(lines[0]).exists()


#: Appended to the live notebook: press the buttons as a user would, in the same kernel.
DRIVE = """\
await panel.tasks.idle()
panel.select_all.click()
panel.queue_button.click()
panel.confirm_button.click()
await panel.tasks.idle()
await monitor.tasks.idle()
print(panel.question.value)
print(monitor.status.value)
print(scrubber.summary.value, len(scrubber.timeline))
print(sum(o.ok for o in panel.controller.outcomes.values()), len(panel.controller.outcomes))
live.close()
print(live.cassette.exists(), live.cassette)
"""


@pytest.mark.timeout(600)
def test_live_notebook_queues_watches_and_scrubs(tmp_path: Path) -> None:
    """In a real kernel: the widgets show, a queued rollout runs to its end on the simulator,
    the scrubber reloads with every poll, and the session's cassette is written."""
    notebook = read(LIVE)
    notebook.cells.append(nbformat.v4.new_code_cell(DRIVE))
    ran = execute(notebook, folder=tmp_path, speed=120.0, out_dir=str(tmp_path / "live-out"))
    outputs = [o for c in ran.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 3  # panel, monitor, scrubber
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "on ASID 1:" in printed and "Finished: every queued job ended" in printed
    queued, tried = map(int, printed.splitlines()[-2].split())
    assert queued == tried > 10
    polls = int(printed.splitlines()[-3].rsplit(" ", 1)[1])
    assert polls > 5 and f"Poll {polls} of {polls}" in printed
    cassette = Path(printed.splitlines()[-1].split(" ", 1)[1])
    assert cassette.is_file() and cassette.is_relative_to(tmp_path)
    assert not (NOTEBOOKS / "live-out").exists()  # nothing written next to the notebooks


KERNEL_CELLS = [
    """import asyncio
from datetime import UTC, datetime

import cfanalytics as cf
from cfanalytics.simulator import ManualClock, SimTransport, Simulator, default_scenario

asyncio.get_running_loop()  # the kernel runs a loop here: asyncio.run would refuse""",
    """def rig():
    scenario = default_scenario()
    clock = ManualClock(scenario.start)
    sim = Simulator(scenario, seed=2, clock=clock, access_key="notebook-key", secret_key="s" * 24)
    async def sleep(seconds):
        clock.advance(seconds)
    transport = SimTransport(sim, sleep=clock.sleep, async_sleep=sleep)
    return {"base_url": "http://sim.localhost", "access_key": "notebook-key",
            "secret_key": "s" * 24, "transport": transport, "sleep": sleep,
            "clock": lambda: datetime.fromtimestamp(clock.now(), UTC)}
plan = cf.RunPlan(asid=1, interval=15, max_polls=80)""",
    """whole = cf.record(plan, cassette="whole.yaml", **rig())
assert cf.replay("whole.yaml").events.equals(whole.events)""",
    """def stop(progress):
    if progress.polls >= 5:
        raise KeyboardInterrupt
api = rig()  # one simulator for the run and its resume, as the real API would be
try:
    cf.record(plan, cassette="cut.yaml", on_progress=stop, **api)
except KeyboardInterrupt:
    pass
resumed = cf.resume("cut.yaml", **api)
assert resumed.progress.stop_reason == whole.progress.stop_reason
print(len(whole.events), len(resumed.events), resumed.progress.polls, whole.progress.polls)""",
]


def test_sync_api_in_a_real_kernel(tmp_path: Path) -> None:
    """record, replay and resume, called in a Jupyter kernel (whose event loop is running),
    record, replay to the same events, and carry an interrupted run to its end."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS])
    ran = execute(notebook, folder=tmp_path)
    printed = ran.cells[-1].outputs[0]["text"].split()
    # Seed 2 fails Singapore's mirror job: the run stops by itself once only its machine
    # jobs are left (stranded), before the 80 polls of the plan; the resume stops there too.
    assert int(printed[0]) > 100 and printed[1] == printed[0] and printed[2] == printed[3]
    assert int(printed[2]) < 80
    assert (tmp_path / "whole.yaml").exists() and (tmp_path / "cut.yaml").exists()
