"""Job and image version ids: derived per seed and scenario, stable, or exactly as set.

Clanforge's ids are global, so two recordings must not name the same jobs: unless a scenario
sets ``first_jobid`` / ``first_imageversionid``, the simulator derives them from a hash of the
seed and the scenario's settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import pytest

import cfanalytics
from cfanalytics.recording._samples import SAMPLES
from cfanalytics.simulator import (
    ApplicationError,
    Hotspot,
    Model,
    Rollout,
    Scenario,
    State,
    default_scenario,
)

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"


def run(scenario: Scenario, seed: int) -> Model:
    """A model that queued every job it could at the start, then ran two simulated hours."""
    model = Model(scenario, seed=seed)
    for job in model.listed():
        with contextlib.suppress(ApplicationError):  # image 4102 is locked by a diff
            model.queue(job.jobid, mirroring=job.is_mirror)
    model.advance(model.now + 7200)
    return model


def ids(model: Model) -> tuple[set[int], set[int], set[int]]:
    """Job ids, sub-ids (versionmirrorid / machinejobid) and image version ids."""
    jobs = model.jobs.values()
    return {j.jobid for j in jobs}, {j.subid for j in jobs}, set(model.versions)


def assert_disjoint(a: Model, b: Model) -> None:
    for ours, theirs in zip(ids(a), ids(b), strict=True):
        assert ours and theirs and not ours & theirs


def troubled() -> Scenario:
    """Another scenario: a second image rolls out, other hotspots, flapping ETAs."""
    return dataclasses.replace(
        default_scenario(),
        rollouts=(Rollout(4101), Rollout(4102)),
        hotspots=(Hotspot("Singapore", "disk_space", 0.3),),
        eta_noise_sigma=0.45,
    )


def test_two_seeds_give_disjoint_ids() -> None:
    """Same scenario, seeds 0 and 1: no job id, sub-id or version id in common."""
    assert_disjoint(run(default_scenario(), 0), run(default_scenario(), 1))


def test_two_scenarios_give_disjoint_ids() -> None:
    """Same seed, demo and troubled scenarios: no id in common."""
    assert_disjoint(run(default_scenario(), 1), run(troubled(), 1))


def test_shipped_samples_give_disjoint_ids() -> None:
    """The two shipped samples, each with its own scenario and seed, name other jobs."""
    demo, bad = SAMPLES["demo"], SAMPLES["troubled"]
    assert_disjoint(run(demo.scenario(), demo.seed), run(bad.scenario(), bad.seed))


def test_shipped_cassettes_name_other_jobs_and_versions() -> None:
    """The recorded cassettes: disjoint job ids and target image version ids."""
    demo = cfanalytics.load_source(CASSETTES / "demo.yaml")
    bad = cfanalytics.load_source(CASSETTES / "troubled.yaml")
    for column in ("jobid", "target_imageversionid"):
        ours, theirs = set(demo[column].dropna()), set(bad[column].dropna())
        assert ours and theirs and not ours & theirs, column


def test_same_seed_and_scenario_give_the_same_ids_and_run() -> None:
    """Derivation is deterministic: two models of one scenario and seed agree in full."""
    first, again = run(troubled(), 5), run(troubled(), 5)
    assert ids(first) == ids(again)
    assert first.truth() == again.truth()
    equal = Scenario.from_dict({"start": 1793610000})  # int start, equal to the float default
    assert equal == default_scenario()
    assert equal.first_ids(3) == default_scenario().first_ids(3)


def test_any_setting_changes_the_derived_ids() -> None:
    """One setting changed (not an id): other job ids and other version ids."""
    base = default_scenario().first_ids(0)
    changed = dataclasses.replace(default_scenario(), machine_failure_rate=0.03).first_ids(0)
    assert changed[0] != base[0] and changed[1] != base[1]


@pytest.mark.parametrize("seed", range(200))
def test_derived_ids_are_realistic(seed: int) -> None:
    """7-digit job ids and sub-ids; 6-digit version ids whose block holds no diff id."""
    scenario = default_scenario()
    first_jobid, first_versionid = scenario.first_ids(seed)
    assert first_jobid >= 1_000_000 and first_jobid + 1_000_000 <= 10_000_000
    assert first_versionid >= 100_000 and first_versionid + 10_000 <= 1_000_000
    diffids = {d for image in scenario.images for d in image.diffids}
    diffids |= {lock.diffid for lock in scenario.diff_locks}
    assert not any(first_versionid <= d < first_versionid + 10_000 for d in diffids)


def test_explicit_ids_are_honoured() -> None:
    """Set ids are used exactly, from Scenario(...) and from a scenario file's values."""
    scenario = Scenario(first_jobid=7340001, first_imageversionid=218700)
    model = Model(scenario, seed=9)
    assert (model.first_jobid, model.first_imageversionid) == (7340001, 218700)
    jobs = sorted(model.jobs.values(), key=lambda j: j.jobid)
    assert [j.jobid for j in jobs] == list(range(7340001, 7340001 + len(jobs)))
    assert jobs[0].subid == 7840001 and set(model.versions) == {218700}
    loaded = Scenario.from_dict({"first_jobid": 1234567})
    assert loaded.first_ids(0)[0] == loaded.first_ids(1)[0] == 1234567
    assert loaded.first_ids(0)[1] != loaded.first_ids(1)[1]  # the other one is still derived
    assert min(Model(loaded, seed=4).jobs) == 1234567


@pytest.mark.parametrize("bad", [0, -5, "7340001", 7340001.0, True])
def test_bad_explicit_ids_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="first_jobid"):
        Scenario(first_jobid=bad)
    with pytest.raises(ValueError, match="first_imageversionid"):
        Scenario.from_dict({"first_imageversionid": bad})


def test_ids_are_labels_only() -> None:
    """Explicit or derived ids: the same run, job for job, only the ids differ."""
    scenario = troubled()
    derived = run(scenario, 14)
    explicit = run(dataclasses.replace(scenario, first_jobid=1000001, first_imageversionid=500), 14)
    assert any(j.state is State.FAILED for j in derived.jobs.values())

    def relabelled(model: Model) -> list[dict[str, Any]]:
        rows = []
        for row in model.truth():
            vid = row.pop("imageversionid")
            row["version"] = vid - model.first_imageversionid
            row["jobid"] -= model.first_jobid
            if row["error"]:
                row["error"] = row["error"].replace(f"imageversionid {vid}", "imageversionid V")
            rows.append(row)
        return rows

    assert relabelled(derived) == relabelled(explicit)
