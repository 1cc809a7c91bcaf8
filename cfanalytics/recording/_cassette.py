"""Cassettes in vcrpy's own file format: loaded fast, written scrubbed and atomically.

A cassette written here is a plain vcrpy cassette (``vcr.use_cassette`` replays it), and a
cassette vcrpy recorded loads here, including the ones whose compressed bodies vcrpy kept as
``!!binary`` (they are decompressed on load). Reading uses vcrpy's own serializers (its YAML
loader is built on libyaml's ``CSafeLoader`` when PyYAML has libyaml); writing goes through
``vcr.serialize.serialize``, with YAML keys kept in order so response headers stay in order.

Speed: Python's cyclic garbage collector is paused while a cassette is parsed or rendered
(and restored after). Building ~50 YAML nodes per interaction otherwise triggers full
collections over and over: 5,000 interactions parsed in 4.4 s with the collector on, 1.3 s
with it paused.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import httpx
import yaml
from vcr.filters import decode_response
from vcr.request import Request as VcrRequest
from vcr.serialize import serialize
from vcr.serializers import jsonserializer, yamlserializer

from .._files import write_atomically
from ..client import FILTERED, RawResponse, scrub, scrub_bytes
from ..exceptions import CassetteError

__all__ = ["FILTERED", "Cassette", "CassetteWriter", "Interaction", "load_cassette"]

"""What every secret is replaced with in a written cassette."""

Headers = tuple[tuple[str, str], ...]
SerializerName = Literal["yaml", "json"]

_DROPPED_REQUEST_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_PROBE = b"cfanalytics"
# What each content coding's packed form of _PROBE is; br and zstd need optional packages,
# which httpx needs as well to decode them.
_PACKERS: dict[str, tuple[str, str]] = {
    "gzip": ("gzip", "compress"),
    "deflate": ("zlib", "compress"),
    "br": ("brotli", "compress"),
    "zstd": ("zstandard", "compress"),
}


@functools.cache
def _httpx_decodes(coding: str) -> bool:
    """Whether httpx decodes ``coding``: it passes a coding it cannot decode through as it is,
    so ask it, with httpx's public API, to read a packed probe."""
    if coding == "identity":
        return True
    module, function = _PACKERS.get(coding, ("", ""))
    try:
        pack = getattr(importlib.import_module(module), function)
    except (ImportError, ValueError):
        return False
    response = httpx.Response(200, headers={"content-encoding": coding}, content=pack(_PROBE))
    try:
        return response.content == _PROBE
    except httpx.DecodingError:
        return False


class _Serializer(Protocol):
    def serialize(self, cassette_dict: dict[str, Any], /) -> str: ...
    def deserialize(self, cassette_string: str, /) -> Any: ...


class _OrderedYaml:
    """vcrpy's YAML serializer, but keys keep their order (vcrpy's dumper sorts them, which
    would reorder response headers). Only plain data is written, so the safe dumper suffices."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        return str(yaml.dump(cassette_dict, Dumper=_SAFE_DUMPER, sort_keys=False))

    @staticmethod
    def deserialize(cassette_string: str) -> Any:
        return yamlserializer.deserialize(cassette_string)


_ORDERED_YAML = _OrderedYaml()


@dataclass(frozen=True, slots=True)
class Interaction:
    """One recorded request and its response; ``body`` is always the plain (decoded) bytes."""

    method: str
    uri: str
    request_headers: Headers
    status_code: int
    reason: str
    headers: Headers
    body: bytes

    def __post_init__(self) -> None:
        # Three digits (RFC 9110); the events table holds statuses as Int16.
        if not 100 <= self.status_code <= 999:
            raise ValueError(f"status {self.status_code} is not an HTTP status code")

    @classmethod
    def from_httpx(cls, response: httpx.Response) -> Interaction:
        """Capture a live httpx response whose body was read.

        httpx has already decoded a gzip/deflate body, so ``content-encoding`` is dropped and
        ``content-length`` made to match the plain bytes.
        """
        request = response.request
        body = response.content
        headers = tuple(response.headers.multi_items())
        codings = {c.strip().lower() for c in response.headers.get_list("content-encoding", True)}
        if codings and all(map(_httpx_decodes, codings)):  # the body was decoded: say so
            headers = _plain_headers(headers, len(body))
        return cls(
            method=request.method,
            uri=str(request.url),
            request_headers=tuple(request.headers.multi_items()),
            status_code=response.status_code,
            reason=response.reason_phrase,
            headers=headers,
            body=body,
        )

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> str | None:
        """The first value of response header ``name`` (case-insensitive), or None."""
        return _first(self.headers, name)

    def to_raw(self) -> RawResponse:
        """The response as the client's :class:`RawResponse`."""
        return RawResponse(
            method=self.method,
            url=self.uri,
            status_code=self.status_code,
            headers=self.headers,
            text=self.text,
        )


@dataclass(frozen=True, slots=True)
class Cassette:
    """A loaded cassette: its interactions in recorded order, and its metadata."""

    interactions: tuple[Interaction, ...]
    metadata: dict[str, Any]
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.interactions)

    def __iter__(self) -> Iterator[Interaction]:
        return iter(self.interactions)


def load_cassette(path: str | os.PathLike[str]) -> Cassette:
    """Load a vcrpy cassette (``.json`` as JSON, any other suffix as YAML).

    Raises :class:`CassetteError` naming the file when it is missing, empty, corrupt, of
    vcrpy's pre-1.0 format, or not a cassette at all.
    """
    path = Path(path)
    text = _read_text(path)
    with _gc_paused():
        data = _parse(text, path)
        interactions = tuple(
            _interaction(raw, index, path) for index, raw in enumerate(data["interactions"])
        )
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CassetteError(f"cassette {path}: its 'metadata' is not a mapping; re-record it")
    return Cassette(interactions=interactions, metadata=metadata, path=path)


class CassetteWriter:
    """Collects interactions and writes them as one vcrpy cassette, scrubbed, atomically.

    Record mode "once": an existing file is refused unless ``overwrite=True``. Request headers
    ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` are dropped, and every string of
    ``secrets`` is replaced by :data:`FILTERED` in URIs, header values, bodies and metadata
    before anything is kept. Used as a context manager, it saves on exit, also when the block
    raises, so what was recorded is never lost.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serializer: SerializerName | None = None,
        metadata: Mapping[str, Any] | None = None,
        secrets: Sequence[str] = (),
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._serializer = _serializer(self.path, serializer)
        self._secrets = _checked_secrets(secrets)
        if self.path.exists() and not overwrite:
            raise CassetteError(
                f"cassette {self.path} already exists; replay it, or choose a new file "
                "(--overwrite, or overwrite=True, replaces it)"
            )
        self._interactions: list[Interaction] = []
        self._saved = False
        self._closed = False

    def __repr__(self) -> str:
        return f"CassetteWriter({str(self.path)!r}, interactions={len(self._interactions)})"

    def scrubbed_metadata(self) -> dict[str, Any]:
        """The metadata as it will be written: every secret replaced."""
        return dict(_scrub_value(self.metadata, self._secrets))

    @property
    def saved(self) -> bool:
        """Whether the cassette file has been written."""
        return self._saved

    @property
    def interactions(self) -> tuple[Interaction, ...]:
        """The interactions kept so far, scrubbed."""
        return tuple(self._interactions)

    def append(self, interaction: Interaction) -> Interaction:
        """Scrub ``interaction`` and keep it; returns the scrubbed copy that will be written."""
        if self._closed:
            raise ValueError(f"the cassette writer for {self.path} is closed")
        scrubbed = _scrub_interaction(interaction, self._secrets)
        self._interactions.append(scrubbed)
        return scrubbed

    def save(self) -> None:
        """Write every interaction kept so far: a temporary file, then ``os.replace``."""
        with _gc_paused():
            text = self._render()
        write_atomically(self.path, text, what="cassette", error=CassetteError)
        self._saved = True

    def close(self) -> None:
        """Save (unless nothing was ever recorded or saved) and refuse further appends."""
        if self._closed:
            return
        if self._interactions or self._saved:
            self.save()
        self._closed = True

    def __enter__(self) -> CassetteWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _render(self) -> str:
        cassette_dict = {
            "requests": [_vcr_request(i) for i in self._interactions],
            "responses": [_vcr_response(i) for i in self._interactions],
            "metadata": self.scrubbed_metadata(),
        }
        try:
            return str(serialize(cassette_dict, self._serializer))
        except (TypeError, ValueError, yaml.YAMLError) as exc:
            raise CassetteError(
                f"cannot write cassette {self.path}: {exc} "
                "(binary bodies need a YAML cassette; metadata must be plain data)"
            ) from exc


# --- loading ---------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """The file's text, or a :class:`CassetteError` saying why there is none."""
    if not path.exists():
        raise CassetteError(f"cassette {path} does not exist; record it first, or fix the path")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CassetteError(f"cannot read cassette {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CassetteError(f"cassette {path} is not UTF-8 text ({exc}); re-record it") from exc
    if not text.strip():
        raise CassetteError(f"cassette {path} is empty; delete it and record again")
    return text


def _parse(text: str, path: Path) -> dict[str, Any]:
    """The cassette's top-level mapping, checked to hold an ``interactions`` list."""
    serializer = _serializer(path, None)
    kind = "JSON" if serializer is jsonserializer else "YAML"
    try:
        data = serializer.deserialize(text)
    except (yaml.YAMLError, ValueError, ImportError, RecursionError) as exc:
        raise CassetteError(
            f"cassette {path} is not valid {kind} ({exc}); it may be truncated or edited "
            "by hand: re-record it"
        ) from exc
    if isinstance(data, list) and data and isinstance(data[0], dict) and "request" in data[0]:
        raise CassetteError(
            f"cassette {path} is in the format of vcrpy before 1.0; convert it with "
            f"`python -m vcr.migration {path}` or re-record it"
        )
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteError(
            f"{path} is not a vcrpy cassette (no 'interactions' list); check the path"
        )
    return data


def _interaction(raw: Any, index: int, path: Path) -> Interaction:
    """One interaction from its stored mapping (vcrpy's format, or its old httpx one)."""
    try:
        request, response = raw["request"], raw["response"]
        if "status_code" in response:  # recorded by vcrpy's httpx stub before 5.0
            status, reason = response["status_code"], ""
            body = response["content"]
        else:
            status, reason = response["status"]["code"], response["status"].get("message")
            body = response["body"]["string"]
        stored_headers = response.get("headers") or {}
        method, uri, status = str(request["method"]), str(request["uri"]), int(status)
        httpx.URL(uri)  # a URI httpx refuses would fail every reader later: refuse it here
        request_headers = _header_pairs(request.get("headers") or {})
    except (KeyError, TypeError, AttributeError, ValueError, httpx.InvalidURL) as exc:
        problem = (
            f"has no {exc.args[0]!r}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        )
        raise CassetteError(
            f"cassette {path}: interaction {index} {problem}; the file is not a complete vcrpy "
            "cassette (truncated, or edited by hand): re-record it"
        ) from exc
    headers, body = _decoded(stored_headers, body, f"cassette {path}: interaction {index}")
    try:
        return Interaction(method, uri, request_headers, status, str(reason or ""), headers, body)
    except ValueError as exc:
        raise CassetteError(
            f"cassette {path}: interaction {index} is malformed ({exc}); the file is not a "
            "complete vcrpy cassette (truncated, or edited by hand): re-record it"
        ) from exc


def _decoded(stored: Mapping[str, Any], body: Any, where: str) -> tuple[Headers, bytes]:
    """Plain body bytes and headers; a gzip/deflate body is decompressed by vcrpy's filter."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    elif not isinstance(body, bytes):
        raise CassetteError(f"{where} has a body of type {type(body).__name__}; re-record it")
    if not isinstance(stored, Mapping):
        raise CassetteError(f"{where} has headers that are not a mapping; re-record it")
    if any(str(name).lower() == "content-encoding" for name in stored):
        lists = {name: _values(value) for name, value in stored.items()}
        decoded = decode_response({"headers": lists, "body": {"string": body}})
        return _header_pairs(decoded["headers"]), decoded["body"]["string"]
    return _header_pairs(stored), body


def _header_pairs(stored: Mapping[str, Any]) -> Headers:
    """vcrpy's ``{name: [values]}`` as ordered pairs, multi-valued headers kept."""
    return tuple((str(name), value) for name, values in stored.items() for value in _values(values))


def _values(values: Any) -> list[str]:
    """A stored header's values: vcrpy writes a list; hand-written cassettes may not."""
    if isinstance(values, list | tuple):
        return [str(value) for value in values]
    return [str(values)]


# --- writing ---------------------------------------------------------------------------


def _serializer(path: Path, name: str | None) -> _Serializer:
    """The serializer named, else JSON for ``.json``, else YAML."""
    if name is None:
        name = "json" if path.suffix.lower() == ".json" else "yaml"
    if name not in ("yaml", "json"):
        raise ValueError(f"serializer must be 'yaml', 'json' or None, not {name!r}")
    return jsonserializer if name == "json" else _ORDERED_YAML


def _vcr_request(interaction: Interaction) -> VcrRequest:
    """The request as vcrpy holds it (one value per header name, as vcrpy records)."""
    headers: dict[str, str] = {}
    for name, value in interaction.request_headers:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return VcrRequest(interaction.method, interaction.uri, b"", headers)


def _vcr_response(interaction: Interaction) -> dict[str, Any]:
    """The response as vcrpy's httpx stub records it."""
    headers: dict[str, list[str]] = {}
    for name, value in interaction.headers:
        headers.setdefault(name, []).append(value)
    return {
        "status": {"code": interaction.status_code, "message": interaction.reason},
        "headers": headers,
        "body": {"string": interaction.body},
    }


# --- scrubbing -------------------------------------------------------------------------


def _checked_secrets(secrets: Sequence[str]) -> tuple[str, ...]:
    """Non-empty strings."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of strings, not one string")
    for secret in secrets:
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"every secret must be a non-empty string, not {secret!r}")
    return tuple(secrets)


def _scrub_interaction(interaction: Interaction, secrets: tuple[str, ...]) -> Interaction:
    """A copy without credential headers, with every secret replaced by :data:`FILTERED`."""
    request_headers = tuple(
        (name, scrub(value, secrets))
        for name, value in interaction.request_headers
        if name.lower() not in _DROPPED_REQUEST_HEADERS
    )
    return Interaction(
        method=interaction.method,
        uri=scrub(interaction.uri, secrets),
        request_headers=request_headers,
        status_code=interaction.status_code,
        reason=scrub(interaction.reason, secrets),
        headers=tuple((name, scrub(value, secrets)) for name, value in interaction.headers),
        body=scrub_bytes(interaction.body, secrets),
    )


def _scrub_value(value: Any, secrets: tuple[str, ...]) -> Any:
    """Metadata with secrets replaced in every string it holds (keys and values)."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {_scrub_value(k, secrets): _scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(item, secrets) for item in value]
    return value


def _first(headers: Headers, name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _plain_headers(headers: Headers, length: int) -> Headers:
    """Headers without ``content-encoding``; ``content-length`` set to ``length``."""
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-encoding":
            continue
        kept.append((name, str(length)) if lowered == "content-length" else (name, value))
    return tuple(kept)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) for the block; restore it after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
