"""Repeated keys through pyarrow (issue 14, section 4): the rewrite path against the exact ones.

The pyarrow reader rewrites every occurrence of a repeated key into a slot of its own
(:mod:`cfanalytics.events._dupkeys`). These differential tests generate status bodies with keys
repeated in every place (first, last, between others, three times, several keys, null and
mixed values, other spellings and spacings, the key inside strings, the marker itself) and
hold the fast path to the rows of the client's row reader and of the Python column reader,
``__duplicates__`` included.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfanalytics.client import RawResponse
from cfanalytics.events import Exchange, conform, events_from_exchanges, exchange_rows
from cfanalytics.events._arrow import eligible, read_bodies
from cfanalytics.events._dupkeys import MARK, Rewriter, repeated_key
from cfanalytics.events._fast import StatusBody, _python_columns

URL = "https://api.multiplay.co.uk/cfp/v1/imageinstall/status?accountserviceid=3"
DATE = (("date", "Tue, 14 Nov 2023 22:13:20 GMT"),)
DIFF = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Pairs = list[tuple[str, Any]]

#: Plain values each field's rule reads without judgement, by field: a batch picks one list per
#: field (pyarrow wants one type per field in a batch; mixing sends the batch to the exact readers).
PLAIN: dict[str, list[list[Any]]] = {
    "jobid": [[7, 8, 9, 12345]],
    "jobcreated": [[1793609100, None]],
    "joberror": [[None, "", "image locked by diffid: 218595", 'say "restart": now']],
    "jobeta": [[1793610600, None]],
    "jobfailed": [[0, 1, 3]],
    "jobprogress": [[0, 40, 100, None]],
    "jobstart": [["1793610000", "", None], [1793610000, None]],
    "jobstateid": [[1, 4, 6, None]],
    "jobstatename": [["Running", "Failed", "Completed", None]],
    "jobupdated": [[1793610300]],
    "mirroring": [[True, False, None], [0, 1, None]],
    "restart": [[True, False, None], [0, 1, None]],
    "location": [["London", "Zürich", "a {b} c", None], [7, 8, None]],
    "machine": [[31001, 31002, None], ["m-1", "", None]],
    "imagepath": [["/games/arena/server"]],
    "install_at": [[None, 1793612000]],
    "mirror": [["mirror-lon-01", "restart", None]],
    "target_imageversionid": [[21, 22]],
}
#: Values that need the exact readers (flagged, or of a type pyarrow reads otherwise).
ODD = [1.5, 2.0, "x", "17e8", -1, 2**63, "true", [1], {"a": 1}, "\x7f", "²"]


def job(rng: random.Random, jobid: int, plain: dict[str, list[Any]]) -> Pairs:
    """A plain job: most fields, in a shuffled order."""
    names = [n for n in plain if n != "jobid" and rng.random() < 0.85]
    rng.shuffle(names)
    pairs = [(n, rng.choice(plain[n])) for n in names]
    pairs.insert(rng.randrange(len(pairs) + 1), ("jobid", jobid))
    return pairs


def repeat(rng: random.Random, pairs: Pairs, plain: dict[str, list[Any]], *, odd: bool) -> Pairs:
    """``pairs`` with a key sent again (1 or 2 more times), somewhere, maybe oddly valued."""
    key = rng.choice(["restart", "restart", "mirroring", "jobstatename", "location", "jobid"])
    pool = plain[key] + (ODD if odd else [])
    for _ in range(rng.choice([1, 1, 2])):
        value = rng.choice(pool) if key != "jobid" else rng.choice([7, 8, 9])
        pairs = [*pairs]
        pairs.insert(rng.randrange(len(pairs) + 1), (key, value))
    return pairs


def text_of(pairs: Pairs, rng: random.Random, *, style: str) -> str:
    """One job object as JSON text, keys as given (repeats kept), in a chosen spacing."""
    comma, colon = {"plain": (", ", ": "), "compact": (",", ":"), "odd": (" ,  ", " : ")}[style]
    ascii_only = rng.random() < 0.3

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))

    return "{" + comma.join(f"{dumps(k)}{colon}{dumps(v)}" for k, v in pairs) + "}"


def plain_values(rng: random.Random) -> dict[str, list[Any]]:
    """One choice of plain values per field, for a batch."""
    return {name: rng.choice(lists) for name, lists in PLAIN.items()}


def body(
    rng: random.Random,
    plain: dict[str, list[Any]] | None = None,
    *,
    odd: float = 0.0,
    style: str = "plain",
) -> str:
    """A status body of 1-6 jobs, each with a chance of repeated keys."""
    plain = plain or plain_values(rng)
    jobs = []
    for n in range(rng.randint(1, 6)):
        pairs = job(rng, 100 + n, plain)
        if rng.random() < 0.7:
            pairs = repeat(rng, pairs, plain, odd=rng.random() < odd)
        jobs.append(text_of(pairs, rng, style=style))
    comma = "," if style == "compact" else ", "
    return '{"installs": [' + comma.join(jobs) + "]}"


def exchanges(texts: list[str]) -> list[Exchange]:
    return [Exchange("GET", URL, RawResponse("GET", URL, 200, DATE, t)) for t in texts]


def row_reader(found: list[Exchange]) -> pd.DataFrame:
    """The reference: the client's own readers, row by row."""
    rows = [r for seq, e in enumerate(found) for r in exchange_rows(e, run_id="d", seq=seq)]
    return conform(pd.DataFrame(rows))


def python_columns(texts: list[str]) -> tuple[dict[str, Any], list[int]]:
    """The Python column reader alone (the path every body took before the rewrite)."""
    bodies = [StatusBody(seq, None, 200, 3, t) for seq, t in enumerate(texts)]
    columns, _, leftovers = _python_columns(bodies)
    return columns, leftovers


@DIFF
@given(st.integers(0, 2**32), st.sampled_from(["plain", "compact"]))
def test_plain_repeats_are_read_by_pyarrow_and_match(seed: int, style: str) -> None:
    """Plain values with repeated keys: pyarrow takes every body, and the rows are the row
    reader's and the Python column reader's, ``extra`` (``__duplicates__``) included."""
    rng = random.Random(seed)
    plain = plain_values(rng)
    texts = [body(rng, plain, style=style) for _ in range(rng.randint(1, 8))]
    assert all(map(eligible, texts))
    read = read_bodies(texts)
    assert read.declined == [], texts
    found = exchanges(texts)
    frame = events_from_exchanges(found, run_id="d")
    pd.testing.assert_frame_equal(frame, row_reader(found))
    columns, leftovers = python_columns(texts)
    assert leftovers == []
    for name, values in columns.items():
        expected = pd.Series(values, name=name)
        pd.testing.assert_series_equal(pd.Series(read.values[name], name=name), expected)


@DIFF
@given(
    st.integers(0, 2**32),
    st.sampled_from(["plain", "compact", "odd"]),
    st.floats(0.0, 1.0),
)
def test_any_repeats_give_the_rows_of_the_row_reader(seed: int, style: str, odd: float) -> None:
    """Odd values, odd spacing and odd spellings too: whatever path each body takes, the rows
    are exactly the row reader's."""
    rng = random.Random(seed)
    texts = [body(rng, odd=odd, style=style) for _ in range(rng.randint(1, 8))]
    for i, text in enumerate(texts):
        twist = rng.random()
        if twist < 0.1:  # a key spelled with an escape: still the same key to json
            texts[i] = text.replace('"restart"', '"re\\u0073tart"', 1)
        elif twist < 0.2:  # the marker in a key of its own
            texts[i] = text.replace('"jobid"', '"\\u007f0v0": 1, "jobid"', 1)
        elif twist < 0.3:  # the key inside a string, after an escaped quote
            texts[i] = text.replace('"jobid"', '"a\\"restart": 1, "jobid"', 1)
        elif twist < 0.35:  # raw marker in a value
            texts[i] = text.replace('"jobid"', f'"note": "{MARK}", "jobid"', 1)
    found = exchanges(texts)
    pd.testing.assert_frame_equal(events_from_exchanges(found, run_id="d"), row_reader(found))


def test_many_chunks_learn_keys_and_slots_as_they_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks read before a key was learned, or with fewer slots, merge with later ones."""
    import cfanalytics.events._arrow as arrow

    monkeypatch.setattr(arrow, "_CHUNK", 600)  # a few bodies per chunk
    rng = random.Random(5)
    plain = plain_values(rng)
    texts = [body(rng, plain) for _ in range(30)]  # repeats of several keys
    plain = '{"installs": [{"jobid": 1, "restart": 1, "mirroring": true}]}'
    thrice = '{"installs": [{"jobid": 2, "restart": 0, "restart": 1, "restart": null}]}'
    texts = [plain, plain, *texts, thrice, plain]
    read = read_bodies(texts)
    assert read.declined == []
    found = exchanges(texts)
    frame = events_from_exchanges(found, run_id="d")
    pd.testing.assert_frame_equal(frame, row_reader(found))
    extra = json.loads(frame["extra"].iloc[-2])
    assert extra == {"__duplicates__": {"restart": [0, 1, None]}}


def test_rewrite_keeps_every_occurrence_in_order() -> None:
    """Each ``"K":`` becomes a numbered slot; text without the key is left alone."""
    rewriter = Rewriter(["restart"])
    text = '{"installs": [{"restart": 0, "jobid": 1, "restart": 1}, {"jobid": 2, "restart": 1}]}'
    out = json.loads(rewriter.rewrite(text))["installs"]
    assert out[0] == {
        f"{MARK}0i0": 0,
        f"{MARK}0v0": 0,
        "jobid": 1,
        f"{MARK}0i1": 1,
        f"{MARK}0v1": 1,
    }
    assert out[1] == {"jobid": 2, f"{MARK}0i0": 2, f"{MARK}0v0": 1}
    assert rewriter.rewrite('{"installs": [{"jobid": 1}]}') == '{"installs": [{"jobid": 1}]}'
    assert not Rewriter.fits('{"x": "\\u007F"}') and Rewriter.fits('{"x": "\\u00fc"}')


def test_learning_from_pyarrow_errors() -> None:
    """Only a repeated job key the schema reads is learned; a slot overflow doubles slots."""
    message = "JSON parse error: Column(/installs/[]/restart) was specified twice in row 0"
    assert repeated_key(message) == "restart"
    assert repeated_key("JSON parse error: Column(/installs) was specified twice") is None
    rewriter = Rewriter()
    assert rewriter.learn("restart") and rewriter.keys == ["restart"]
    assert not rewriter.learn("restart") and not rewriter.learn("fleet")
    assert rewriter.learn(f"{MARK}0v1") and rewriter.slots == 4


def test_more_repeats_than_slots_grow_the_slots() -> None:
    """A key sent five times in one job still reads exactly, through pyarrow."""
    text = '{"installs": [{"jobid": 1' + ', "restart": 1' * 4 + ', "restart": 0}]}'
    read = read_bodies([text])
    assert read.declined == []
    found = exchanges([text])
    frame = events_from_exchanges(found, run_id="d")
    pd.testing.assert_frame_equal(frame, row_reader(found))
    assert json.loads(frame["extra"][0]) == {"__duplicates__": {"restart": [1, 1, 1, 1, 0]}}
    assert bool(frame["restart"][0]) is False


@pytest.mark.parametrize(
    "text",
    [
        # the list sent twice: json keeps the last, and its jobs' repeats
        '{"installs": [{"jobid": 1, "restart": 1}], "installs": [{"jobid": 2, "restart": 0,'
        ' "restart": 1}]}',
        '{"installs": [{"jobid": 1}, {"jobid": 3}], "installs": [{"jobid": 2, "restart": 0,'
        ' "restart": 1}]}',
        # two objects on one line, and a carriage return pyarrow takes for a line break
        '{"installs": [{"jobid": 1, "restart": 1, "restart": 0}]} {"installs": [{"jobid": 2}]}',
        '{"installs": [{"jobid": 1, "restart": 1}]}\r{"installs": [{"jobid": 2}]}',
        # an empty list with a space: still one row without a job
        '{"installs": [ ]}',
        # a null, a number and a nested object where a job belongs
        '{"installs": [{"jobid": 1, "restart": 1, "restart": 0}, null]}',
        '{"installs": [{"jobid": 1, "restart": {"restart": 1}, "restart": 0}]}',
        # a repeated key that is not a column: it goes to extra with its repeats
        '{"installs": [{"jobid": 1, "fleet": "eu", "fleet": "us"}]}',
        # a repeated key with a space before its colon
        '{"installs": [{"jobid": 1, "restart" : 1, "restart": 0}]}',
        # the repeated key's values of two types
        '{"installs": [{"jobid": 1, "restart": "x", "restart": 0}]}',
        '{"installs": [{"jobid": 1, "restart": 1.0, "restart": 0}]}',
    ],
)
def test_odd_bodies_with_repeats_give_the_rows_of_the_row_reader(text: str) -> None:
    """Whichever reader takes them, odd bodies give exactly the row reader's rows."""
    plain = '{"installs": [{"jobid": 9, "restart": 1, "restart": 1}]}'
    found = exchanges([plain, text, plain])
    pd.testing.assert_frame_equal(events_from_exchanges(found, run_id="d"), row_reader(found))
