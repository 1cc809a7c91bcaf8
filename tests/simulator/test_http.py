"""Tests of the simulator's HTTP surface, in-process (SimTransport) and over loopback (serve).

Every request goes through httpx, as the client's will. Time moves only through a ManualClock;
the only real waits are the short latency faults the loopback server is asked to inject.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from cfanalytics.simulator import (
    ManualClock,
    RateLimit,
    Scenario,
    SimServer,
    SimTransport,
    Simulator,
    default_scenario,
    serve,
)

ACCESS, SECRET = "test-access", "test-secret"
KEYS = {"access_key": ACCESS, "secret_key": SECRET}
STATUS = "/cfp/v1/imageinstall/status"
ASID = {"accountserviceid": "1"}
JOB_FIELDS = [
    "jobcreated",
    "joberror",
    "jobeta",
    "jobfailed",
    "jobprogress",
    "jobstart",
    "jobstateid",
    "jobstatename",
    "jobupdated",
]
STATUS_KEYS = [
    "jobid",
    *JOB_FIELDS,
    "mirroring",
    "restart",
    "location",
    "machine",
    "imagepath",
    "install_at",
    "mirror",
    "target_imageversionid",
    "restart",
]
KINDS = ["transport", "loopback"]


def make_sim(scenario: Scenario | None = None, *, seed: int = 0, faults: float = 0.0) -> Simulator:
    clock = ManualClock((scenario or default_scenario()).start)
    return Simulator(scenario, seed=seed, clock=clock, faults=faults, **KEYS)


def clock_of(sim: Simulator) -> ManualClock:
    assert isinstance(sim.clock, ManualClock)
    return sim.clock


@contextmanager
def connect(sim: Simulator, kind: str, **kwargs: Any) -> Iterator[httpx.Client]:
    """An authenticated client to ``sim``: in-process, or through a loopback server."""
    kwargs.setdefault("auth", (ACCESS, SECRET))
    if kind == "transport":
        transport = kwargs.pop("transport", None) or SimTransport(sim)
        with httpx.Client(transport=transport, base_url="http://sim", **kwargs) as client:
            yield client
        return
    with serve(sim) as server, httpx.Client(base_url=server.url, **kwargs) as client:
        yield client


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


@pytest.fixture(params=KINDS)
def api(request: pytest.FixtureRequest, sim: Simulator) -> Iterator[httpx.Client]:
    with connect(sim, request.param) as client:
        yield client


def pairs(body: bytes) -> Any:
    """Parse JSON keeping duplicate keys: objects become lists of (key, value)."""
    return json.loads(body, object_pairs_hook=list)


def installs(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get(STATUS, params=ASID)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["installs"]
    return result


def first(client: httpx.Client, *, mirroring: bool) -> dict[str, Any]:
    return next(job for job in installs(client) if job["mirroring"] is mirroring)


def queue(client: httpx.Client, jobid: int, mirroring: bool) -> httpx.Response:
    params = {**ASID, "mirroring": str(mirroring).lower()}
    return client.get(f"/cfp/v1/imageinstall/{jobid}/queue", params=params)


def assert_envelope(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False and body["error"] is True
    assert message in body["error_message"]
    assert body["messages"] == [] and body["_debug"] == []
    assert body["error_code"] == 1


# --- auth and parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "auth",
    [
        None,
        ("test-access", "wrong"),
        ("nobody", SECRET),
        "Basic !!!notbase64",
        "Bearer abc",
        "Basic dGVzdC1hY2Nlc3M=",
    ],
)
def test_bad_credentials_are_forbidden(sim: Simulator, kind: str, auth: Any) -> None:
    """Missing, wrong or malformed credentials: 403 with the short Forbidden body."""
    headers = {"Authorization": auth} if isinstance(auth, str) else {}
    with connect(sim, kind, auth=auth if isinstance(auth, tuple) else None) as client:
        response = client.get(STATUS, params=ASID, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"success": False, "error": True, "error_message": "Forbidden"}


def test_foreign_asid_is_forbidden(api: httpx.Client) -> None:
    """An ASID other than the scenario's: 403, on v1 and v2."""
    assert api.get(STATUS, params={"accountserviceid": "2"}).status_code == 403
    assert api.get("/cfp/v2/project/2/image/4101/status").status_code == 403


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        (STATUS, {}, "accountserviceid"),
        (STATUS, {"accountserviceid": "one"}, "accountserviceid"),
        ("/cfp/v1/imageinstall/{jobid}/queue", ASID, "mirroring"),
        ("/cfp/v1/imageinstall/{jobid}/queue", {**ASID, "mirroring": "maybe"}, "mirroring"),
        ("/cfp/v1/imageinstall/abc/queue", {**ASID, "mirroring": "true"}, "jobid"),
        (f"/cfp/v1/imageinstall/{'9' * 5000}/queue", {**ASID, "mirroring": "true"}, "jobid"),
        ("/cfp/v1/imageversion/create", {**ASID, "diffid": "218601"}, "restart"),
        ("/cfp/v1/imageversion/create", {**ASID, "diffid": "x", "restart": "1"}, "diffid"),
        ("/cfp/v1/imageversion/x/status", ASID, "imageversionid"),
    ],
)
def test_bad_parameters_are_400(
    api: httpx.Client, sim: Simulator, path: str, params: dict[str, str], named: str
) -> None:
    """Missing or malformed parameters: 400 with the envelope naming the parameter."""
    path = path.replace("{jobid}", str(sim.model.first_jobid))  # a job that exists
    assert_envelope(api.get(path, params=params), 400, named)


def test_unknown_path_and_method(api: httpx.Client) -> None:
    """Unknown path: 404 envelope; a known path with POST: 405."""
    assert_envelope(api.get("/cfp/v1/nothing", params=ASID), 404, "Not Found")
    response = api.post(STATUS, params=ASID)
    assert_envelope(response, 405, "Method Not Allowed")
    assert response.headers["allow"] == "GET"


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys default to the environment at construction; none is a ValueError naming both."""
    monkeypatch.delenv("CLANFORGE_ACCESS_KEY", raising=False)
    monkeypatch.delenv("CLANFORGE_SECRET_KEY", raising=False)
    with pytest.raises(ValueError, match=r"CLANFORGE_ACCESS_KEY.*CLANFORGE_SECRET_KEY"):
        Simulator()
    monkeypatch.setenv("CLANFORGE_ACCESS_KEY", "env-access")
    monkeypatch.setenv("CLANFORGE_SECRET_KEY", "env-secret-value")
    sim = Simulator()
    assert sim.access_key == "env-access"
    assert "env-secret-value" not in repr(sim)
    with connect(sim, "transport", auth=("env-access", "env-secret-value")) as client:
        assert client.get(STATUS, params=ASID).status_code == 200


# --- application errors and shapes --------------------------------------------------------------


def test_queue_errors_are_200_envelopes(api: httpx.Client, sim: Simulator) -> None:
    """Unknown job, wrong mirroring, completed job: HTTP 200 with the error envelope."""
    assert_envelope(queue(api, 1, False), 200, "No rows in result set")
    mirror = first(api, mirroring=True)
    assert_envelope(queue(api, mirror["jobid"], False), 200, "it is a mirror job")
    assert queue(api, mirror["jobid"], True).json()["jobstatename"] == "Queued"
    clock_of(sim).advance(1800)
    assert mirror["jobid"] not in [job["jobid"] for job in installs(api)]
    assert_envelope(queue(api, mirror["jobid"], True), 200, "already complete")


def test_queue_response_shapes(api: httpx.Client) -> None:
    """Mirror: versionmirrorid + job fields; machine: machinejobid, installs_squashed + fields."""
    mirror, machine = first(api, mirroring=True), first(api, mirroring=False)
    body = pairs(queue(api, mirror["jobid"], True).content)
    assert [k for k, _ in body] == ["versionmirrorid", *JOB_FIELDS, "success"]
    values = dict(body)
    assert (values["jobstateid"], values["jobstart"], values["jobeta"]) == (3, None, None)
    assert isinstance(values["versionmirrorid"], int) and values["success"] is True
    body = pairs(queue(api, machine["jobid"], False).content)
    assert [k for k, _ in body] == ["machinejobid", "installs_squashed", *JOB_FIELDS, "success"]
    assert dict(body)["installs_squashed"] == 0


def test_status_list_keys_types_and_duplicate_restart(api: httpx.Client, sim: Simulator) -> None:
    """Every job lists the documented keys in order, restart twice; jobstart a digit string."""
    mirror = first(api, mirroring=True)
    queue(api, mirror["jobid"], True)
    clock_of(sim).advance(30)
    raw = api.get(STATUS, params=ASID).content
    jobs = pairs(raw)[0][1]
    assert all([k for k, _ in job] == STATUS_KEYS for job in jobs)
    assert raw.count(b'"restart"') == 2 * len(jobs)
    running = next(dict(job) for job in jobs if dict(job)["jobstateid"] == 4)
    assert running["jobstart"].isdigit() and isinstance(running["jobeta"], int)
    assert isinstance(running["mirroring"], bool) and running["restart"] in (0, 1)


def test_squashed_installs_are_counted(api: httpx.Client, sim: Simulator) -> None:
    """Queueing a newer version's machine job reports installs_squashed = 1."""
    created = api.get(
        "/cfp/v1/imageversion/create", params={**ASID, "diffid": "218601", "restart": "false"}
    )
    version = created.json()
    assert version["jobstatename"] == "Created" and version["success"] is True
    clock_of(sim).advance(600)
    status = api.get(f"/cfp/v1/imageversion/{version['imageversionid']}/status", params=ASID)
    assert status.json()["jobstateid"] == 5
    newer = next(
        job
        for job in installs(api)
        if job["target_imageversionid"] == version["imageversionid"] and not job["mirroring"]
    )
    assert queue(api, newer["jobid"], False).json()["installs_squashed"] == 1


def test_diff_lock_envelope(api: httpx.Client, sim: Simulator) -> None:
    """Queueing an install of a locked image: the documented envelope, HTTP 200."""
    params = {**ASID, "diffid": "218602", "restart": "1"}
    assert api.get("/cfp/v1/imageversion/create", params=params).status_code == 200
    clock_of(sim).advance(300)
    job = next(j for j in installs(api) if j["imagepath"] == "/games/arena/tools")
    response = queue(api, job["jobid"], job["mirroring"])
    assert response.json()["error_message"] == "image locked by diffid: 218599"
    assert_envelope(
        api.get("/cfp/v1/imageversion/create", params={**ASID, "diffid": "1", "restart": "1"}),
        200,
        "No rows in result set",
    )


def test_date_header_follows_the_sim_clock(api: httpx.Client, sim: Simulator) -> None:
    """Date comes from the sim clock (RFC 7231); Content-Length is exact; no Server header."""
    clock_of(sim).advance(3600)
    response = api.get(STATUS, params=ASID)
    assert response.headers["date"] == email.utils.formatdate(clock_of(sim).now(), usegmt=True)
    assert response.headers["date"] == "Mon, 02 Nov 2026 10:00:00 GMT"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["content-type"] == "application/json"
    assert "server" not in response.headers


def test_truth_and_v2_counts(api: httpx.Client, sim: Simulator) -> None:
    """/_sim/truth needs no auth; v2 counts add up to the fleet overall and per region."""
    for job in installs(api):
        queue(api, job["jobid"], job["mirroring"])
    clock_of(sim).advance(2400)
    truth = api.get("/_sim/truth", auth=None).json()["jobs"]
    assert len(truth) == 48 and {r["outcome"] for r in truth} <= {"completed", "failed"}
    status = api.get("/cfp/v2/project/1/image/4101/status", params={"detail": "true"}).json()
    keys = ("pending_machines", "failed_machines", "completed_machines")
    assert sum(status[k] for k in keys) == 44
    assert status["completed_machines"] == sum(
        r["outcome"] == "completed" for r in truth if r["kind"] == "machine"
    )
    regions = status["fleets"]["3401"]["regions"]
    assert sum(r[k] for r in regions.values() for k in keys) == 44
    assert api.get("/cfp/v2/project/1/image/999/status").status_code == 404


@pytest.mark.parametrize("kind", KINDS)
def test_status_list_of_5000_jobs(kind: str) -> None:
    """A 5,000-job status list answers, complete and parseable."""
    sim = make_sim(default_scenario().scaled(5000))
    with connect(sim, kind) as client:
        jobs = installs(client)
    assert len(jobs) >= 4900
    assert len({job["jobid"] for job in jobs}) == len(jobs)


# --- section 6 settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        ({"mirroring_as": "int"}, "mirroring", 1),
        ({"mirroring_as": "string"}, "mirroring", "1"),
        ({"restart_as": "bool"}, "restart", True),
        ({"jobstart_before_start": ""}, "jobstart", ""),
    ],
)
def test_rendering_settings(change: dict[str, Any], key: str, expected: Any) -> None:
    """Each section-6 rendering setting changes what the status list shows."""
    sim = make_sim(dataclasses.replace(default_scenario(), **change))
    with connect(sim, "transport") as client:
        assert first(client, mirroring=expected if key == "mirroring" else True)[key] == expected


def test_complete_state_name() -> None:
    """complete_state_name="Completed" is what a finished version job reports."""
    sim = make_sim(dataclasses.replace(default_scenario(), complete_state_name="Completed"))
    params = {**ASID, "diffid": "218601", "restart": "0", "full": "true"}
    with connect(sim, "transport") as client:
        vid = client.get("/cfp/v1/imageversion/create", params=params).json()["imageversionid"]
        clock_of(sim).advance(900)
        status = client.get(f"/cfp/v1/imageversion/{vid}/status", params=ASID).json()
    assert (status["jobstateid"], status["jobstatename"]) == (5, "Completed")


def test_optional_keys_can_be_dropped() -> None:
    """No duplicate restart, no jobstateid, no success field when the scenario says so."""
    scenario = dataclasses.replace(
        default_scenario(),
        duplicate_restart_key=False,
        include_jobstateid=False,
        queue_success_field=False,
    )
    sim = make_sim(scenario)
    with connect(sim, "transport") as client:
        raw = client.get(STATUS, params=ASID).content
        job = pairs(raw)[0][1][0]
        assert [k for k, _ in job].count("restart") == 1
        assert "jobstateid" not in dict(job)
        body = queue(client, dict(job)["jobid"], True).json()
    assert "success" not in body and "jobstateid" not in body


def test_shuffled_order() -> None:
    """status_order="shuffled" lists the same jobs in a seeded, non-sorted order."""
    sim = make_sim(dataclasses.replace(default_scenario(), status_order="shuffled"))
    with connect(sim, "transport") as client:
        ids = [job["jobid"] for job in installs(client)]
    assert ids != sorted(ids) and len(ids) == 48


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit(kind: str) -> None:
    """Over the limit: 429 with Retry-After until the window turns."""
    sim = make_sim(dataclasses.replace(default_scenario(), rate_limit=RateLimit(3, 60.0)))
    with connect(sim, kind) as client:
        assert [client.get(STATUS, params=ASID).status_code for _ in range(3)] == [200] * 3
        clock_of(sim).advance(20)
        response = client.get(STATUS, params=ASID)
        assert_envelope(response, 429, "Too Many Requests")
        assert response.headers["retry-after"] == "40"
        clock_of(sim).advance(40)
        assert client.get(STATUS, params=ASID).status_code == 200


# --- faults -------------------------------------------------------------------------------------


def faulty(kind: str, **change: Any) -> Simulator:
    """A simulator whose every request meets a fault of ``kind``."""
    scenario = dataclasses.replace(default_scenario(), fault_weights=((kind, 1.0),), **change)
    return make_sim(scenario, faults=1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_dropped_connection_changes_nothing(kind: str) -> None:
    """A drop raises RemoteProtocolError; the queue request never reached the model."""
    sim = faulty("drop")
    jobid = sim.model.listed()[0].jobid
    with connect(sim, kind) as client, pytest.raises(httpx.RemoteProtocolError):
        queue(client, jobid, True)
    assert sim.model.jobs[jobid].attempt == 0
    with connect(sim, kind) as client:
        truth = client.get("/_sim/truth")  # faults never touch the truth endpoint
    assert truth.status_code == 200 and truth.json()["jobs"][0]["outcome"] == "pending"


def test_latency_sleeps_then_times_out_in_process() -> None:
    """In-process latency calls the injected sleep; past the read timeout it is ReadTimeout."""
    sim = faulty("latency", fault_latency_s=(5.0, 8.0))
    slept: list[float] = []
    with connect(sim, "transport", transport=SimTransport(sim, sleep=slept.append)) as client:
        assert client.get(STATUS, params=ASID, timeout=None).status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            client.get(STATUS, params=ASID, timeout=httpx.Timeout(10.0, read=2.0))
    assert 5.0 <= slept[0] <= 8.0 and slept[1] == 2.0


def test_latency_over_loopback_times_out() -> None:
    """Over loopback the server really waits: a short read timeout expires."""
    sim = faulty("latency", fault_latency_s=(0.3, 0.4))
    timeout = httpx.Timeout(5.0, read=0.05)
    with connect(sim, "loopback", timeout=timeout) as client, pytest.raises(httpx.ReadTimeout):
        client.get(STATUS, params=ASID)


@pytest.mark.parametrize("kind", KINDS)
def test_5xx_comes_in_bursts(kind: str) -> None:
    """A 5xx fault is followed by more 5xx: a burst of at least two."""
    scenario = dataclasses.replace(default_scenario(), fault_weights=(("5xx", 1.0),))
    sim = make_sim(scenario, faults=0.1)
    with connect(sim, kind) as client:
        codes = [client.get(STATUS, params=ASID).status_code for _ in range(60)]
    start = next(i for i, code in enumerate(codes) if code != 200)
    assert set(codes[start : start + 2]) <= {500, 502, 503}
    assert 200 in codes


@pytest.mark.parametrize("kind", KINDS)
def test_429_fault_has_retry_after(kind: str) -> None:
    """An injected 429 carries Retry-After in seconds."""
    with connect(faulty("429"), kind) as client:
        response = client.get(STATUS, params=ASID)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 5


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_body(kind: str) -> None:
    """A truncated body is a prefix of the real one with a matching Content-Length."""
    sim = faulty("truncated")
    real = make_sim(sim.scenario)  # the same scenario and seed (so the same ids), no faults
    with connect(sim, kind) as client, connect(real, "transport") as reference:
        response = client.get(STATUS, params=ASID)
        full = reference.get(STATUS, params=ASID).content
    assert int(response.headers["content-length"]) == len(response.content) < len(full)
    assert full.startswith(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize("kind", KINDS)
def test_html_body(kind: str) -> None:
    """A non-JSON fault answers an HTML error page (502 or 200)."""
    with connect(faulty("html"), kind) as client:
        responses = [client.get(STATUS, params=ASID) for _ in range(8)]
    assert {r.status_code for r in responses} <= {200, 502}
    assert all(r.text.startswith("<html>") for r in responses)
    assert responses[0].headers["content-type"] == "text/html"


def test_truncated_queue_does_not_queue() -> None:
    """A faulted state-changing request leaves the model unchanged."""
    sim = faulty("truncated")
    jobid = sim.model.listed()[0].jobid
    with connect(sim, "transport") as client:
        response = queue(client, jobid, True)
    assert response.content.startswith(b'{"success": false')
    assert sim.model.jobs[jobid].attempt == 0


# --- adapters -----------------------------------------------------------------------------------


def test_async_client_through_the_transport(sim: Simulator) -> None:
    """The same transport serves httpx.AsyncClient."""

    async def fetch() -> int:
        transport = SimTransport(sim)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sim", auth=(ACCESS, SECRET)
        ) as client:
            response = await client.get(STATUS, params=ASID)
            return len(response.json()["installs"])

    assert asyncio.run(fetch()) == 48


def test_async_latency_uses_the_injected_async_sleep() -> None:
    """Async latency awaits the injectable async sleep, not asyncio's."""
    sim = faulty("latency", fault_latency_s=(3.0, 3.0))
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    async def fetch() -> int:
        transport = SimTransport(sim, async_sleep=fake_sleep)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sim", auth=(ACCESS, SECRET)
        ) as client:
            return (await client.get(STATUS, params=ASID)).status_code

    assert asyncio.run(fetch()) == 200
    assert waited == [3.0]


def test_serve_forever_in_the_foreground_stops_on_close(sim: Simulator) -> None:
    """serve_forever blocks its thread (as a CLI would) until close() from elsewhere."""
    server = SimServer(sim)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    with httpx.Client(base_url=server.url, auth=(ACCESS, SECRET)) as client:
        assert client.get(STATUS, params=ASID).status_code == 200  # the loop is running
    server.close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_serve_forever_after_serve_waits_for_close(sim: Simulator) -> None:
    """``with serve(sim) as s: s.serve_forever()`` blocks until close(), with one loop."""
    server = serve(sim)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    with httpx.Client(base_url=server.url, auth=(ACCESS, SECRET)) as client:
        assert client.get(STATUS, params=ASID).status_code == 200
    assert thread.is_alive()
    server.close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_server_refuses_remote_hosts(sim: Simulator) -> None:
    """Binding anything but loopback needs allow_remote=True."""
    with pytest.raises(ValueError, match="allow_remote"):
        SimServer(sim, "0.0.0.0")
    with serve(sim, "localhost") as server:
        assert server.url.startswith("http://localhost:")
