"""Pseudonymisation and the ingest nesting check stay linear on hostile text, and the
rewrites that made them so read ordinary text exactly as before (the review's own timing
tests are in test_security_review.py; these cover what the rewrite found besides)."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from service.calibration.redaction import EMAIL, Identity, Redactor
from service.ingest.validate import too_deep

REPO = Path(__file__).resolve().parent.parent
PEOPLE = {
    1: Identity("Heather Moore", "heather.moore@example.com", "E00033"),
    2: Identity("Grace Hopper", "grace.hopper@example.com", "33"),
}
LABELS = {1: "P-111111", 2: "P-222222"}

_REDACT = """
import sys
from service.calibration.redaction import Identity, Redactor
people = {1: Identity("Heather Moore", "heather.moore@example.com", "33")}
text = sys.argv[1].encode().decode("unicode_escape") * int(sys.argv[2])
Redactor(people, {1: "P-111111"}).redact(text + sys.argv[3], 1)
"""


@pytest.mark.parametrize(
    ("unit", "times", "tail"),
    [
        pytest.param("#", 1, " " * 100_000 + "x", id="a-number-sign-and-100k-spaces"),
        pytest.param("employee", 1, " " * 100_000 + ":", id="a-cue-word-and-100k-spaces"),
        pytest.param("# ", 50_000, "", id="many-number-signs"),
    ],
)
def test_an_id_cue_followed_by_a_long_run_of_spaces_is_read_in_linear_time(
    unit: str, times: int, tail: str
) -> None:
    """The cued-number pattern ("employee 33", "#0033") had three `\\s*` in a row: after a
    "#" and n spaces it tried every way of sharing them out, n^3 steps (2,000 spaces took
    17 s). Run in a child process so a failure costs the timeout, not days."""
    try:
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_REDACT), unit, str(times), tail],
            cwd=REPO,
            check=True,
            timeout=6,
            capture_output=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"redacting {unit!r} and {len(tail)} more characters took over 6 s")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an address that starts where the last one ended is still found
        ("x@y.zz_foo@bar.com", f"{EMAIL}{EMAIL}"),
        ("heather.moore@example.com, bob@vendor.io", f"P-111111, {EMAIL}"),
        # a cue, however many spaces follow it
        ("#" + " " * 50 + "33 led it", "#" + " " * 50 + "P-222222 led it"),
        ("employee no.   33", "employee no.   P-222222"),
        # an everyday-word name after a title, whatever space stands between them
        ("Dr.\nGrace", "Dr.\nP-222222"),
        ("Dr. " + " " * 60 + "Grace", "Dr. " + " " * 60 + "P-222222"),
        ("Grace's plan. Grace shipped.", "P-222222's plan. Grace shipped."),
        # a title is a whole word: the end of a longer one is not
        ("Mydr. Grace shipped.", "Mydr. Grace shipped."),
        ("x" * 60 + "Dr. Grace shipped.", "x" * 60 + "Dr. Grace shipped."),
        # a name joined up over a line break
        ("Hea-\nther did it; Moo-\r\nre too", "P-111111 did it; P-111111 too"),
    ],
)
def test_the_linear_redactor_reads_ordinary_text_as_before(text: str, expected: str) -> None:
    assert Redactor(PEOPLE, LABELS).redact(text, 1) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1, "deep": [[[[1]]]]}', "deep"),
        ('{"a": "[[[[[[", "b": {"c": [[1]]}}', "b"),  # brackets inside strings
        ('{"a\\"[[[[": 1, "b\\\\": [[[[1]]]]}', "b\\"),  # escaped quote and backslash
        ('{"a": [[1]], "b" : {"c": 2}}', None),
        ('{"a": "never ends [[[[[[[[', None),  # not JSON: json.loads reports it
    ],
)
def test_the_nesting_check_names_the_field_and_skips_strings(
    text: str, expected: str | None
) -> None:
    assert too_deep(text, 3) == expected


_NESTING = """
import sys
from service.ingest.validate import too_deep
hostile = '"' + '\\\\"' * 500_000 + "[" * 20
strings = '{"k": [' + '"a", ' * 200_000 + "[" * 20 + "]}"
assert too_deep(hostile, 17) is None
assert too_deep(strings, 17) == "k"
"""


def test_the_nesting_check_of_a_line_at_the_size_limit_is_quick() -> None:
    """A 1 MB line (FAIRDRAFT_INGEST_MAX_LINE_BYTES) of escaped quotes, and one of many
    short strings: one pass each (the old check needed about an hour for the first). In a
    child process, so a failure costs the timeout."""
    started = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_NESTING)],
            cwd=REPO,
            check=True,
            timeout=10,
            capture_output=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("checking two 1 MB lines took over 10 s")
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"{elapsed:.1f} s to start Python and check two 1 MB lines"
