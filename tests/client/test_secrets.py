"""Keys kept off disk: which keys can be scrubbed without damage, and the one scrub rule."""

from __future__ import annotations

import pytest

from cfanalytics.client import (
    FIELDS,
    FILTERED,
    MIN_KEY_LENGTH,
    Credentials,
    JobState,
    scrub,
    scrub_bytes,
    unsafe_reason,
)
from cfanalytics.exceptions import CredentialsError

from ..conftest import ACCESS_KEY, SECRET_KEY


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("a", "1 character long"),
        ("short", "5 characters long"),
        ("installs", "field 'installs"),  # in every status answer
        ("PROGRESS", "field 'jobprogress'"),  # any case
        ("complete", "'completed_machines'"),
    ],
)
def test_keys_that_occur_as_ordinary_text_are_unsafe(key: str, why: str) -> None:
    reason = unsafe_reason(key)
    assert reason is not None and why in reason


def test_real_looking_keys_are_safe() -> None:
    for key in (ACCESS_KEY, SECRET_KEY, "x" * MIN_KEY_LENGTH, "sim-0123abcd"):
        assert unsafe_reason(key) is None
    words = [*FIELDS, *(state.label for state in JobState)]
    assert all(unsafe_reason(word) is not None for word in words)


def test_credentials_say_which_key_and_why_never_the_key() -> None:
    with pytest.raises(CredentialsError) as caught:
        Credentials(ACCESS_KEY, "hunter2").check_scrubbable()
    message = str(caught.value)
    assert message.startswith("the secret key (CLANFORGE_SECRET_KEY) is 7 characters long")
    assert "hunter2" not in message and "\n" not in message
    Credentials(ACCESS_KEY, SECRET_KEY).check_scrubbable()  # fine


def test_scrub_replaces_every_secret_longest_first() -> None:
    secrets = ["abcdefgh", "abcdefgh-and-more"]
    text = "x abcdefgh-and-more y abcdefgh z"
    assert scrub(text, secrets) == f"x {FILTERED} y {FILTERED} z"
    assert scrub_bytes(text.encode(), secrets) == f"x {FILTERED} y {FILTERED} z".encode()
    assert scrub("nothing here", secrets) == "nothing here"
    assert scrub("abc", []) == "abc"
