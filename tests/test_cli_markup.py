"""Text that comes from evidence, a model or people.csv is printed by the CLI as plain text:
rich markup in it ("[/]", "[link=...]", "[bold]") is shown as typed, cannot end the output
with a MarkupError, and puts no hyperlink or style on the terminal; in the operator's lists,
terminal control sequences in it (ESC, C1, bidirectional overrides) are shown escaped."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from evals.demo import DemoLink, print_cast
from evals.demo_cast import Cast, CastMember, OrgPerson
from retrieval.evidence import EvidenceItem, EvidencePack, Scores
from service.access.people import PersonLine
from service.access.tokens import TokenLine
from service.calibration.panels import PanelLine, PanelMemberLine
from service.cli_output import (
    DRAFT_COLUMNS,
    PANEL_COLUMNS,
    PEOPLE_COLUMNS,
    TOKEN_COLUMNS,
    Column,
    Listing,
    evidence_table,
    listing_table,
    print_json,
)
from service.drafting.citations import CitationFlag, CitationReport
from service.drafting.display import print_draft
from service.drafting.run import DraftOutcome
from service.drafting.store import DraftLine
from service.drafting.structure import DraftBody, DraftSection, DraftSentence

HOSTILE = "[/] [link=https://evil.example]click[/link] [bold red]x[/]"


def _item() -> EvidenceItem:
    return EvidenceItem(
        id="E1",
        chunk_id=1,
        record_id=1,
        text=HOSTILE,
        token_count=5,
        kind="feedback",
        source=HOSTILE,
        external_id="1",
        title=HOSTILE,
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        author=None,
        scores=Scores(vector=0.5, text=0.5, fused=0.5, pick=0),
    )


def _console() -> Console:
    return Console(record=True, width=400, force_terminal=True, color_system="truecolor")


def test_a_draft_with_markup_in_its_text_prints_it_as_typed_and_links_nothing() -> None:
    body = DraftBody(
        sections=[
            DraftSection(heading=HOSTILE, sentences=[DraftSentence(text=HOSTILE, evidence=["E1"])])
        ]
    )
    flags = [CitationFlag(section=0, sentence=0, problem="prompt_injection", detail=HOSTILE)]
    outcome = DraftOutcome(
        person="ana",
        kind="self_reflection",
        period="2026-H1",
        draft_id=1,
        version=1,
        body=body,
        citations=CitationReport(sentences=1, supported=1, flags=flags),
        evidence=EvidencePack(1, None, "self_reflection", "hybrid", 100, 1, [_item()]),
    )
    console = _console()

    print_draft(console, outcome, HOSTILE)

    text = console.export_text()
    assert text.count("[link=https://evil.example]") >= 4  # heading, sentence, flag, label
    assert "\x1b]8;" not in console.export_text(styles=True)  # no OSC 8 hyperlink


def test_the_evidence_table_prints_markup_in_evidence_as_typed() -> None:
    pack = EvidencePack(1, None, "self_reflection", "hybrid", 100, 1, [_item()])
    console = _console()

    console.print(evidence_table(pack, title=HOSTILE))

    assert console.export_text().count("[link=https://evil.example]") >= 2


# The operator's lists (fairdraft people, drafts list, token list, panel list): every value
# that came from people.csv or a person (names, emails, departments, labels, actors) in the
# hostile form, with terminal control sequences besides the markup.
CONTROLS = "\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\ \x1b[2J \u202eevil \x9b31m"
HOSTILE_VALUE = f"{HOSTILE} {CONTROLS}"
WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def _hostile_listings() -> list[tuple[Listing[Any], Sequence[Column[Any]]]]:
    h = HOSTILE_VALUE
    person = PersonLine(
        employee_id=h,
        name=h,
        email=h,
        roles=["employee"],
        manager=h,
        level=h,
        department=h,
        active=True,
    )
    draft = DraftLine(
        id=1,
        subject=h,
        employee_id=h,
        kind=h,
        period=h,
        status=h,
        version=1,
        supported_share=0.5,
        open_flags=None,
        updated_at=WHEN,
    )
    token = TokenLine(
        id=1,
        owner=h,
        label=h,
        state="live",
        created_at=WHEN,
        created_by=h,
        expires_at=WHEN,
        last_used_at=None,
        revoked_at=None,
    )
    panel = PanelLine(
        id=1,
        cycle=h,
        level=h,
        job_family=h,
        members=[PanelMemberLine(employee_id=h, name=h)],
        cohort=1,
        placed=0,
        created_by=h,
        created_at=WHEN,
    )
    return [
        (Listing[PersonLine](total=1, offset=0, limit=50, items=[person]), PEOPLE_COLUMNS),
        (Listing[DraftLine](total=1, offset=0, limit=50, items=[draft]), DRAFT_COLUMNS),
        (Listing[TokenLine](total=1, offset=0, limit=50, items=[token]), TOKEN_COLUMNS),
        (Listing[PanelLine](total=1, offset=0, limit=50, items=[panel]), PANEL_COLUMNS),
    ]


@pytest.mark.parametrize("case", range(4), ids=["people", "drafts", "tokens", "panels"])
def test_a_list_prints_hostile_values_as_typed_and_passes_no_control_sequence(case: int) -> None:
    listing, columns = _hostile_listings()[case]
    console = Console(record=True, width=4000, force_terminal=True, color_system="truecolor")

    console.print(listing_table(HOSTILE, listing, columns))

    text, styled = console.export_text(), console.export_text(styles=True)
    assert text.count("[link=https://evil.example]") >= 3  # title and at least two cells
    assert "\x1b]8;" not in styled and "\x1b[2J" not in styled  # no hyperlink, no clearing
    assert "\u202e" not in styled and "\x9b" not in styled
    assert text.count("\\x1b]8;;https://evil.example") >= 2  # shown, escaped


def test_the_json_of_a_list_holds_hostile_values_exactly_but_no_raw_control_character(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listing, _ = _hostile_listings()[0]

    print_json(listing)

    printed = capsys.readouterr().out
    assert json.loads(printed)["items"][0]["name"] == HOSTILE_VALUE
    for control in ("\x1b", "\u202e", "\x9b"):
        assert control not in printed


def test_the_demo_prints_names_and_emails_from_people_csv_as_typed() -> None:
    """`fairdraft demo` names its four people and their links (evals/demo.py): a name or
    email holding markup is printed as typed, in the table and beside each link."""
    name = HOSTILE + " \x1b]8;;https://evil.example\x07x\x1b]8;;\x07"
    person = OrgPerson(1, "E1", name, HOSTILE, None, "L3", "engineering")
    members = [CastMember(role, person, "/me", HOSTILE) for role in ("employee", "manager")]
    cast = Cast(members[0], members[1], members[0], members[1], 1, (person,), (person,))
    when = datetime(2026, 3, 1, tzinfo=UTC)
    links = [DemoLink(m, "http://127.0.0.1:8000/sign-in/link/fdl_x", when) for m in members]
    console = _console()

    print_cast(console, cast, links, serving=True)

    text = console.export_text()
    assert text.count("[link=https://evil.example]") >= 4 * 3 + 2
    assert "\x1b]8;" not in console.export_text(styles=True)
    assert "\\x1b]8;;https://evil.example\\x07" in text  # shown, not obeyed
