"""How the ratings half of the bias report is shown (issue 14): a manager's shrunken
estimate with its interval and "not enough rated reports to tell", single ratings inside
their prediction interval said rather than left silent, on the command line, the HR page
and the leniency chart the HR and panel pages draw; hostile names escaped everywhere."""

from dataclasses import replace

import pytest
from rich.console import Console

from service.bias.display import (
    leniency_detail,
    level_text,
    managers_line,
    single_ratings_line,
)
from service.bias.ratings import ManagerLeniency, MismatchedRating
from service.calibration.cohort import ManagerRow
from service.web.charts import leniency_chart
from service.web.pages.hr import FindingRow
from service.web.templating import ENVIRONMENT
from tests.test_web_escaping import PAYLOADS, hr_variants, html, injected


def _manager(verdict: str, estimate: float, low: float, high: float) -> ManagerLeniency:
    return ManagerLeniency(
        manager_id=7,
        n=4,
        mean_residual=estimate * 2,
        z=-2.0,
        p_value=0.04,
        p_adjusted=0.3,
        direction="harsh" if estimate < 0 else "generous",
        flagged=verdict in ("harsh", "generous"),
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        verdict=verdict,
    )


def _single(person: int, residual: float, verdict: str) -> MismatchedRating:
    return MismatchedRating(
        person_id=person,
        manager_id=9,
        rating=3.0 + residual,
        expected=3.0,
        residual=residual,
        robust_z=residual / 0.5,
        pi_low=0.9,
        pi_high=5.1,
        level=1 - 0.05 / 120,
        verdict=verdict,
    )


def test_a_level_near_one_keeps_the_digits_that_tell_it_from_one_hundred() -> None:
    assert level_text(1 - 0.05 / 120) == "99.96%"
    assert level_text(1 - 0.05 / 2400) == "99.998%"
    assert level_text(0.95) == "95%"


def test_the_command_line_says_which_ratings_are_too_close_to_tell() -> None:
    rows = [_single(1, 2.6, "mismatch"), _single(2, -1.8, "not_enough_evidence")]
    line = single_ratings_line(rows)
    assert line is not None
    assert line.startswith("single ratings: 1 outside the 99.96% prediction interval")
    assert "1 more 1.5+ points from the evidence but inside it: not enough evidence" in line
    assert "(people 2)" in line
    assert single_ratings_line([]) is None


def test_a_manager_held_back_by_the_test_across_managers_is_said_so() -> None:
    held = _manager("not_enough_evidence", -0.3, -0.6, -0.02)
    assert leniency_detail(held).startswith("not enough rated reports to tell: -0.30 points")
    assert "not shown to differ at all" in leniency_detail(held)
    wide = _manager("not_enough_evidence", -0.2, -0.5, 0.1)
    assert "not shown to differ" not in leniency_detail(wide)
    flagged = _manager("harsh", -0.4, -0.7, -0.1)
    assert leniency_detail(flagged).startswith("-0.40 points vs the evidence (95% interval")
    line = managers_line([flagged, wide])
    assert line == (
        "managers: 2 with 3+ rated reports, 1 flagged; not enough rated reports to tell for 1 (7)"
    )


def test_the_cli_prints_plain_text_with_the_numbers() -> None:
    console = Console(width=200, record=True)
    console.print(single_ratings_line([_single(3, -1.7, "not_enough_evidence")]))
    assert "not enough evidence to tell" in console.export_text()


def test_a_manager_row_says_its_verdict_estimate_and_interval() -> None:
    row = ManagerRow.of(_manager("not_enough_evidence", -0.2, -0.5, 0.1), label="A", manager_id=7)
    assert row.said() == (
        "not enough rated reports to tell: -0.20 points (95% interval -0.50 to +0.10)"
    )
    assert ManagerRow("B", None, 4, 0.6, "generous", True).said() == ""  # stored before


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_leniency_chart_says_the_verdict_and_escapes_the_label(payload: str) -> None:
    rows = [
        ManagerRow.of(
            _manager("not_enough_evidence", -0.2, -0.5, 0.1), label=payload, manager_id=None
        ),
        ManagerRow.of(_manager("harsh", -0.4, -0.7, -0.1), label="B", manager_id=None),
    ]
    markup = str(leniency_chart(rows, chart_id="l"))
    assert not injected(markup)
    assert "too few reports to tell" in markup
    assert "not enough rated reports to tell: -0.20 points (95% interval -0.50 to +0.10)" in markup
    assert "flagged, rates below the evidence: -0.40 points" in markup
    assert (
        "B: -0.80 points over 4 rated reports, harsh, flagged (flagged, rates below the "
        "evidence: -0.40 points (95% interval -0.70 to -0.10))"
    ) in markup


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_hr_page_shows_every_managers_verdict_and_the_undecided_ratings_escaped(
    payload: str,
) -> None:
    """The HR variant of the escaping suite, with what issue 14 added filled with the
    payload: a manager's label and the rows of ratings too close to the evidence to tell."""
    variant = next(v for v in hr_variants(payload) if v.why == "a report")
    report = variant.context["report"]
    managers = [
        ManagerRow.of(_manager("not_enough_evidence", -0.2, -0.5, 0.1), label=payload, manager_id=4)
    ]
    undecided = [FindingRow("Not enough evidence to tell", payload, payload)]
    shown = replace(report, managers=managers, undecided=undecided)  # type: ignore[type-var]
    page = ENVIRONMENT.get_template(variant.template).render(**{**variant.context, "report": shown})
    assert not injected(page)
    assert "1 more are 1.5 points or more from what the evidence predicts" in page
    assert "not enough rated reports to tell: -0.20 points (95% interval -0.50 to +0.10)" in page
    if any(c in payload for c in "<>\"'"):
        assert f'<th scope="row">{html(payload)}</th>' in page
