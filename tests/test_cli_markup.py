"""Text that comes from evidence or a model is printed by the CLI as plain text: rich markup
in it ("[/]", "[link=...]", "[bold]") is shown as typed, cannot end the output with a
MarkupError, and puts no hyperlink or style on the terminal."""

from datetime import UTC, datetime

from rich.console import Console

from retrieval.evidence import EvidenceItem, EvidencePack, Scores
from service.cli_output import evidence_table
from service.drafting.citations import CitationFlag, CitationReport
from service.drafting.display import print_draft
from service.drafting.run import DraftOutcome
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
