"""Benchmark: the forecast against Clanforge's ETA and the linear rule, on many fleets.

Usage: ``python bench/bench_forecast.py [--scenarios all|NAME,...] [--every 1]``

Each scenario is a rollout recorded from the embedded simulator (in-process, a manual
clock), with fleets, image sizes, speeds, noise and poll intervals the shipped cassettes
and the tests never use, plus the shipped ``demo`` and ``troubled`` cassettes. Each is
backtested (:func:`cfanalytics.backtest`: at every ``--every``-th poll, a forecast from the
data so far) and scored:

- the forecast's MAE as a ratio of ``jobeta``'s and of the linear rule's (goals: at most
  0.6 and 0.8; the baselines are measured in the same run);
- the share of observations inside the 80 % interval (goal: 75 % to 85 %);
- the rollout's time to 90 % completed, forecast when 25 % had completed, against the
  actual (goal: within 15 %, and inside its interval).

Every scenario's figures are printed, the ones that miss included.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cfanalytics import backtest, load_source
from cfanalytics.recording import RunPlan, Sample, record_sample
from cfanalytics.simulator import Image, Location, Rollout, Scenario, default_scenario

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"


def _fleet(**changes: object) -> Callable[[], Scenario]:
    return lambda: dataclasses.replace(default_scenario(), **changes)  # type: ignore[arg-type]


def _big() -> Scenario:
    locations = tuple(
        Location(
            f"Region{i}",
            f"r{i}",
            f"mirror-r{i}-01",
            18 + 3 * i,
            6 + i,
            70.0 + 15 * i,
            50.0,
            regionid=40 + i,
        )
        for i in range(5)
    )
    image = Image(5101, "Big", "/games/big/server", 7000.0, (300001,))
    return dataclasses.replace(
        default_scenario(),
        asid=7,
        locations=locations,
        images=(image,),
        rollouts=(Rollout(5101),),
        hotspots=(),
        diff_locks=(),
    )


def _small() -> Scenario:
    locations = (
        Location("Sydney", "syd", "mirror-syd-01", 6, 3, 40.0, 30.0, regionid=51),
        Location("Tokyo", "tyo", "mirror-tyo-01", 5, 5, 80.0, 50.0, regionid=52),
    )
    image = Image(6101, "Small", "/games/small/server", 900.0, (400001,))
    return dataclasses.replace(
        default_scenario(),
        asid=3,
        locations=locations,
        images=(image,),
        rollouts=(Rollout(6101),),
        hotspots=(),
        diff_locks=(),
        extract_mbps=30.0,
    )


def _plan(asid: int, interval: float, hours: float = 2.0) -> RunPlan:
    return RunPlan(asid=asid, interval=interval, max_duration=hours * 3600.0)


#: The scenarios recorded here: (what it varies, how it is recorded).
SCENARIOS: dict[str, Sample] = {
    "other-seed": Sample(
        "the default fleet, another seed, 30 s polls",
        default_scenario,
        seed=21,
        plan=_plan(1, 30.0),
    ),
    "big": Sample(
        "5 regions, 121 machines, a 7 GB image, 30 s polls", _big, seed=3, plan=_plan(7, 30.0, 4.0)
    ),
    "small": Sample(
        "2 locations, 11 machines, a 0.9 GB image", _small, seed=4, plan=_plan(3, 15.0)
    ),
    "noisy": Sample(
        "run times and ETAs twice as noisy, download half the progress",
        _fleet(asid=4, duration_sigma=0.5, eta_noise_sigma=0.4, download_progress_share=0.5),
        seed=5,
        plan=_plan(4, 15.0),
    ),
    "slow-extract": Sample(
        "download 90 % of the progress, then a slow extract",
        _fleet(asid=5, download_progress_share=0.9, extract_mbps=6.0, machine_disk_mbps=25.0),
        seed=6,
        plan=_plan(5, 20.0),
    ),
    "fast-links": Sample(
        "links three times faster, 10 s polls",
        _fleet(asid=6, machine_disk_mbps=36.0, extract_mbps=40.0),
        seed=8,
        plan=_plan(6, 10.0),
    ),
}
SHIPPED = ("demo", "troubled")


def _source(name: str, folder: Path) -> Path:
    if name in SHIPPED:
        return CASSETTES / f"{name}.yaml"
    path = folder / f"{name}.yaml"
    record_sample(SCENARIOS[name], path, name=name)
    return path


def _score(name: str, path: Path, every: int) -> dict[str, object]:
    started = time.perf_counter()
    found = backtest(load_source(path), every=every)
    figures = found.summary()
    rollout = next((r for r in figures["rollouts"] if r["time_to_90_s"] is not None), None)
    return {"name": name, "seconds": time.perf_counter() - started, **figures, "rollout": rollout}


def _ratio(a: object, b: object) -> float:
    return float(a) / float(b) if a is not None and b else float("nan")  # type: ignore[arg-type]


def _print(row: dict[str, object]) -> tuple[bool, bool, bool, bool | None]:
    forecast, eta, linear = row["forecast"], row["jobeta"], row["linear"]
    assert isinstance(forecast, dict) and isinstance(eta, dict) and isinstance(linear, dict)
    vs_eta, vs_linear = (
        _ratio(forecast["mae_s"], eta["mae_s"]),
        _ratio(forecast["mae_s"], linear["mae_s"]),
    )
    coverage = forecast["coverage_80"] or float("nan")
    print(
        f"  {row['name']:13} {row['jobs']:4} jobs {row['observations']:6} obs "
        f"MAE forecast {forecast['mae_s']:7.1f} s  jobeta {eta['mae_s']:7.1f}  linear "
        f"{linear['mae_s']:7.1f}  ratio {vs_eta:4.2f}x jobeta {vs_linear:4.2f}x linear  "
        f"coverage {100 * coverage:3.0f} %  ({row['seconds']:.1f} s)"
    )
    rollout = row["rollout"]
    rollout_ok: bool | None = None
    if isinstance(rollout, dict):
        actual, said = rollout["time_to_90_s"], rollout["forecast_at_25_percent_s"]
        low, high = rollout["interval_at_25_percent_s"] or (None, None)
        off = abs(_ratio(said, actual) - 1) if said is not None else float("nan")
        inside = said is not None and (low or 0) <= actual <= (high or float("inf"))
        rollout_ok = off <= 0.15 and inside
        print(
            f"  {'':13} time to 90 %: {actual:.0f} s; forecast at 25 %: "
            f"{'-' if said is None else f'{said:.0f}'} s (80 %: {low or 0:.0f} to "
            f"{'never' if high is None else f'{high:.0f}'}): off by {100 * off:.0f} %, "
            f"{'inside' if inside else 'outside'} its interval"
        )
    return vs_eta <= 0.6, vs_linear <= 0.8, 0.75 <= coverage <= 0.85, rollout_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="all", help="'all' or names, comma-separated")
    parser.add_argument("--every", type=int, default=1, help="forecast at every N-th poll")
    args = parser.parse_args()
    names = [*SHIPPED, *SCENARIOS] if args.scenarios == "all" else args.scenarios.split(",")
    print(f"forecast backtest, every {args.every} poll(s): {', '.join(names)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-forecast-") as folder:
        for name in names:
            row = _score(name, _source(name, Path(folder)), args.every)
            results.append(_print(row))
    judged = [r[3] for r in results if r[3] is not None]
    print(
        f"goals met: MAE <= 0.6x jobeta in {sum(r[0] for r in results)} of {len(results)}, "
        f"<= 0.8x linear in {sum(r[1] for r in results)} of {len(results)}, coverage "
        f"75-85 % in {sum(r[2] for r in results)} of {len(results)}, time to 90 % within "
        f"15 % and inside its interval in {sum(judged)} of {len(judged)} rollouts that "
        "reached it"
    )


if __name__ == "__main__":
    main()
