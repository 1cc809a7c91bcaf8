"""cfanalytics as a package: its public API, light imports, a sync API that works where a
loop runs (Jupyter), and no private name reached across a module line."""

from __future__ import annotations

import ast
import asyncio
import importlib
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import cfanalytics as cf
from cfanalytics.recording import RunPlan

from .conftest import CASSETTES, REPO, SimRig

PACKAGE = REPO / "cfanalytics"
LAYERS = ("client", "simulator", "events", "recording", "analysis", "plots", "report", "live")
LAYERS += ("widgets", "cli")
#: What ``import cfanalytics`` must not load: each costs start-up time or needs a display.
HEAVY = ("matplotlib", "ipywidgets", "vcr", "http.server", "pandas", "httpx", "pyarrow")


def _isort_style(name: str) -> tuple[int, str]:
    """ruff's order for ``__all__`` (RUF022): CONSTANTS, then Classes, then the rest."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_api_is_explicit_sorted_and_resolves() -> None:
    """The root and every layer list their public names, sorted, and each one exists."""
    for module in [cf, *(importlib.import_module(f"cfanalytics.{name}") for name in LAYERS)]:
        assert module.__all__ == sorted(module.__all__, key=_isort_style), module.__name__
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, (module.__name__, missing)


def test_lazy_names_match_their_type_checking_imports() -> None:
    """Every lazily loaded root name is imported for type checkers from the same package,
    and the root's __all__ is exactly its exceptions, its version and the lazy names."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    checked: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                if imp.module:  # `from . import analysis as analysis`: the subpackages
                    checked |= {alias.name: imp.module for alias in imp.names}
    lazy = {name: package for package, names in cf._LAZY.items() for name in names}
    assert checked == lazy
    eager = {n for n in cf.__all__ if n not in lazy}
    assert eager == {"__version__"} | {n for n in eager if n.endswith("Error")}
    for name, package in lazy.items():
        assert getattr(importlib.import_module(f"cfanalytics.{package}"), name) is getattr(cf, name)


def test_no_public_name_shadows_a_module() -> None:
    """``cfanalytics.failures`` is the function, and no layer has a public module by the name
    of one of its functions (the README's ``cfanalytics.analysis.ERROR_RULES`` resolves)."""
    for layer in LAYERS:
        folder = PACKAGE / layer
        public_modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
        public_modules |= {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
        module = importlib.import_module(f"cfanalytics.{layer}")
        assert not public_modules & set(module.__all__), layer
    assert callable(cf.failures) and callable(cf.replay)
    assert cf.analysis.ERROR_RULES


def test_import_cfanalytics_is_light() -> None:
    """``import cfanalytics`` loads neither matplotlib, ipywidgets, vcrpy, the simulator's
    HTTP server nor even pandas; the first use of a name loads what it needs."""
    probe = (
        "import sys, cfanalytics\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "cfanalytics.job_summary\n"
        "print('pandas' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "True False"]


def test_cli_help_loads_nothing_heavy() -> None:
    """``cfanalytics --help`` builds every subcommand's parser without the heavy modules."""
    probe = (
        "import sys\nfrom cfanalytics.cli import build_parser\nbuild_parser().format_help()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _in_a_running_loop(call: Callable[[], object]) -> object:
    """``call()`` made from inside a running event loop, as a Jupyter cell makes it."""

    async def cell() -> object:
        asyncio.get_running_loop()  # there is one: asyncio.run would refuse here
        return call()

    return asyncio.run(cell())


def test_record_replay_and_resume_work_inside_a_running_loop(
    tmp_path: Path, sim_rig: Callable[..., SimRig]
) -> None:
    """The sync API works where a loop already runs (Jupyter, IPython): a recording made
    there, its replay and a resume of an interrupted run give the same events as outside."""
    plan = RunPlan(asid=1, interval=15, max_polls=80)
    whole = _in_a_running_loop(
        lambda: cf.record(plan, cassette=tmp_path / "a.yaml", **sim_rig(seed=2).record_options())
    )
    again = _in_a_running_loop(lambda: cf.replay(tmp_path / "a.yaml"))
    pd.testing.assert_frame_equal(again.events, whole.events)  # type: ignore[union-attr]

    rig = sim_rig(seed=2)

    def interrupt(progress: object) -> None:
        if progress.polls >= 5:  # type: ignore[attr-defined]
            raise KeyboardInterrupt  # as a kernel interrupt would

    with pytest.raises(KeyboardInterrupt):
        _in_a_running_loop(
            lambda: cf.record(
                plan, cassette=tmp_path / "b.yaml", on_progress=interrupt, **rig.record_options()
            )
        )
    options = rig.record_options()
    resumed = _in_a_running_loop(lambda: cf.resume(tmp_path / "b.yaml", **options))
    assert resumed.progress.stop_reason == whole.progress.stop_reason  # type: ignore[union-attr]
    pd.testing.assert_frame_equal(cf.replay(tmp_path / "b.yaml").events, resumed.events)  # type: ignore[union-attr]


def test_sync_api_outside_a_loop_leaves_no_thread_behind() -> None:
    """From plain code the sync API runs in this thread (asyncio.run), as before."""
    before = threading.active_count()
    run = cf.replay(CASSETTES / "demo.yaml")
    assert len(run.events) and threading.active_count() == before


def test_an_error_inside_a_running_loop_is_raised_to_the_caller(tmp_path: Path) -> None:
    """A failure in the worker thread reaches the cell as itself, not wrapped."""
    with pytest.raises(cf.CassetteError, match=r"missing\.yaml"):
        _in_a_running_loop(lambda: cf.replay(tmp_path / "missing.yaml"))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(path: Path, node: ast.ImportFrom, name: str) -> bool:
    """Whether ``from <relative> import name`` names a module (``from . import _segments``)."""
    folder = path.parent
    for _ in range(node.level - 1):
        folder = folder.parent
    folder = folder.joinpath(*(node.module or "").split(".")) if node.module else folder
    return (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists()


def _private_reaches(path: Path) -> list[str]:
    """Imports of another module's ``_private`` names, of a third party's private modules,
    and ``module._name`` uses of our own modules' private names."""
    tree = ast.parse(path.read_text())
    ours: set[str] = set()  # names bound to our own modules
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        if node.level == 0 and any(map(_is_private, (node.module or "").split("."))):
            found.append(f"{path}:{node.lineno} imports from {node.module}")
        for alias in node.names:
            if node.level and _is_module(path, node, alias.name):
                ours.add(alias.asname or alias.name)
            elif _is_private(alias.name):
                found.append(f"{path}:{node.lineno} imports {alias.name}")
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        if node.value.id in ours and _is_private(node.attr):
            found.append(f"{path}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_private_name_crosses_a_module_line() -> None:
    """Shared helpers have public names (in private modules); nothing reaches for another
    module's ``_private`` names. (import-linter holds private modules to their package.)"""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _private_reaches(path)]
    assert not found, "\n".join(found)


def test_readme_exception_tree_lists_every_exception() -> None:
    """The README's tree names every exception class, each under its real parent."""
    import cfanalytics.exceptions as exceptions

    readme = (REPO / "README.md").read_text()
    block = readme.split("Every error derives from", 1)[1].split("```", 2)[1]
    classes = {
        name: cls
        for name, cls in vars(exceptions).items()
        if isinstance(cls, type) and issubclass(cls, exceptions.CfAnalyticsError)
    }
    named = set(re.findall(r"\b[A-Z]\w*Error\b", block))
    assert named == set(classes)
    parents: dict[int, str] = {}  # the class last drawn at each depth of the tree
    node = "CfAnalyticsError"
    for line in block.strip().splitlines()[1:]:
        drawn = re.match(r"([│ ]*)[├└]── ([A-Z]\w*Error)", line)
        if drawn:  # a node of the tree: its parent is the node one level up
            depth = len(drawn.group(1)) // 4 + 1
            node, parents[depth] = drawn.group(2), drawn.group(2)
            parent = parents.get(depth - 1, "CfAnalyticsError")
            assert classes[node].__bases__[0].__name__ == parent, node
        # Classes listed beside a node (or on its continuation lines) are its children.
        for child in re.findall(r"\b[A-Z]\w*Error\b", line[drawn.end() if drawn else 0 :]):
            assert classes[child].__bases__[0].__name__ == node, child


def _resolve(dotted: str) -> object:
    """The module or attribute a dotted ``cfanalytics...`` path names."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def test_every_path_the_docs_name_exists() -> None:
    """Each ``cfanalytics.…`` path in the README and the notebooks names a real module or
    name, so the docs cannot drift from the layout (the table of 0.1 paths aside)."""
    readme = re.sub(
        r"## Moving from 0\.1.*?(?=\n## )", "", (REPO / "README.md").read_text(), flags=re.S
    )
    texts = [readme, *(p.read_text() for p in sorted((REPO / "notebooks").glob("*.ipynb")))]
    paths = {p for text in texts for p in re.findall(r"cfanalytics(?:\.\w+)+", text)}
    assert len(paths) > 5
    broken = []
    for path in sorted(paths):
        try:
            _resolve(path)
        except (ImportError, AttributeError):
            broken.append(path)
    assert not broken


#: The 0.1 modules that moved, and their public names (their ``__all__`` in 0.1.0).
MOVED_IN_0_2 = {
    "cassette": ["FILTERED", "Cassette", "CassetteWriter", "Interaction", "load_cassette"],
    "eventlog": ["EventLog", "load_events"],
    "recorder": ["AsyncRecordingTransport", "Recorder", "RecordingTransport", "new_run_id"],
    "replay": [
        "FAILURES_KEY",
        "RecordedFailure",
        "ReplayTransport",
        "RequestKey",
        "ResumeTransport",
        "in_recorded_order",
        "replay_source",
        "request_key",
    ],
    "runner": ["QUEUEABLE", "RolloutProgress", "RolloutRunner", "no_sleep"],
    "samples": ["SAMPLES", "Sample", "make_cassette"],
    "scan": ["MIN_SECRET_LENGTH", "SCANNED_SUFFIXES", "SKIPPED_DIRS", "Finding", "scan_paths"],
    "session": [
        "RecordedRun",
        "Recording",
        "RunPlan",
        "arecord",
        "areplay",
        "aresume",
        "events_from_cassette",
        "load_source",
        "record",
        "replay",
        "replay_client",
        "resume",
    ],
    "summary": ["OUTCOMES", "SUMMARY_SCHEMA", "job_summary"],
    "timing": ["ETA_ERROR_SCHEMA", "error_by", "eta_errors", "job_eta_metrics", "poll_interval_s"],
    "rollout": ["rollout_metrics"],
    "completion": ["COMPLETION_SCHEMA", "completion_curve", "time_to_fraction"],
    "fleet": [
        "FLEET_STATES",
        "FLEET_STATES_SCHEMA",
        "INTERVAL_SCHEMA",
        "PROGRESS_SCHEMA",
        "STRAGGLER_SCHEMA",
        "fleet_states",
        "progress_curves",
        "state_intervals",
        "stragglers",
    ],
    "timeline": ["SNAPSHOT_SCHEMA", "FleetTimeline", "fleet_at"],
    "failures": [
        "API_ERROR_SCHEMA",
        "ERROR_CLASSES",
        "ERROR_RULES",
        "FAILURE_SCHEMA",
        "api_errors",
        "classify_error",
        "failure_rates",
        "failures",
        "first_failure",
        "other_endings",
        "polling_gaps",
    ],
    "queueing": ["JOB_COLUMNS", "QueueController", "QueueOutcome"],
    "monitor": ["FleetHeader", "Monitor", "Throttle"],
    "simulator.app": ["SimResponse", "Simulator"],
    "simulator.clock": ["Clock", "ManualClock", "ScaledClock"],
    "simulator.model": ["ApplicationError", "Job", "Model", "Snapshot", "State", "Version"],
    "simulator.scenario": [
        "FAILURE_CAUSES",
        "FAULT_KINDS",
        "DiffLock",
        "Hotspot",
        "Image",
        "Location",
        "RateLimit",
        "Rollout",
        "Scenario",
        "default_scenario",
    ],
    "simulator.server": ["SimServer", "serve"],
    "simulator.transport": ["SimTransport"],
}


@pytest.mark.parametrize("old", sorted(MOVED_IN_0_2))
def test_every_0_1_import_still_works_with_a_warning(old: str) -> None:
    """Code written for 0.1 (``from cfanalytics.summary import job_summary``) runs on, with a
    FutureWarning naming the new home; the object is the one the new path gives."""
    module = importlib.import_module(f"cfanalytics.{old}")
    for name in MOVED_IN_0_2[old]:
        with pytest.warns(FutureWarning, match=rf"cfanalytics\.{old} is cfanalytics\.\w+ since"):
            value = getattr(module, name)
        assert value is getattr(importlib.import_module(module.__moved_to__), name)


def test_old_paths_leave_the_new_api_alone() -> None:
    """``import cfanalytics.replay`` (a 0.1 module) does not rebind ``cf.replay``, the function;
    old paths import nothing heavy until a name is read."""
    probe = (
        "import sys, cfanalytics, cfanalytics.replay, cfanalytics.failures\n"
        "print('pandas' in sys.modules)\n"
        "print(callable(cfanalytics.replay), callable(cfanalytics.failures))\n"
        "import pickle, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from cfanalytics.session import RunPlan\n"
        "print(pickle.loads(pickle.dumps(RunPlan(asid=1))) == RunPlan(asid=1))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "True"]
