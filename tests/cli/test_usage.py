"""Usage: every command describes itself and shows its defaults; a mistyped option, command
or choice is one line naming the nearest; an abbreviation still works."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from cfanalytics.cli import build_parser, main

from ..conftest import CASSETTES


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _entry(text: str, option: str) -> str:
    """The help entry of ``option`` (from its name to the next option's), on one line."""
    for entry in re.split(r"\n(?=  -)", text):
        words = entry.split()
        if words and words[0].rstrip(",") == option:
            return " ".join(words)
    raise AssertionError(f"{option} is not in the help")


def test_every_command_has_a_description_and_shows_its_defaults() -> None:
    """Each parser, down to ``history add``, describes itself; each option that takes a value
    and has a default shows it, and none shows a default of None."""
    parsers = list(_parsers(build_parser()))
    assert {p.prog for p in parsers} >= {"cfanalytics record", "cfanalytics history add"}
    shown = 0
    for parser in parsers:
        assert parser.description and parser.description.strip(), parser.prog
        text = parser.format_help()
        assert "default: None" not in text, parser.prog
        for action in parser._actions:
            takes_value = action.nargs != 0
            if action.option_strings and takes_value and action.default is not None:
                entry = _entry(text, action.option_strings[0])
                assert f"default: {action.default}" in entry, (parser.prog, entry)
                shown += 1
    assert shown >= 25


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["record", "--asdi", "5"],
            "cfanalytics record: error: unrecognized argument --asdi (did you mean --asid?)",
        ),
        (
            ["record", "--asid", "1", "--cassete", "run.yaml"],
            "cfanalytics record: error: unrecognized argument --cassete (did you mean --cassette?)",
        ),
        (["recrod"], "cfanalytics: error: unknown command 'recrod' (did you mean record?)"),
        (
            ["history", "ad", "x"],
            "cfanalytics history: error: unknown action 'ad' (did you mean add?)",
        ),
        (
            ["--verbsoe", "status"],
            "cfanalytics: error: unrecognized argument --verbsoe (did you mean --verbose?)",
        ),
        (
            ["summary", "x.yaml", "--format", "jsno"],
            "cfanalytics summary: error: argument --format: invalid choice: 'jsno' (did you "
            "mean json?)",
        ),
        (
            ["status", "--asid", "1", "--zzz"],
            "cfanalytics status: error: unrecognized argument --zzz",
        ),
        (
            ["status"],
            "cfanalytics status: error: the following arguments are required: --asid; see "
            "'cfanalytics status --help'",
        ),
        (
            ["status", "--asid", "-1"],
            "cfanalytics status: error: argument --asid: not a whole number of at least 1: "
            "'-1'; see 'cfanalytics status --help'",
        ),
        (
            ["simulate", "--port", "99999"],
            "cfanalytics simulate: error: argument --port: not a port (0 to 65535): '99999'; "
            "see 'cfanalytics simulate --help'",
        ),
        (
            ["compare", "a", "b", "--level", "1.5"],
            "cfanalytics compare: error: argument --level: not a number between 0 and 1: "
            "'1.5'; see 'cfanalytics compare --help'",
        ),
    ],
)
def test_usage_errors_are_one_line_naming_the_nearest(
    capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    """A mistyped option, command or choice: exit 2 and one line that names the nearest; a
    value out of range names its option."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == line + "\n"


def test_abbreviations_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    """An unambiguous prefix of an option is that option, as argparse has it."""
    assert main(["summary", str(CASSETTES / "demo.yaml"), "--form", "csv"]) == 0
    assert capsys.readouterr().out.startswith("rollout,jobid,")
