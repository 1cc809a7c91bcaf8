"""Find credentials that leaked into recorded artifacts: cassettes, event logs, reports, notebooks.

The recorder scrubs what it writes, but artifacts also come from other tools, older versions,
hand edits and notebook outputs. This scanner is the independent check that nothing slipped
through (``cfanalytics scan-secrets PATH...``; CI runs it over the repository).

Known secrets (given, or ``CLANFORGE_ACCESS_KEY`` / ``CLANFORGE_SECRET_KEY``) are searched
literally in every form a leak takes: raw, base64, the Basic token ``base64(access:secret)``,
URL-, JSON- and HTML-escaped. Without them, heuristics still flag ``Authorization`` values,
Basic tokens that decode to ``user:password`` and key-looking values of names such as
``secret_key``; placeholders (``<FILTERED>``, ``${VAR}``, ``...``) and prose are not flagged.

Structured files are parsed, so a finding names where it is (``interaction 3 / request
headers.authorization[0]``, ``cell 4 / outputs[0].text[1]``, ``column joberror row 17``) and
gzip or ``!!binary`` bodies are read decoded; their raw lines are scanned too (comments,
duplicate keys), reporting only what the parsed scan did not. A finding's excerpt never holds
a secret: every suspicious span in it is cut to its first two characters and a length.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import html
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import quote, quote_plus

import yaml

from ..client import ENV_ACCESS_KEY, ENV_SECRET_KEY
from ._cassette import FILTERED

__all__ = ["MIN_SECRET_LENGTH", "SCANNED_SUFFIXES", "SKIPPED_DIRS", "Finding", "scan_paths"]

SCANNED_SUFFIXES = frozenset(
    {
        ".yaml",
        ".yml",
        ".json",
        ".jsonl",
        ".parquet",
        ".html",
        ".htm",
        ".md",
        ".ipynb",
        ".csv",
        ".txt",
        ".log",
    }
)
"""Data artifacts looked at when a folder is walked (also with ``.gz``); code is not."""
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox"}
)
"""Folders never walked (also any ``*_cache`` and ``*.egg-info``, and any virtual environment,
a folder holding ``pyvenv.cfg``, whatever its name: ``make test-lowest``'s ``.venv-lowest``)."""
MIN_SECRET_LENGTH = 6
"""Shorter known secrets would match everywhere: refused if given, ignored from the environment."""
MAX_PER_FILE = 50
"""A key leaked into every request of a cassette is listed this often, then counted."""
PARSE_LIMIT = 256 * 1024 * 1024
"""Bigger structured files are only streamed line by line, never parsed whole."""

_STRUCTURED = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".ipynb": "json"}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONTEXT = 30  # characters shown before a finding
_TOKEN = r"[A-Za-z0-9+/=._~-]"
_END = r"(?=$|[\s\"'`,;\]}<&\\])"  # where a key ends; '(', ')', '$' mean code or prose
_NAMES = (
    r"(?:access[_-]?key(?:[_-]?id)?|secret(?:[_-]?access)?[_-]?key|client[_-]?secret|secret"
    r"|api[_-]?key|password|passwd|pwd|(?:access[_-]?|auth[_-]?|bearer[_-]?)?token)"
)
_AUTH_RE = re.compile(
    rf"(?i)(?<![\w-])(?:proxy-)?authorization[\"']?\s*[:=]\s*(?:-\s+)?\[?\s*[\"']?"
    rf"((?:[a-z][\w-]*\s+)?{_TOKEN}{{8,}}){_END}"
)
_BASIC_RE = re.compile(rf"(?i)(?<![\w-])basic\s+([A-Za-z0-9+/_-]{{4,}}={{0,2}}){_END}")
_B64_RE = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{12,200}={0,2}(?![A-Za-z0-9+/=_-])")
_ASSIGN_RE = re.compile(
    rf"(?i)(?<![A-Za-z0-9])({_NAMES})[\"']?\s*[:=]\s*[\"']?({_TOKEN}{{8,}}){_END}"
)
_NAME_WORDS = ("key", "secret", "pass", "pwd", "token")
_NAME_RE = re.compile(rf"(?i)(?:^|[^A-Za-z0-9]){_NAMES}$")
_AUTH_NAMES = frozenset({"authorization", "proxy-authorization"})
_PLACEHOLDER_RE = re.compile(r"[xX*.…-]+|<[^<>]*>|\$\{?\w+\}?")
_PLACEHOLDERS = frozenset({FILTERED, "FILTERED", "REDACTED", "<REDACTED>", "***", ""})


@dataclass(frozen=True, slots=True)
class Finding:
    """One suspected leak. ``excerpt`` is redacted, so printing a finding leaks nothing."""

    path: str
    location: str  # "line 12", "interaction 3 / response body.string", "column x row 4"
    kind: str  # "known secret, url-encoded", "authorization header", ...
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}: {self.location}: {self.kind}: {self.excerpt}"


class _Needle(NamedTuple):
    text: str  # what is searched for
    kind: str
    source: str  # the secret or token it encodes


class _Known(NamedTuple):
    pattern: re.Pattern[str] | None  # any needle; None when no secret is known
    needles: dict[str, _Needle]  # by text


class _Hit(NamedTuple):
    start: int
    end: int
    kind: str
    fingerprint: str  # the same leak seen by the parsed and the line scan has one fingerprint


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    secrets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every suspected credential in the files and folders ``paths``, in file order.

    Folders are walked for :data:`SCANNED_SUFFIXES`; a file named explicitly is scanned
    whatever its suffix. ``secrets`` are known keys or tokens; the ``CLANFORGE_*`` keys of
    ``environ`` (``os.environ`` when None; pass ``{}`` to ignore it) are added. A file that
    cannot be read is a finding (kind "unreadable"): an unscanned file is not a clean one.
    Raises FileNotFoundError for a path that does not exist, before scanning anything.
    """
    if isinstance(paths, str | os.PathLike):
        raise TypeError("paths must be an iterable of paths, not one path")
    roots = [Path(p) for p in paths]
    missing = [str(p) for p in roots if not p.exists()]
    if missing:
        raise FileNotFoundError(f"nothing to scan at {', '.join(missing)}")
    known = _needles(secrets, os.environ if environ is None else environ)
    return [finding for path in _files(roots) for finding in _scan_file(path, known)]


# --- what to look for ------------------------------------------------------------------


def _known(secrets: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The given secrets (checked) and the environment's keys that are long enough."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of strings, not one string")
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"every secret must be a string of {MIN_SECRET_LENGTH}+ characters")
    from_env = [environ.get(name, "") for name in (ENV_ACCESS_KEY, ENV_SECRET_KEY)]
    return list(dict.fromkeys([*secrets, *(v for v in from_env if len(v) >= MIN_SECRET_LENGTH)]))


def _encodings(value: str) -> dict[str, str]:
    """Every form ``value`` takes once written into a URL, JSON, HTML or a form body."""
    url = quote(value, safe="")
    return {
        "": value,
        ", url-encoded": url,
        ", form-encoded": quote_plus(value),
        ", json-escaped": json.dumps(value)[1:-1],
        ", json-escaped (slashes)": json.dumps(value)[1:-1].replace("/", "\\/"),
        ", html-escaped": html.escape(value),
    }


def _needles(secrets: Sequence[str], environ: Mapping[str, str]) -> _Known:
    """Each known secret, its base64, and every Basic token of two of them, in each encoding.

    Padding is dropped from base64 forms so a token written without ``=`` is found too.
    One regex finds them all in one pass; longest first, so the fullest match names a leak.
    """
    known = _known(secrets, environ)
    forms: list[tuple[str, str, str]] = []
    for value in known:
        forms += [(value, "known secret", value)]
        forms += [(_b64(value).rstrip("="), "known secret, base64", value)]
    for first, second in permutations(known, 2):
        token = _b64(f"{first}:{second}")
        forms += [(token.rstrip("="), "known Basic token", token)]
    needles: dict[str, _Needle] = {}
    for value, kind, source in forms:
        for encoding, text in _encodings(value).items():
            needles.setdefault(text, _Needle(text, kind + encoding, source))
    texts = sorted(needles, key=len, reverse=True)
    pattern = re.compile("|".join(map(_any_hex_case, texts))) if texts else None
    return _Known(pattern, needles)


def _any_hex_case(text: str) -> str:
    """A regex for ``text`` whose ``%2F`` escapes also match ``%2f`` (both are valid)."""
    return re.sub(r"%([0-9A-F]{2})", r"%(?i:\1)", re.escape(text))


def _upper_hex(text: str) -> str:
    return re.sub(r"%[0-9a-fA-F]{2}", lambda m: m[0].upper(), text)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def _is_credential_pair(token: str, *, strict: bool) -> bool:
    """Whether base64 ``token`` decodes to ``user:password`` text, as a Basic token does.

    ``strict`` (a bare base64 run, no ``Basic`` before it) also wants no spaces, a user of
    3+ and a password of 4+ characters, and no URL, so random base64 rarely qualifies.
    """
    raw = token.rstrip("=")
    altchars = b"-_" if "-" in raw or "_" in raw else None
    try:
        data = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=altchars, validate=True)
        text = data.decode("ascii")
    except (binascii.Error, ValueError):
        return False
    user, colon, password = text.partition(":")
    if not (colon and user and password and text.isprintable()):
        return False
    if not strict:
        return True
    return " " not in text and len(user) >= 3 and len(password) >= 4 and password[:2] != "//"


def _placeholder(value: str) -> bool:
    """``<FILTERED>``, ``YOUR_TOKEN``, ``xxxx``, ``${KEY}``: stand-ins that documents show."""
    value = value.strip().strip("\"'")
    return value in _PLACEHOLDERS or _PLACEHOLDER_RE.fullmatch(value) is not None


def _key_looking(value: str) -> bool:
    """Whether a value given to a name like ``secret_key`` looks like a real key, not prose."""
    value = value.strip()
    if _placeholder(value) or len(value) < 8 or not re.fullmatch(f"{_TOKEN}+", value):
        return False
    mixed = value.lower() != value and value.upper() != value
    long_run = len(value) >= 16 and re.fullmatch(r"[A-Za-z0-9+/=]+", value) is not None
    return mixed or long_run or any(c.isdigit() for c in value)


def _hits(text: str, key: str, known: _Known) -> list[_Hit]:
    """Every suspicious span of ``text`` (``key``: the name it is stored under), best first."""
    hits: list[_Hit] = []
    if known.pattern is not None:
        for m in known.pattern.finditer(text):
            needle = known.needles[_upper_hex(m[0])]
            hits.append(_Hit(*m.span(), needle.kind, needle.source))
    if key.lower() in _AUTH_NAMES and not _placeholder(_last_word(text)):  # any real value
        hits.append(_Hit(0, len(text), "authorization header", _last_word(text)))
    elif _NAME_RE.search(key) and _key_looking(text):
        hits.append(_Hit(0, len(text), f"key-looking value of {key}", text.strip()))
    lowered = text.lower()  # the regexes are slow; most text has none of their words
    if "authorization" in lowered:
        for m in _AUTH_RE.finditer(text):
            if _key_looking(_last_word(m[1])):  # in prose, only what looks like a key
                hits.append(_Hit(*m.span(1), "authorization header", _last_word(m[1])))
    if "basic" in lowered:
        for m in _BASIC_RE.finditer(text):
            if _is_credential_pair(m[1], strict=False):
                hits.append(_Hit(*m.span(1), "Basic token of user:password", m[1]))
    for m in _B64_RE.finditer(text):
        if _is_credential_pair(m[0], strict=True):
            hits.append(_Hit(*m.span(), "base64 of user:password", m[0]))
    if any(word in lowered for word in _NAME_WORDS):
        for m in _ASSIGN_RE.finditer(text):
            if _key_looking(m[2]):
                hits.append(_Hit(*m.span(2), f"key-looking value of {m[1]}", m[2]))
    return hits


def _last_word(value: str) -> str:
    words = value.split()
    return words[-1] if words else value


# --- reporting a hit without leaking it ------------------------------------------------


def _scan_text(
    path: Path, where: str, key: str, text: str, known: _Known
) -> Iterator[tuple[str, Finding]]:
    """(fingerprint, finding) per hit in ``text``; overlapping hits are reported once."""
    hits = _hits(text, key, known)
    kept: list[_Hit] = []
    for hit in hits:
        if all(hit.end <= k.start or hit.start >= k.end for k in kept):
            kept.append(hit)
    spans = _merged([(h.start, h.end) for h in hits])
    for hit in sorted(kept):
        yield hit.fingerprint, Finding(str(path), where, hit.kind, _excerpt(text, hit, spans))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _excerpt(text: str, hit: _Hit, spans: list[tuple[int, int]]) -> str:
    """Up to 30 characters before the hit, then the hit; every suspicious span redacted."""
    low = max(0, hit.start - _CONTEXT)
    parts, position = ["…" if low else ""], low
    for start, end in spans:
        if end <= low:
            continue
        if start >= hit.end:
            break
        parts += [_printable(text[position:start]), _redacted(text[start:end])]
        position = end
    return "".join(parts)


def _redacted(value: str) -> str:
    """A scheme word (``Basic``) is kept; of the secret only 2 characters and a length."""
    scheme = re.match(r"[A-Za-z]+\s+(?=\S)", value)
    prefix, secret = (value[: scheme.end()], value[scheme.end() :]) if scheme else ("", value)
    return f"{_printable(prefix)}{secret[:2]}…[{len(secret)} chars]"


def _printable(value: str) -> str:
    value = re.sub(r"\s+", " ", value)
    return "".join(c if c.isprintable() else "?" for c in value)


# --- reading files ---------------------------------------------------------------------


def _files(roots: list[Path]) -> Iterator[Path]:
    """Files named, and the data artifacts under folders named (sorted, symlinks not followed)."""
    seen: set[Path] = set()
    for root in roots:
        found = [root]
        if root.is_dir():
            found = []
            for folder, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not _skipped(Path(folder, d)))
                found += [Path(folder, n) for n in sorted(names) if _scanned(n)]
        for path in found:
            if path.resolve() not in seen:  # a file named twice is reported once
                seen.add(path.resolve())
                yield path


def _scanned(name: str) -> bool:
    return _format(Path(name)) in SCANNED_SUFFIXES


def _skipped(folder: Path) -> bool:
    name = folder.name
    skipped = name in SKIPPED_DIRS or name.endswith(("_cache", ".egg-info"))
    return skipped or (folder / "pyvenv.cfg").is_file()


def _format(path: Path) -> str:
    """The suffix that says what the file holds, under any ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _scan_file(path: Path, known: _Known) -> list[Finding]:
    """The findings of one file: parsed scan first, then raw lines for what it missed."""
    try:
        found = [pair for unit in _parsed(path) for pair in _scan_text(path, *unit, known)]
        if _format(path) != ".parquet":
            seen = {fingerprint for fingerprint, _ in found}
            for unit in _lines(path):
                found += [p for p in _scan_text(path, *unit, known) if p[0] not in seen]
    except (OSError, EOFError, zlib.error, ValueError, ImportError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        return [Finding(str(path), "whole file", "unreadable", f"not scanned ({reason})")]
    findings = [finding for _, finding in found]
    if len(findings) <= MAX_PER_FILE:
        return findings
    more = f"{len(findings) - MAX_PER_FILE} more findings in this file are not listed"
    return [*findings[:MAX_PER_FILE], Finding(str(path), "whole file", "more findings", more)]


def _open(path: Path) -> IO[str]:
    """The file as text, gunzipped when it ends in ``.gz``; undecodable bytes replaced."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _lines(path: Path) -> Iterator[tuple[str, str, str]]:
    """(location, key, text) per line, streamed: any file, any size."""
    with _open(path) as lines:
        for number, line in enumerate(lines, 1):
            yield f"line {number}", "", line


def _parsed(path: Path) -> Iterator[tuple[str, str, str]]:
    """(location, key, text) for every string of a YAML/JSON/notebook file or Parquet table.

    Nothing for other formats, for files too big to parse whole, and for files that do not
    parse (their lines are still scanned).
    """
    kind = _format(path)
    if kind == ".parquet":
        yield from _parquet(path)
        return
    if kind not in _STRUCTURED or path.stat().st_size > PARSE_LIMIT:
        return
    with _open(path) as file:
        text = file.read()
    try:
        if _STRUCTURED[kind] == "json":
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_YAML_LOADER)
    except (ValueError, yaml.YAMLError, RecursionError):
        return
    yield from _strings(data, "", "")


def _strings(value: Any, where: str, key: str) -> Iterator[tuple[str, str, str]]:
    """Every string in parsed data (keys too), with its location and the key it is under."""
    if isinstance(value, bytes):
        value = _decoded(value)
    if isinstance(value, str):
        yield _location(where), key, value
    elif isinstance(value, Mapping):
        for name, item in value.items():
            name = str(name)
            yield _location(where) or "top level", "", name
            yield from _strings(item, f"{where}.{name}" if where else name, name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]", key)


def _location(where: str) -> str:
    """``interactions[3].request...`` as ``interaction 3 / request...`` (cells likewise)."""
    return re.sub(r"^(interaction|cell)s\[(\d+)\]\.?", r"\1 \2 / ", where)


def _decoded(data: bytes) -> str:
    """Binary bodies (YAML ``!!binary``, Parquet binary): gunzipped or inflated when they are."""
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        elif data[:1] == b"\x78":
            data = zlib.decompress(data)
    except (OSError, EOFError, zlib.error):
        pass  # not compressed after all: scan the bytes as they are
    return data.decode("utf-8", errors="replace")


def _parquet(path: Path) -> Iterator[tuple[str, str, str]]:
    """Every string of a Parquet file: metadata, column names, and cells, batch by batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        for name, value in (file.schema_arrow.metadata or {}).items():
            yield "metadata", _decoded(name), _decoded(value)
        yield from (("column names", "", name) for name in file.schema_arrow.names)
        first = 0
        for batch in file.iter_batches(batch_size=65_536):
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                if not _non_text(column.type):
                    yield from _cells(name, column.to_pylist(), first)
            first += batch.num_rows
    except pa.ArrowException as exc:
        raise ValueError(f"not a readable Parquet file: {exc}") from exc


def _cells(name: str, values: list[Any], first: int) -> Iterator[tuple[str, str, str]]:
    """A column's strings, each distinct one once (at its first row): logs repeat a lot."""
    rows: dict[str, int] = {}
    for row, value in enumerate(values, first):
        if isinstance(value, str):
            rows.setdefault(value, row)
        else:
            yield from _strings(value, f"column {name} row {row}", name)
    yield from ((f"column {name} row {row}", name, value) for value, row in rows.items())


def _non_text(kind: Any) -> bool:
    import pyarrow as pa

    checks = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_boolean,
        pa.types.is_temporal,
        pa.types.is_decimal,
        pa.types.is_null,
    )
    return any(check(kind) for check in checks)
