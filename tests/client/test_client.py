"""Unit tests of the client through httpx.MockTransport: requests, quirks, errors, retries."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import cfanalytics
from cfanalytics import (
    APIError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConnectError,
    CredentialsError,
    InsecureTransportError,
    JobState,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from cfanalytics.client import may_have_acted, refused_unacted

from ..conftest import ACCESS_KEY, SECRET_KEY

Handler = Callable[[httpx.Request], httpx.Response]

JOB = {
    "jobid": 101,
    "jobcreated": 1_700_000_000,
    "joberror": "",
    "jobeta": 1_700_000_600,
    "jobfailed": 0,
    "jobprogress": 42,
    "jobstart": "1700000100",
    "jobstateid": 4,
    "jobstatename": "Running",
    "jobupdated": 1_700_000_300,
    "mirroring": False,
    "restart": 0,
    "location": "London",
    "machine": "lon-gs-001",
    "imagepath": "/images/game",
    "install_at": 1_700_000_000,
    "mirror": "lon-mirror",
    "target_imageversionid": 7,
}


def status_body(*jobs: dict[str, Any]) -> str:
    return json.dumps({"installs": list(jobs)})


def make_client(handler: Handler, **options: Any) -> Client:
    options.setdefault("sleep", lambda seconds: None)
    return Client(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        transport=httpx.MockTransport(handler),
        **options,
    )


def replies(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with ``responses`` in turn, and the list of requests it saw."""
    seen: list[httpx.Request] = []
    queue: Iterator[httpx.Response | Exception] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(queue)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def one_job(**changes: Any) -> cfanalytics.InstallJob:
    job = {**JOB, **changes}
    for key in [k for k, v in changes.items() if v is ...]:
        del job[key]
    handler, _ = replies(httpx.Response(200, text=status_body(job)))
    return make_client(handler).install_status(1).installs[0]


# --- configuration -----------------------------------------------------------------------


def test_missing_credentials_error_names_both_variables() -> None:
    """Without keys anywhere, one error names the two environment variables."""
    with pytest.raises(CredentialsError, match="CLANFORGE_ACCESS_KEY and CLANFORGE_SECRET_KEY"):
        Client()


def test_credentials_and_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment variables supply keys and base URL when no argument does."""
    monkeypatch.setenv("CLANFORGE_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("CLANFORGE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CLANFORGE_BASE_URL", "http://127.0.0.1:8086")
    handler, seen = replies(httpx.Response(200, text=status_body()))
    client = Client(transport=httpx.MockTransport(handler))
    assert client.base_url == httpx.URL("http://127.0.0.1:8086")
    client.install_status(1)
    assert seen[0].url.host == "127.0.0.1"


def test_default_base_url_is_the_real_api(keys: dict[str, str]) -> None:
    """The real Clanforge API is the default target."""
    assert Client(**keys).base_url == httpx.URL("https://api.multiplay.co.uk")


@pytest.mark.parametrize("url", ["http://api.multiplay.co.uk", "http://10.0.0.5:80", "ftp://x"])
def test_plain_http_to_remote_host_is_refused(keys: dict[str, str], url: str) -> None:
    """Credentials never travel over plain HTTP except to loopback."""
    with pytest.raises(InsecureTransportError):
        Client(base_url=url, **keys)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://localhost:2", "http://[::1]:3"])
def test_plain_http_to_loopback_is_allowed(keys: dict[str, str], url: str) -> None:
    """The simulator on loopback may be reached over plain HTTP."""
    assert Client(base_url=url, **keys).base_url == httpx.URL(url)


def test_repr_and_errors_never_show_the_secret() -> None:
    """Neither the secret nor the Basic token appears in repr or in error text."""
    token = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()
    handler, _ = replies(httpx.Response(403, json={"success": False, "error_message": "Forbidden"}))
    client = make_client(handler)
    with pytest.raises(AuthenticationError) as info:
        client.install_status(1)
    shown = repr(client) + str(info.value) + repr(info.value.raw)
    assert SECRET_KEY not in shown and token not in shown and ACCESS_KEY not in shown


# --- requests ----------------------------------------------------------------------------


def test_requests_carry_basic_auth_content_type_and_user_agent() -> None:
    """Basic auth, the documented content type and a cfanalytics user agent on every call."""
    handler, seen = replies(httpx.Response(200, text=status_body()))
    make_client(handler).install_status(55)
    request = seen[0]
    expected = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["user-agent"].startswith(f"cfanalytics/{cfanalytics.__version__}")
    assert request.method == "GET"
    assert request.url.path == "/cfp/v1/imageinstall/status"
    assert dict(request.url.params) == {"accountserviceid": "55"}


@pytest.mark.parametrize("mirroring", [True, False])
def test_queue_request_path_and_parameters(mirroring: bool) -> None:
    """Queueing sends the job id in the path and both required parameters."""
    handler, seen = replies(httpx.Response(200, json={"jobstateid": 3, "jobstatename": "Queued"}))
    result = make_client(handler).queue_install(4321, asid=9, mirroring=mirroring)
    assert seen[0].url.path == "/cfp/v1/imageinstall/4321/queue"
    assert dict(seen[0].url.params) == {
        "accountserviceid": "9",
        "mirroring": "true" if mirroring else "false",
    }
    assert result.jobid == 4321
    assert result.kind == ("mirror" if mirroring else "machine")


@pytest.mark.parametrize(
    ("args", "error"),
    [((0,), ValueError), (("12",), TypeError), ((True,), TypeError)],
)
def test_bad_arguments_are_programmer_errors(args: tuple[Any, ...], error: type[Exception]) -> None:
    """Wrong argument types raise TypeError/ValueError before anything is sent."""
    handler, seen = replies()
    with pytest.raises(error):
        make_client(handler).queue_install(*args, asid=1, mirroring=True)
    with pytest.raises(TypeError):
        make_client(handler).queue_install(5, asid=1, mirroring="true")  # type: ignore[arg-type]
    assert seen == []


def test_image_status_detail() -> None:
    """The v2 image status returns the three counts and, with detail, the fleets."""
    body = {"pending_machines": 3, "failed_machines": "1", "completed_machines": 9, "fleets": {}}
    handler, seen = replies(httpx.Response(200, json=body))
    status = make_client(handler).image_status(5, 77, detail=True)
    assert seen[0].url.path == "/cfp/v2/project/5/image/77/status"
    assert seen[0].url.params["detail"] == "true"
    assert (status.pending_machines, status.failed_machines, status.completed_machines) == (3, 1, 9)
    assert status.fleets == {}


# --- parsing quirks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000100", datetime(2023, 11, 14, 22, 15, tzinfo=UTC)),
        (1_700_000_100, datetime(2023, 11, 14, 22, 15, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_jobstart_variants(value: Any, expected: datetime | None) -> None:
    """jobstart may be a digit string, an int, "" or null."""
    assert one_job(jobstart=value).jobstart == expected


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("Created", JobState.CREATED),
        ("Running", JobState.RUNNING),
        ("Complete", JobState.COMPLETE),
        ("Completed", JobState.COMPLETE),
        ("Failed", JobState.FAILED),
        ("Squashed", JobState.SQUASHED),
    ],
)
def test_missing_jobstateid_is_derived_from_the_name(name: str, state: JobState) -> None:
    """Without jobstateid the state comes from jobstatename; both spellings of 5 work."""
    job = one_job(jobstateid=..., jobstatename=name)
    assert job.jobstateid == state and job.state is state


def test_jobstateid_wins_over_the_name() -> None:
    """The id is authoritative; the name is only a fallback."""
    assert one_job(jobstateid=6, jobstatename="Running").state is JobState.FAILED


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("false", False)],
)
def test_mirroring_variants(value: Any, expected: bool) -> None:
    """mirroring may be a bool, 0/1 or "true"/"false"."""
    job = one_job(mirroring=value)
    assert job.mirroring is expected
    assert job.kind == ("mirror" if expected else "machine")


def test_jobfailed_is_a_count() -> None:
    """jobfailed is read as a count, not a flag."""
    assert one_job(jobfailed=3).jobfailed == 3


def test_duplicate_keys_keep_every_value() -> None:
    """A repeated key (restart, as documented) takes the last value and keeps all of them."""
    text = '{"installs": [{"jobid": 1, "jobstateid": 2, "restart": 0, "restart": 1}]}'
    handler, _ = replies(httpx.Response(200, text=text))
    job = make_client(handler).install_status(1).installs[0]
    assert job.restart is True
    assert job.duplicates == {"restart": (0, 1)}


def test_unknown_fields_are_kept() -> None:
    """Fields the docs do not list land in extra, untouched."""
    job = one_job(fleetid=12, region={"id": 3})
    assert job.extra == {"fleetid": 12, "region": {"id": 3}}


def test_unreadable_values_are_flagged_not_dropped() -> None:
    """A value of the wrong type becomes None and is kept in invalid."""
    job = one_job(jobprogress="lots", jobeta=1_700_000_000_000)
    assert job.jobprogress is None and job.jobeta is None
    assert job.invalid == {"jobprogress": "lots", "jobeta": 1_700_000_000_000}


def test_numbers_sent_as_text_and_ids_as_numbers() -> None:
    """Digit strings become ints and numeric names become text."""
    job = one_job(jobprogress="55", machine=1234, target_imageversionid="8")
    assert (job.jobprogress, job.machine, job.target_imageversionid) == (55, "1234", 8)


def test_queue_response_mirror_shape() -> None:
    """A mirror job answer carries versionmirrorid and the job fields."""
    body = {"versionmirrorid": 88, **{k: JOB[k] for k in JOB if k.startswith("job")}}
    del body["jobid"]
    handler, _ = replies(httpx.Response(200, json=body))
    result = make_client(handler).queue_install(101, asid=1, mirroring=True)
    assert result.versionmirrorid == 88 and result.machinejobid is None
    assert result.jobid == 101 and result.state is JobState.RUNNING
    assert result.raw.status_code == 200 and "versionmirrorid" in result.raw.text


@pytest.mark.parametrize(("squashed", "expected"), [(2, 2), ([5, 6], (5, 6)), (None, None)])
def test_queue_response_machine_shape(squashed: Any, expected: Any) -> None:
    """A machine job answer carries machinejobid and installs_squashed (count or ids)."""
    body = {"machinejobid": 31, "installs_squashed": squashed, "jobstatename": "Queued"}
    handler, _ = replies(httpx.Response(200, json=body))
    result = make_client(handler).queue_install(101, asid=1, mirroring=False)
    assert result.machinejobid == 31 and result.installs_squashed == expected
    assert result.jobstateid == 3 and result.extra == {}


def test_status_keeps_the_raw_response() -> None:
    """The recorder needs every byte: status, headers and body text are kept."""
    text = status_body(JOB)
    headers = {"Date": "Thu, 02 Nov 2026 09:00:00 GMT", "X-Thing": "1"}
    handler, _ = replies(httpx.Response(200, text=text, headers=headers))
    status = make_client(handler).install_status(1)
    assert status.raw.text == text
    assert ("x-thing", "1") in status.raw.headers
    assert status.observed_at == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert len(status) == 1 and next(iter(status)).jobid == 101


# --- errors ------------------------------------------------------------------------------


def no_retry_client(response: httpx.Response) -> Client:
    handler, _ = replies(response)
    return make_client(handler, retry=RetryPolicy(attempts=1))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_codes_map_to_the_tree(status: int, error: type[Exception]) -> None:
    """Each documented status raises its class, all under CfAnalyticsError."""
    envelope = {"success": False, "error": True, "error_code": 9, "error_message": "Nope"}
    with pytest.raises(error) as info:
        no_retry_client(httpx.Response(status, json=envelope)).install_status(1)
    assert isinstance(info.value, cfanalytics.CfAnalyticsError)
    assert info.value.error_message == "Nope" and info.value.error_code == 9  # type: ignore[attr-defined]
    assert f"HTTP {status}" in str(info.value)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("Thu, 02 Nov 2026 09:00:30 GMT", 30.0), ("soon", None)],
)
def test_rate_limit_carries_retry_after(header: str, seconds: float | None) -> None:
    """Retry-After in seconds or as a date (relative to the response's Date) is exposed."""
    headers = {"Retry-After": header, "Date": "Thu, 02 Nov 2026 09:00:00 GMT"}
    with pytest.raises(RateLimitedError) as info:
        no_retry_client(httpx.Response(429, headers=headers)).install_status(1)
    assert info.value.retry_after == seconds


@pytest.mark.parametrize(
    "envelope",
    [
        {
            "success": False,
            "error": True,
            "error_code": 1,
            "error_message": "image locked by diffid: 218595",
        },
        {"error": True, "error_code": 1, "error_message": "image locked by diffid: 218595"},
        {"success": "false", "error_code": 1, "error_message": "image locked by diffid: 218595"},
    ],
)
def test_error_envelope_with_http_200(envelope: dict[str, Any]) -> None:
    """An envelope with success false or error true raises APIError even with HTTP 200."""
    with pytest.raises(APIError) as info:
        no_retry_client(httpx.Response(200, json=envelope)).queue_install(1, asid=1, mirroring=True)
    assert info.value.error_code == 1
    assert info.value.error_message == "image locked by diffid: 218595"
    assert "reject or finish that diff" in str(info.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "not valid JSON"),
        ('{"installs": [{"jobid": 1, "jobst', "not valid JSON"),
        ('{"jobs": []}', "no 'installs' list"),
        ("[1, 2]", "expected a JSON object"),
        ('{"installs": [{"jobstateid": 4}]}', "no readable jobid"),
        ('{"installs": [7]}', "expected a JSON object"),
    ],
)
def test_unreadable_bodies(text: str, problem: str) -> None:
    """Non-JSON, truncated and wrongly shaped bodies raise ResponseFormatError with a snippet."""
    with pytest.raises(ResponseFormatError, match=problem) as info:
        no_retry_client(httpx.Response(200, text=text)).install_status(1)
    assert info.value.snippet == text[:200]
    assert info.value.raw.text == text


def test_null_installs_is_an_empty_list() -> None:
    """``"installs": null`` is read as no incomplete jobs."""
    assert (
        len(no_retry_client(httpx.Response(200, text='{"installs": null}')).install_status(1)) == 0
    )


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), ConnectError),
        (httpx.ConnectTimeout("slow connect"), ConnectError),
        (httpx.ReadTimeout("slow"), RequestTimeoutError),
        (httpx.RemoteProtocolError("Server disconnected"), TransportError),
    ],
)
def test_transport_failures(exc: Exception, error: type[Exception]) -> None:
    """Transport failures become the tree's TransportError classes, chained to the cause."""
    handler, _ = replies(exc)
    with pytest.raises(error) as info:
        make_client(handler, retry=RetryPolicy(attempts=1)).install_status(1)
    assert info.value.__cause__ is exc
    assert "/cfp/v1/imageinstall/status" in str(info.value)


# --- retries -----------------------------------------------------------------------------


def test_status_is_retried_then_succeeds() -> None:
    """Transient failures of a read-only call are retried until an answer comes."""
    handler, seen = replies(
        httpx.Response(503),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, text=status_body(JOB)),
    )
    waits: list[float] = []
    status = make_client(handler, sleep=waits.append).install_status(1)
    assert len(status) == 1 and len(seen) == 4 and len(waits) == 3


def test_retry_after_is_honoured() -> None:
    """A 429's Retry-After replaces the computed backoff."""
    handler, _ = replies(
        httpx.Response(429, headers={"Retry-After": "12"}), httpx.Response(200, text=status_body())
    )
    waits: list[float] = []
    make_client(handler, sleep=waits.append).install_status(1)
    assert waits == [12.0]


def test_too_long_retry_after_is_raised_not_waited() -> None:
    """A Retry-After beyond max_retry_after raises instead of stalling the caller."""
    handler, _ = replies(httpx.Response(429, headers={"Retry-After": "3600"}))
    waits: list[float] = []
    with pytest.raises(RateLimitedError):
        make_client(handler, sleep=waits.append).install_status(1)
    assert waits == []


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    """Waits double from ``initial`` and jitter adds at most ``jitter`` times the wait."""
    policy = RetryPolicy(attempts=6, initial=1.0, multiplier=2.0, maximum=10.0, jitter=0.5)
    handler, seen = replies(*[httpx.Response(502)] * 6)
    waits: list[float] = []
    with pytest.raises(ServerError):
        make_client(handler, retry=policy, sleep=waits.append, rng=random.Random(3)).install_status(
            1
        )
    assert len(seen) == 6 and len(waits) == 5
    for wait, base in zip(waits, [1, 2, 4, 8, 10], strict=True):
        assert base <= wait <= 1.5 * base


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.Response(500, headers={"Retry-After": "1"}),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected"),
        httpx.Response(200, text="{trunc"),
    ],
)
def test_queue_is_never_resent_once_it_may_have_arrived(failure: Any) -> None:
    """State-changing queue calls are sent once unless the server provably did not act."""
    handler, seen = replies(failure, httpx.Response(200, json={"jobstateid": 3}))
    with pytest.raises(cfanalytics.CfAnalyticsError) as caught:
        make_client(handler).queue_install(1, asid=1, mirroring=True)
    assert len(seen) == 1
    assert may_have_acted(caught.value) and not refused_unacted(caught.value)


@pytest.mark.parametrize(
    ("refusal", "wait"),
    [
        (httpx.Response(429, headers={"Retry-After": "7"}), 7.0),
        (httpx.Response(429), None),  # no Retry-After: the policy's backoff
        (httpx.Response(503, headers={"Retry-After": "3"}), 3.0),
    ],
)
def test_a_queue_request_refused_without_acting_is_sent_again_after_the_wait(
    refusal: httpx.Response, wait: float | None
) -> None:
    """429, or 503 with Retry-After: the API did not act, so the request goes again."""
    handler, seen = replies(refusal, httpx.Response(200, json={"jobstateid": 3}))
    waits: list[float] = []
    result = make_client(handler, sleep=waits.append).queue_install(1, asid=1, mirroring=True)
    assert len(seen) == 2 and result.state is JobState.QUEUED
    assert len(waits) == 1 and (wait is None or waits == [wait])


def test_refusals_are_resent_a_bounded_number_of_times() -> None:
    handler, seen = replies(*[httpx.Response(429, headers={"Retry-After": "0"})] * 9)
    with pytest.raises(RateLimitedError) as caught:
        make_client(handler, retry=RetryPolicy(attempts=3)).queue_install(1, asid=1, mirroring=True)
    assert len(seen) == 3 and refused_unacted(caught.value) and not may_have_acted(caught.value)


def test_queue_is_retried_after_a_connect_failure() -> None:
    """A connection that never opened means nothing was sent: the queue call is retried."""
    handler, seen = replies(
        httpx.ConnectError("refused"), httpx.Response(200, json={"jobstateid": 3})
    )
    result = make_client(handler).queue_install(1, asid=1, mirroring=True)
    assert len(seen) == 2 and result.state is JobState.QUEUED


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_not_retried(status: int) -> None:
    """A request Clanforge refused will be refused again: no retry."""
    handler, seen = replies(httpx.Response(status), httpx.Response(200, text=status_body()))
    with pytest.raises(cfanalytics.HTTPStatusError):
        make_client(handler).install_status(1)
    assert len(seen) == 1


def test_redirects_are_not_followed() -> None:
    """A redirect could carry the Authorization header elsewhere; it is an error."""
    handler, seen = replies(httpx.Response(301, headers={"Location": "https://evil.example/"}))
    with pytest.raises(cfanalytics.HTTPStatusError, match="HTTP 301"):
        make_client(handler).install_status(1)
    assert len(seen) == 1


def test_retry_policy_validates() -> None:
    """Nonsense policies are programmer errors."""
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


# --- async -------------------------------------------------------------------------------


def test_async_client_shares_the_rules() -> None:
    """AsyncClient parses, retries and raises exactly like Client."""
    handler, seen = replies(
        httpx.Response(503),
        httpx.Response(200, text=status_body(JOB)),
        httpx.Response(
            200, json={"success": False, "error": True, "error_message": "Request in progress"}
        ),
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def scenario() -> None:
        async with AsyncClient(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            transport=httpx.MockTransport(handler),
            sleep=sleep,
        ) as client:
            status = await client.install_status(1)
            assert status.installs[0].jobprogress == 42
            with pytest.raises(APIError, match="re-read the install status list"):
                await client.queue_install(1, asid=1, mirroring=False)
            assert SECRET_KEY not in repr(client)

    asyncio.run(scenario())
    assert len(seen) == 3 and len(waits) == 1


def test_public_api_is_explicit_and_sorted() -> None:
    """The package lists its public names, sorted, and each one exists."""
    assert cfanalytics.__all__ == sorted(cfanalytics.__all__)
    for name in cfanalytics.__all__:
        assert hasattr(cfanalytics, name)
    assert {"Client", "AsyncClient", "CfAnalyticsError"} <= set(cfanalytics.__all__)
