"""The argument parser's manners: help that shows each default, and usage errors on one line
that name the nearest option or command when a word was mistyped.

Python 3.11's argparse suggests nothing, so :class:`Parser` does: a word given to a parser
that looks like an option it does not know is reported before anything else (argparse would
first complain about the required option it hid), and an unknown command or choice names
the closest one (:func:`nearest`, by :func:`difflib.get_close_matches`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

__all__ = ["DefaultsFormatter", "Parser", "nearest", "shows_default"]

# argparse takes these as values, not options, while no option looks like a number.
_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def shows_default(action: argparse.Action) -> bool:
    """Whether ``action``'s help shows its default: it takes a value and has a default to
    show (None means the help says what happens without it; a flag's False says nothing)."""
    return action.default not in (None, argparse.SUPPRESS) and action.nargs != 0


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with ``(default: X)`` when :func:`shows_default`."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if shows_default(action) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word``, if any is close enough to be the one meant."""
    from difflib import get_close_matches  # only ever on a usage error

    found = get_close_matches(word, list(candidates), n=1)
    return found[0] if found else None


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help shows defaults and whose usage errors are one line
    (exit code 2). argparse makes subcommand parsers of the parser's own class, so every
    subcommand has the same manners."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)
        self._given: list[str] = []

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        # Kept for error(): a subcommand's parser is given only the words after its name.
        self._given = list(sys.argv[1:] if args is None else args)
        if self._commands() is not None and self._unknown_option():
            # Before the command's parser runs: it would report what the typo hid instead.
            self.error("unrecognized option")
        return super().parse_known_args(args, namespace)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> Any:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # argparse reports a subcommand's leftovers as the top parser's
            chain = self._chain(namespace)
            culprit = next((p for p in chain if p._unknown_option()), chain[-1])
            culprit.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace

    def error(self, message: str) -> NoReturn:
        """One line on stderr, exit code 2; a mistyped option is named with the nearest."""
        unknown = self._unknown_option()
        if unknown is not None:
            message = f"unrecognized argument {unknown}{_did_you_mean(unknown, self._long())}"
        elif "did you mean" not in message:
            message += f"; see '{self.prog} --help'"
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is None or value in action.choices:
            return
        names = [str(choice) for choice in action.choices]
        hint = _did_you_mean(str(value), names) or f" (choose from {', '.join(names)})"
        if isinstance(action, argparse._SubParsersAction):
            what = str(action.metavar or "command").lower()
            raise argparse.ArgumentError(None, f"unknown {what} {value!r}{hint}")
        raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint}")

    def _unknown_option(self) -> str | None:
        """The first word given to this parser (not to a subcommand) that looks like an
        option it does not know."""
        commands = self._commands()
        for word in self._given:
            if word == "--" or (commands and word in commands.choices):
                break
            if word.startswith("-") and word != "-" and not _NUMBER.match(word):
                name = word.split("=", 1)[0]
                if not self._knows(name):
                    return name
        return None

    def _knows(self, name: str) -> bool:
        options = self._option_string_actions
        if name in options:
            return True
        if name.startswith("--"):  # argparse takes any unambiguous prefix, and says if not
            return any(option.startswith(name) for option in options)
        return name[:2] in options  # -oFILE: a short option with its value attached

    def _long(self) -> list[str]:
        return [option for option in self._option_string_actions if option.startswith("--")]

    def _commands(self) -> argparse._SubParsersAction[Parser] | None:
        return next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)

    def _chain(self, namespace: Any) -> list[Parser]:
        """This parser and the subcommand parsers ``namespace`` chose, outermost first."""
        chain = [self]
        while (commands := chain[-1]._commands()) is not None:
            name = getattr(namespace, commands.dest, None)
            if name not in commands.choices:
                break
            chain.append(commands.choices[name])
        return chain


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    found = nearest(word, candidates)
    return f" (did you mean {found}?)" if found else ""
