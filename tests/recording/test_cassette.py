"""Cassette reading and writing: vcrpy's format both ways, scrubbing, atomic saves, errors."""

from __future__ import annotations

import base64
import gc
import gzip
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import vcr
import yaml
from vcr.serializers import yamlserializer

from cfanalytics.exceptions import CassetteError
from cfanalytics.recording import FILTERED, Cassette, CassetteWriter, Interaction, load_cassette

from ..conftest import ACCESS_KEY, SECRET_KEY

BASE = "https://api.multiplay.co.uk"
STATUS = f"{BASE}/cfp/v1/imageinstall/status?accountserviceid=1"
TOKEN = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()


def status_body(poll: int) -> bytes:
    """A Clanforge status list whose progress changes with each poll."""
    job = {"jobid": 7, "jobstateid": 4, "jobstatename": "Running", "jobprogress": poll}
    return json.dumps({"installs": [job]}).encode()


def poll(number: int, *, uri: str = STATUS) -> Interaction:
    """One recorded status poll, with a multi-valued response header."""
    return Interaction(
        method="GET",
        uri=uri,
        request_headers=(("host", "api.multiplay.co.uk"), ("accept", "*/*")),
        status_code=200,
        reason="OK",
        headers=(
            ("content-type", "application/json"),
            ("set-cookie", f"a={number}"),
            ("set-cookie", "b=2"),
            ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ),
        body=status_body(number),
    )


def write(path: Path, interactions: list[Interaction], **options: object) -> Path:
    """Write ``interactions`` with a CassetteWriter and return the path."""
    with CassetteWriter(path, **options) as writer:  # type: ignore[arg-type]
        for interaction in interactions:
            writer.append(interaction)
    return path


def record_with_vcrpy(path: Path, handler: Callable[[httpx.Request], httpx.Response]) -> None:
    """Let vcrpy itself record three polls answered in-process by ``handler``."""
    with vcr.use_cassette(str(path)), httpx.Client(transport=httpx.MockTransport(handler)) as c:
        for _ in range(3):
            c.get(STATUS, headers={"Authorization": f"Basic {TOKEN}"})


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_keeps_every_field(tmp_path: Path, suffix: str) -> None:
    """Written then loaded: same interactions, in order, multi-valued headers kept."""
    interactions = [poll(n) for n in range(5)]
    path = write(tmp_path / f"c{suffix}", interactions)
    loaded = load_cassette(path)
    assert loaded.interactions == tuple(interactions)
    assert loaded.path == path
    assert len(loaded) == 5
    assert [i.header("Set-Cookie") for i in loaded] == [f"a={n}" for n in range(5)]


def test_suffix_chooses_the_serializer(tmp_path: Path) -> None:
    """``.json`` is written as JSON, anything else as YAML; ``serializer=`` overrides."""
    as_json = write(tmp_path / "a.json", [poll(1)])
    as_yaml = write(tmp_path / "a.cassette", [poll(1)])
    forced = write(tmp_path / "b.yaml", [poll(1)], serializer="json")
    assert json.loads(as_json.read_text())["interactions"][0]["request"]["method"] == "GET"
    assert as_yaml.read_text().startswith("version: 1\ninteractions:\n")
    assert json.loads(forced.read_text())["version"] == 1


def test_unknown_serializer_is_a_value_error(tmp_path: Path) -> None:
    """A serializer name other than yaml/json is a programmer error."""
    with pytest.raises(ValueError, match="serializer"):
        CassetteWriter(tmp_path / "c.yaml", serializer="toml")  # type: ignore[arg-type]


def test_binary_body_round_trips_in_yaml(tmp_path: Path) -> None:
    """A body that is not UTF-8 is kept byte for byte (as ``!!binary``)."""
    raw = bytes(range(256))
    interaction = Interaction("GET", STATUS, (), 200, "OK", (), raw)
    path = write(tmp_path / "bin.yaml", [interaction])
    assert "!!binary" in path.read_text()
    assert load_cassette(path).interactions[0].body == raw


def test_binary_body_cannot_go_to_json(tmp_path: Path) -> None:
    """JSON cannot hold a non-UTF-8 body: a CassetteError that points to YAML."""
    writer = CassetteWriter(tmp_path / "bin.json")
    writer.append(Interaction("GET", STATUS, (), 200, "OK", (), b"\xff\xfe"))
    with pytest.raises(CassetteError, match="YAML"):
        writer.save()
    assert not (tmp_path / "bin.json").exists()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_metadata_round_trips_and_vcrpy_sees_it(tmp_path: Path, suffix: str) -> None:
    """Metadata is stored under vcrpy's top-level ``metadata`` key."""
    meta = {"run_id": "r-1", "plan": {"asid": 1, "interval": 15}, "tags": ["a", "b"]}
    path = write(tmp_path / f"m{suffix}", [poll(1)], metadata=meta)
    assert load_cassette(path).metadata == meta
    with vcr.use_cassette(str(path), record_mode="none", serializer=suffix[1:]) as cassette:
        assert cassette.get_metadata("run_id", None) == "r-1"


def test_cassette_without_metadata_loads_empty_metadata(tmp_path: Path) -> None:
    """No metadata written, none read: an empty dict, not None."""
    assert load_cassette(write(tmp_path / "c.yaml", [poll(1)])).metadata == {}


def test_interaction_helpers() -> None:
    """``text`` decodes leniently, ``header`` ignores case, ``to_raw`` keeps everything."""
    interaction = Interaction("GET", STATUS, (), 503, "Busy", (("X-A", "1"),), b"ok \xff")
    assert interaction.text == "ok \ufffd"
    assert interaction.header("x-a") == "1"
    assert interaction.header("x-b") is None
    raw = interaction.to_raw()
    assert (raw.method, raw.url, raw.status_code) == ("GET", STATUS, 503)
    assert raw.headers == (("X-A", "1"),)
    assert raw.text == "ok \ufffd"


def test_from_httpx_keeps_the_plain_body_of_a_gzipped_response() -> None:
    """httpx decodes gzip; the interaction drops content-encoding and fixes the length."""
    plain = status_body(3)
    packed = gzip.compress(plain)

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-encoding": "gzip", "content-length": str(len(packed))}
        return httpx.Response(200, headers=headers, content=packed)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        interaction = Interaction.from_httpx(client.get(STATUS))
    assert interaction.body == plain
    assert interaction.header("content-encoding") is None
    assert interaction.header("content-length") == str(len(plain))
    assert (interaction.method, interaction.uri, interaction.reason) == ("GET", STATUS, "OK")


def test_from_httpx_keeps_an_encoding_httpx_did_not_decode() -> None:
    """An unknown content coding stays, with the bytes as they came: replay stays faithful."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "x-custom"}, content=b"\x01\x02")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        interaction = Interaction.from_httpx(client.get(STATUS))
    assert interaction.header("content-encoding") == "x-custom"
    assert interaction.body == b"\x01\x02"


def test_loads_a_cassette_vcrpy_recorded(tmp_path: Path) -> None:
    """vcrpy's own recording (httpx + MockTransport) loads: order, bodies, multi headers."""
    count = iter(range(3))

    def handler(request: httpx.Request) -> httpx.Response:
        headers = [("set-cookie", "a=1"), ("set-cookie", "b=2")]
        return httpx.Response(200, headers=headers, content=status_body(next(count)))

    path = tmp_path / "vcrpy.yaml"
    record_with_vcrpy(path, handler)
    loaded = load_cassette(path)
    assert [i.body for i in loaded] == [status_body(n) for n in range(3)]
    assert [v for k, v in loaded.interactions[0].headers if k == "set-cookie"] == ["a=1", "b=2"]
    assert loaded.interactions[0].uri == STATUS
    assert loaded.interactions[0].reason == "OK"


@pytest.mark.parametrize(
    ("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
def test_loads_compressed_bodies_as_vcrpy_stores_them(
    tmp_path: Path, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    """vcrpy keeps a compressing server's bytes as !!binary; loading decompresses them."""
    count = iter(range(3))

    def handler(request: httpx.Request) -> httpx.Response:
        packed = compress(status_body(next(count)))
        headers = {"content-encoding": encoding, "content-length": str(len(packed))}
        return httpx.Response(200, headers=headers, content=packed)

    path = tmp_path / "packed.yaml"
    record_with_vcrpy(path, handler)
    text = path.read_text()
    assert "!!binary" in text and encoding in text
    loaded = load_cassette(path)
    assert [i.body for i in loaded] == [status_body(n) for n in range(3)]
    first = loaded.interactions[0]
    assert first.header("content-encoding") is None
    assert first.header("content-length") == str(len(first.body))


def test_loads_the_old_httpx_stub_format(tmp_path: Path) -> None:
    """Cassettes from vcrpy's early httpx stub (``status_code``/``content``) still load."""
    response = {"status_code": 201, "headers": {"x": ["1"]}, "content": '{"ok": true}'}
    request = {"method": "GET", "uri": STATUS, "body": "", "headers": {}}
    data = {"version": 1, "interactions": [{"request": request, "response": response}]}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    (interaction,) = load_cassette(path).interactions
    assert (interaction.status_code, interaction.body) == (201, b'{"ok": true}')
    assert interaction.headers == (("x", "1"),)


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    """Credential headers are dropped and every secret is replaced, wherever it was."""
    leaky = Interaction(
        method="GET",
        uri=f"{STATUS}&key={ACCESS_KEY}",
        request_headers=(
            ("Authorization", f"Basic {TOKEN}"),
            ("Cookie", "session=1"),
            ("Proxy-Authorization", "Basic eA=="),
            ("x-echo", SECRET_KEY),
        ),
        status_code=200,
        reason="OK",
        headers=(("x-debug", f"token {TOKEN}"),),
        body=f'{{"echo": "{SECRET_KEY}", "auth": "{TOKEN}"}}'.encode(),
    )
    path = tmp_path / "s.yaml"
    meta = {"base_url": f"https://{ACCESS_KEY}@example.test"}
    write(path, [leaky], secrets=[ACCESS_KEY, SECRET_KEY, TOKEN], metadata=meta)
    data = path.read_bytes()
    for secret in (ACCESS_KEY, SECRET_KEY, TOKEN, "session=1", "eA=="):
        assert secret.encode() not in data
    assert b"authorization" not in data.lower() and b"cookie" not in data.lower()
    (loaded,) = load_cassette(path).interactions
    assert loaded.uri.endswith(f"key={FILTERED}")
    assert loaded.request_headers == (("x-echo", FILTERED),)
    assert loaded.body == f'{{"echo": "{FILTERED}", "auth": "{FILTERED}"}}'.encode()


def test_a_secret_containing_another_is_replaced_whole(tmp_path: Path) -> None:
    """Longer secrets go first, so no fragment of one survives around the other."""
    interaction = Interaction("GET", STATUS, (), 200, "OK", (), b"abc-secret-xyz")
    writer = CassetteWriter(tmp_path / "c.yaml", secrets=["secret", "abc-secret-xyz"])
    assert writer.append(interaction).body == FILTERED.encode()


@pytest.mark.parametrize("secrets", [[""], "secret"])
def test_bad_secrets_are_refused(tmp_path: Path, secrets: object) -> None:
    """An empty secret (would filter everything) or a bare string is a programmer error."""
    with pytest.raises((ValueError, TypeError)):
        CassetteWriter(tmp_path / "c.yaml", secrets=secrets)  # type: ignore[arg-type]


def test_refuses_to_overwrite_an_existing_cassette(tmp_path: Path) -> None:
    """Record mode "once": an existing file is refused unless overwrite=True."""
    path = write(tmp_path / "c.yaml", [poll(1)])
    with pytest.raises(CassetteError, match="already exists; replay it, or choose a new file"):
        CassetteWriter(path)
    write(path, [poll(2), poll(3)], overwrite=True)
    assert [i.body for i in load_cassette(path)] == [status_body(2), status_body(3)]


def test_failed_save_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save is atomic: a failure before the rename keeps the old cassette intact."""
    path = write(tmp_path / "c.yaml", [poll(1)])
    before = path.read_bytes()
    writer = CassetteWriter(path, overwrite=True)
    writer.append(poll(2))

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CassetteError, match="No space left"):
        writer.save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_save_rewrites_the_whole_file(tmp_path: Path) -> None:
    """Each save writes everything kept so far; no temporary files stay behind."""
    path = tmp_path / "sub" / "c.yaml"
    writer = CassetteWriter(path)
    writer.append(poll(1))
    writer.save()
    writer.append(poll(2))
    writer.save()
    assert len(load_cassette(path)) == 2
    assert [p.name for p in path.parent.iterdir()] == ["c.yaml"]


def test_context_manager_saves_when_the_block_raises(tmp_path: Path) -> None:
    """What was recorded before an error is on disk after it."""
    path = tmp_path / "c.yaml"
    with pytest.raises(RuntimeError, match="poll loop broke"), CassetteWriter(path) as writer:
        writer.append(poll(1))
        writer.append(poll(2))
        raise RuntimeError("poll loop broke")
    assert [i.body for i in load_cassette(path)] == [status_body(1), status_body(2)]


def test_nothing_recorded_writes_no_file(tmp_path: Path) -> None:
    """A run that recorded nothing leaves no empty cassette to block the next attempt."""
    with CassetteWriter(tmp_path / "c.yaml"):
        pass
    assert not (tmp_path / "c.yaml").exists()


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    """A closed writer takes no more interactions; closing twice is harmless."""
    writer = CassetteWriter(tmp_path / "c.yaml")
    writer.append(poll(1))
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.append(poll(2))
    assert len(load_cassette(tmp_path / "c.yaml")) == 1


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_vcrpy_replays_a_cassette_we_wrote(tmp_path: Path, suffix: str) -> None:
    """vcrpy serves our file, in order, without calling the transport it wraps."""
    path = write(tmp_path / f"c{suffix}", [poll(n) for n in range(4)], secrets=[SECRET_KEY])

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"vcrpy reached the transport for {request.url}")

    serializer = suffix[1:]
    with (
        vcr.use_cassette(str(path), record_mode="none", serializer=serializer),
        httpx.Client(transport=httpx.MockTransport(never)) as client,
    ):
        responses = [client.get(STATUS, auth=("other", "keys")) for _ in range(4)]
    assert [r.content for r in responses] == [status_body(n) for n in range(4)]
    assert responses[0].headers.get_list("set-cookie") == ["a=0", "b=2"]
    assert responses[0].reason_phrase == "OK"


def test_vcrpy_yaml_loader_is_libyaml() -> None:
    """The speed of YAML loading rests on vcrpy using libyaml's CSafeLoader."""
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml")
    assert issubclass(yamlserializer._CassetteLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("enabled", [True, False])
def test_loading_restores_the_garbage_collector(tmp_path: Path, enabled: bool) -> None:
    """The collector is paused while parsing, then left as it was found."""
    path = write(tmp_path / "c.yaml", [poll(1)])
    (gc.enable if enabled else gc.disable)()
    try:
        load_cassette(path)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


CORRUPT = {
    "empty.yaml": "",
    "blank.yaml": "  \n\n",
    "broken.yaml": "interactions: [\n  - request: {",
    "broken.json": '{"interactions": [',
    "mapping.yaml": "foo: 1\n",
    "list.json": "[1, 2]",
    "scalar.yaml": "just text\n",
    "no-response.yaml": "interactions:\n- request: {method: GET, uri: 'http://x/'}\n",
    "no-status.yaml": (
        "interactions:\n- request: {method: GET, uri: 'http://x/'}\n"
        "  response: {headers: {}, body: {string: ''}}\n"
    ),
    "bad-interaction.json": '{"interactions": ["text"]}',
    "bad-status.yaml": (
        "interactions:\n- request: {method: GET, uri: 'http://x/'}\n"
        "  response: {status: {code: abc}, headers: {}, body: {string: ''}}\n"
    ),
    "old-format.yaml": "- request: {method: GET, uri: 'http://x/'}\n  response: {}\n",
    "object-tag.yaml": "interactions: !!python/object/apply:os.system ['true']\n",
    "bad-metadata.yaml": "interactions: []\nmetadata: [1]\n",
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_broken_files_raise_cassette_error(tmp_path: Path, name: str) -> None:
    """Every kind of broken file is one CassetteError naming the file (never a parser error)."""
    path = tmp_path / name
    path.write_text(CORRUPT[name])
    with pytest.raises(CassetteError, match=name) as info:
        load_cassette(path)
    hints = ("re-record", "record again", "check the path", "vcr.migration")
    assert any(hint in str(info.value) for hint in hints), str(info.value)


def test_missing_and_undecodable_files_raise_cassette_error(tmp_path: Path) -> None:
    """A path that does not exist, or bytes that are not UTF-8: CassetteError."""
    with pytest.raises(CassetteError, match="does not exist; record it first"):
        load_cassette(tmp_path / "nope.yaml")
    (tmp_path / "latin.yaml").write_bytes(b"interactions: []\n# \xff\n")
    with pytest.raises(CassetteError, match="not UTF-8"):
        load_cassette(tmp_path / "latin.yaml")


def test_a_cassette_with_no_interactions_loads_empty(tmp_path: Path) -> None:
    """``interactions: []`` is a valid, empty cassette."""
    path = tmp_path / "none.yaml"
    path.write_text("interactions: []\nversion: 1\n")
    assert load_cassette(path) == Cassette(interactions=(), metadata={}, path=path)
