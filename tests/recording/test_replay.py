"""Linear replay: FIFO per request key, strict exhaustion, sync and async, vcrpy compatible."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import httpx
import pytest
import vcr

from cfanalytics.exceptions import CassetteError, ReplayExhaustedError
from cfanalytics.recording import (
    Cassette,
    CassetteWriter,
    Interaction,
    ReplayTransport,
    load_cassette,
)
from cfanalytics.recording._replay import request_key

from ..conftest import CASSETTES

BASE = "https://api.multiplay.co.uk"
STATUS_PATH = "/cfp/v1/imageinstall/status?accountserviceid=1"
STATUS = BASE + STATUS_PATH
QUEUE = f"{BASE}/cfp/v1/imageinstall/7/queue?accountserviceid=1&mirroring=false"


def answer(uri: str, body: str, *, status: int = 200, reason: str = "OK") -> Interaction:
    """A recorded GET of ``uri`` answered with ``body`` and a multi-valued header."""
    return Interaction(
        method="GET",
        uri=uri,
        request_headers=(("authorization", "Basic recorded-keys"),),
        status_code=status,
        reason=reason,
        headers=(("content-type", "application/json"), ("x-n", "1"), ("x-n", "2")),
        body=body.encode(),
    )


def cassette_of(*interactions: Interaction) -> Cassette:
    """An in-memory cassette."""
    return Cassette(interactions=interactions, metadata={})


def test_fifo_per_url_with_interleaved_urls() -> None:
    """Two URLs recorded interleaved: each gets its own answers, in recorded order."""
    transport = ReplayTransport(
        cassette_of(
            answer(STATUS, "s1"),
            answer(QUEUE, "q1"),
            answer(STATUS, "s2"),
            answer(QUEUE, "q2"),
            answer(STATUS, "s3"),
        )
    )
    with httpx.Client(transport=transport) as client:
        order = [QUEUE, QUEUE, STATUS, STATUS, STATUS]
        assert [client.get(url).text for url in order] == ["q1", "q2", "s1", "s2", "s3"]


def test_query_order_port_and_method_case_do_not_matter() -> None:
    """Sorted query, explicit default port and method case all map to the same key."""
    transport = ReplayTransport(
        cassette_of(answer(f"{BASE}/x?b=2&a=1", "one"), answer(f"{BASE}:443/x?a=1&b=2", "two"))
    )
    with httpx.Client(transport=transport) as client:
        assert client.get(f"{BASE}/x", params={"a": "1", "b": "2"}).text == "one"
        assert client.request("get", f"{BASE}:443/x?b=2&a=1").text == "two"
    url = httpx.URL(f"{BASE}/x?b=2&a=1")
    assert request_key("get", url) == request_key("GET", httpx.URL(f"{BASE}:443/x?a=1&b=2"))


def test_different_query_values_are_different_requests() -> None:
    """Only the order of the query is ignored, never its values."""
    transport = ReplayTransport(cassette_of(answer(STATUS, "asid 1")))
    with httpx.Client(transport=transport) as client, pytest.raises(ReplayExhaustedError):
        client.get(f"{BASE}/cfp/v1/imageinstall/status?accountserviceid=2")


def test_headers_are_not_matched() -> None:
    """Replay works with other credentials than the recording had."""
    transport = ReplayTransport(cassette_of(answer(STATUS, "s1")))
    with httpx.Client(transport=transport, auth=("replay", "keys")) as client:
        assert client.get(STATUS, headers={"x-other": "1"}).text == "s1"


def test_response_is_rebuilt_exactly() -> None:
    """Status, reason, headers in order (multi-valued kept), and body bytes, as recorded."""
    recorded = answer(STATUS, '{"installs": []}', status=429, reason="Too Many Requests")
    with httpx.Client(transport=ReplayTransport(cassette_of(recorded))) as client:
        response = client.get(STATUS)
    assert response.status_code == 429
    assert response.reason_phrase == "Too Many Requests"
    assert response.headers.multi_items() == list(recorded.headers)
    assert response.content == recorded.body
    assert response.request.url == STATUS


def test_exhausted_key_raises_a_clear_error(tmp_path: Path) -> None:
    """One poll more than recorded: ReplayExhaustedError naming file, request and count."""
    path = tmp_path / "two.yaml"
    with CassetteWriter(path) as writer:
        writer.append(answer(STATUS, "s1"))
        writer.append(answer(STATUS, "s2"))
    with httpx.Client(transport=ReplayTransport(path)) as client:
        client.get(STATUS)
        client.get(STATUS)
        with pytest.raises(ReplayExhaustedError) as info:
            client.get(STATUS)
    message = str(info.value)
    assert f"the cassette {path} has no more recorded answers for GET {STATUS_PATH}" in message
    assert "(it held 2)" in message and "re-record, or stop the run earlier" in message


def test_unrecorded_request_says_so() -> None:
    """A request never recorded is told apart from running past the recording."""
    transport = ReplayTransport(cassette_of(answer(STATUS, "s1")))
    with httpx.Client(transport=transport) as client, pytest.raises(ReplayExhaustedError) as info:
        client.get(QUEUE)
    assert "never recorded GET " + QUEUE in str(info.value)
    assert "check the base URL" in str(info.value)


def test_served_and_remaining_count() -> None:
    """``served`` goes up and ``remaining()`` down with each answer."""
    transport = ReplayTransport(cassette_of(answer(STATUS, "s1"), answer(QUEUE, "q1")))
    assert (transport.served, transport.remaining()) == (0, 2)
    with httpx.Client(transport=transport) as client:
        client.get(QUEUE)
    assert (transport.served, transport.remaining()) == (1, 1)


def test_async_client_replays_in_order() -> None:
    """The same transport serves httpx.AsyncClient."""
    transport = ReplayTransport(cassette_of(*(answer(STATUS, f"s{n}") for n in range(3))))

    async def run() -> list[str]:
        async with httpx.AsyncClient(transport=transport) as client:
            return [(await client.get(STATUS)).text for _ in range(3)]

    assert asyncio.run(run()) == ["s0", "s1", "s2"]
    assert transport.remaining() == 0


def test_streamed_responses_replay() -> None:
    """``client.stream`` reads the recorded body too."""
    transport = ReplayTransport(cassette_of(answer(STATUS, "streamed body")))
    with httpx.Client(transport=transport) as client, client.stream("GET", STATUS) as response:
        assert b"".join(response.iter_bytes()) == b"streamed body"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_write_load_replay_round_trip(tmp_path: Path, suffix: str) -> None:
    """Written, loaded and replayed: identical bytes, status and headers, in order."""
    originals = [answer(STATUS, f'{{"poll": {n}}}', status=200 + n) for n in range(4)]
    path = tmp_path / f"c{suffix}"
    with CassetteWriter(path) as writer:
        for interaction in originals:
            writer.append(interaction)
    with httpx.Client(transport=ReplayTransport(str(path))) as client:
        responses = [client.get(STATUS) for _ in originals]
    for response, original in zip(responses, originals, strict=True):
        assert response.content == original.body
        assert response.status_code == original.status_code
        assert response.headers.multi_items() == list(original.headers)


def test_replays_a_gzip_cassette_vcrpy_recorded(tmp_path: Path) -> None:
    """vcrpy recorded a gzipping server; replay gives the plain bodies, in order."""
    bodies = iter([b'{"installs": [1]}', b'{"installs": [2]}'])

    def gzipping(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-encoding": "gzip"}, content=gzip.compress(next(bodies))
        )

    path = tmp_path / "vcrpy.yaml"
    with (
        vcr.use_cassette(str(path)),
        httpx.Client(transport=httpx.MockTransport(gzipping)) as client,
    ):
        live = [client.get(STATUS).json() for _ in range(2)]
    with httpx.Client(transport=ReplayTransport(path)) as client:
        replayed = [client.get(STATUS) for _ in range(2)]
    assert [r.json() for r in replayed] == live == [{"installs": [1]}, {"installs": [2]}]
    assert "content-encoding" not in replayed[0].headers


def test_vcrpy_and_we_serve_the_same_answers(tmp_path: Path) -> None:
    """On one cassette of ours, vcrpy's replay and ours return the same responses."""
    path = tmp_path / "c.yaml"
    with CassetteWriter(path) as writer:
        for n in range(3):
            writer.append(answer(STATUS, f"s{n}"))
            writer.append(answer(QUEUE, f"q{n}"))

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the network was reached")

    order = [STATUS, QUEUE, QUEUE, STATUS, STATUS, QUEUE]
    with (
        vcr.use_cassette(str(path), record_mode="none"),
        httpx.Client(transport=httpx.MockTransport(never)) as client,
    ):
        theirs = [(r.status_code, r.headers.multi_items(), r.text) for r in map(client.get, order)]
    with httpx.Client(transport=ReplayTransport(load_cassette(path))) as client:
        ours = [(r.status_code, r.headers.multi_items(), r.text) for r in map(client.get, order)]
    assert ours == theirs
    assert [text for _, _, text in ours] == ["s0", "q0", "q1", "s1", "s2", "q2"]


def test_invalid_uri_in_cassette_is_a_cassette_error() -> None:
    """A recorded URI httpx cannot parse is reported when the transport is built."""
    broken = answer("http://[::1/x", "s")
    with pytest.raises(CassetteError, match="invalid URI"):
        ReplayTransport(cassette_of(broken))


def test_missing_cassette_file_is_a_cassette_error(tmp_path: Path) -> None:
    """Given a path that does not exist, the transport raises CassetteError at once."""
    with pytest.raises(CassetteError, match="does not exist"):
        ReplayTransport(tmp_path / "missing.yaml")


def test_replay_opens_no_socket_and_queues_nothing_for_real(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replay answers every request from the cassette: not one connection is attempted,
    so it can never reach the API or queue a real install, whatever host it names."""
    import socket

    import cfanalytics

    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"replay tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    run = cfanalytics.replay(CASSETTES / "demo.yaml")
    assert run.progress.queued and not attempts
    assert (run.events["endpoint"] == "queue").sum() == len(run.progress.queued)
