"""Hostile cassettes: corrupt YAML/JSON, missing keys, wrong types, binary and gzip bodies,
other hosts and endpoints (issue 7, part 3). Loading and reading one ends in data or a
:class:`CfAnalyticsError`; the CLI turns the error into exit code 2 and one line.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfanalytics import CfAnalyticsError
from cfanalytics.cli import main
from cfanalytics.events import validate
from cfanalytics.recording import events_from_cassette, load_cassette

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
STATUS = "https://api.multiplay.co.uk/cfp/v1/imageinstall/status?accountserviceid=1"
BODY = json.dumps({"installs": [{"jobid": 1, "jobstateid": 4, "jobprogress": 50}]})


def interaction(uri: str = STATUS, body: Any = BODY, **response: Any) -> dict[str, Any]:
    """One interaction in vcrpy's format."""
    return {
        "request": {"method": "GET", "uri": uri, "body": None, "headers": {}},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"Date": ["Tue, 14 Nov 2023 22:13:20 GMT"]},
            "body": {"string": body},
        }
        | response,
    }


def cassette_text(interactions: list[Any], *, as_json: bool = False) -> str:
    data = {"interactions": interactions, "version": 1}
    return json.dumps(data) if as_json else yaml.safe_dump(data)


def read_or_refuse(path: Path) -> None:
    """Load and read ``path``; anything but data or a CfAnalyticsError fails the test."""
    try:
        load_cassette(path)
        frame = events_from_cassette(path)
    except CfAnalyticsError:
        return
    validate(frame)


VALID = cassette_text([interaction(), interaction()])
hostile = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.binary(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(st.integers(0, len(VALID)), st.binary(max_size=12), st.sampled_from([".yaml", ".json"]))
def test_corrupt_files_load_or_raise_cassette_error(
    tmp_path_factory: pytest.TempPathFactory, cut: int, noise: bytes, suffix: str
) -> None:
    """A cassette truncated anywhere, with any bytes spliced in (invalid UTF-8 too)."""
    text = VALID if suffix == ".yaml" else cassette_text([interaction()] * 2, as_json=True)
    path = tmp_path_factory.mktemp("c") / f"c{suffix}"
    path.write_bytes(text.encode()[:cut] + noise + text.encode()[cut:][: len(noise)])
    read_or_refuse(path)


@FUZZ
@given(st.lists(hostile | st.builds(interaction), max_size=3), st.booleans())
def test_wrong_shapes_load_or_raise_cassette_error(
    tmp_path_factory: pytest.TempPathFactory, items: list[Any], as_json: bool
) -> None:
    """Interactions that are not mappings, or lack keys, or hold values of any type."""
    path = tmp_path_factory.mktemp("c") / ("c.json" if as_json else "c.yaml")
    try:
        text = cassette_text(items, as_json=as_json)
    except (TypeError, ValueError):  # bytes do not go into JSON
        text = cassette_text(items)
        path = path.with_suffix(".yaml")
    path.write_text(text)
    read_or_refuse(path)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid interaction with one key removed or replaced by a hostile value."""
    item = interaction(
        uri=draw(
            st.sampled_from(
                [
                    STATUS,
                    "https://example.com/other?accountserviceid=1",
                    "https://api.multiplay.co.uk/cfp/v1/imageinstall/12/queue?mirroring=maybe",
                    "https://api.multiplay.co.uk/cfp/v2/project/1/image/2/status",
                    "not a url at all",
                    "http://[::1",
                ]
            )
        ),
        body=draw(
            st.sampled_from([BODY, BODY.encode(), gzip.compress(BODY.encode()), b"\xff\xfe"])
        ),
    )
    if draw(st.booleans()):
        item["response"]["headers"]["Content-Encoding"] = [
            draw(st.sampled_from(["gzip", "deflate", "br"]))
        ]
    part = draw(st.sampled_from(["request", "response"]))
    key = draw(st.sampled_from(sorted(item[part])))
    if draw(st.booleans()):
        del item[part][key]
    else:
        item[part][key] = draw(hostile)
    return item


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=3))
def test_mutated_interactions_read_or_raise(
    tmp_path_factory: pytest.TempPathFactory, items: list[dict[str, Any]]
) -> None:
    """Other hosts and endpoints, binary and gzip bodies (some lying about their coding)."""
    path = tmp_path_factory.mktemp("c") / "c.yaml"
    path.write_text(cassette_text(items))
    read_or_refuse(path)


CORRUPT = {
    "truncated.yaml": VALID[: VALID.index("uri:")],
    "not-yaml.yaml": "interactions: [\n  {request: ",
    "no-interactions.yaml": "metadata: {}\n",
    "latin1.yaml": None,
    "bad-uri.yaml": cassette_text([interaction(uri="http://[::1")]),
    "missing-key.json": json.dumps({"interactions": [{"request": {"uri": STATUS}}]}),
}


@pytest.mark.parametrize("command", ["summary", "replay"])
@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_cli_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, name: str
) -> None:
    """``cfanalytics summary|replay FILE`` on a corrupt cassette: exit 2, one line, no traceback."""
    path = tmp_path / name
    text = CORRUPT[name]
    path.write_bytes(b"interactions: [\xe9]\n" if text is None else text.encode())
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cfanalytics: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def _big_cassette(path: Path, megabytes: int) -> int:
    """A YAML cassette of about ``megabytes`` MB; returns its number of interactions."""
    one = cassette_text([interaction(body=BODY + " " * 4_000)])
    item = one[one.index("interactions:") + len("interactions:\n") : one.index("version:")]
    count = megabytes * 1_000_000 // len(item) + 1
    with path.open("w") as out:
        out.write("interactions:\n")
        for _ in range(count):
            out.write(item)
    return count


def test_a_large_cassette_is_read_in_full(tmp_path: Path) -> None:
    """A 5 MB cassette: every interaction is read, and quickly (it scales linearly)."""
    path = tmp_path / "big.yaml"
    count = _big_cassette(path, 5)
    started = time.perf_counter()
    frame = validate(events_from_cassette(path))
    assert len(frame) == count
    assert time.perf_counter() - started < 20


@pytest.mark.skipif(os.environ.get("CFANALYTICS_BIG") != "1", reason="set CFANALYTICS_BIG=1")
def test_a_100_mb_cassette_is_read_in_full(tmp_path: Path) -> None:
    """The 100 MB case of issue 7 (slow: behind CFANALYTICS_BIG=1)."""
    path = tmp_path / "huge.yaml"
    count = _big_cassette(path, 100)
    assert len(validate(events_from_cassette(path))) == count


def test_a_non_ascii_digit_in_the_asid_is_refused(tmp_path: Path) -> None:
    """Found by the fuzzing above: '²'.isdigit() is True, but it is no ASID."""
    path = tmp_path / "c.yaml"
    path.write_text(cassette_text([interaction(uri=STATUS.replace("=1", "=²"))]))
    read_or_refuse(path)
    try:
        frame = events_from_cassette(path)
    except CfAnalyticsError:
        return
    assert not (frame["asid"] == 2).any(), "'²' was read as the ASID 2"


@pytest.mark.parametrize("code", [0, 99, 1000, 70_000, -200])
def test_a_status_that_is_no_http_status_is_refused(tmp_path: Path, code: int) -> None:
    """A status code is three digits; any other is a malformed cassette, named as such."""
    path = tmp_path / "c.yaml"
    path.write_text(cassette_text([interaction(status={"code": code, "message": "?"})]))
    with pytest.raises(CfAnalyticsError, match=f"interaction 0 is malformed.*{code}"):
        load_cassette(path)
