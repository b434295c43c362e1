"""How a draft is shown in a terminal: its sections with citations, then what it rests on.

A draft's text, headings and evidence come from evidence and a model: they are printed as
plain `Text`, never as rich markup, so "[/]" in them cannot break the output and "[link=...]"
cannot put a hyperlink on the terminal."""

from rich.console import Console
from rich.table import Table
from rich.text import Text

from service.drafting.run import CycleSummary, DraftOutcome

_PROBLEMS = {
    "unknown_citation": "cited an id not in the evidence (removed)",
    "instruction_evidence": "reads as instructions to a model: it supports nothing",
}


def print_draft(console: Console, outcome: DraftOutcome, label: str | None) -> None:
    title = f"{outcome.kind} for {outcome.person}, {outcome.period}"
    if outcome.body is None or outcome.citations is None:
        console.print(Text(f"{title}: nothing drafted: {outcome.message}"))
        return
    console.rule(Text(f"{title} (draft {outcome.draft_id}, version {outcome.version})"))
    if label:
        console.print(Text(label, style="italic"))
    unsupported = {
        (f.section, f.sentence) for f in outcome.citations.flags if f.problem == "unsupported"
    }
    for s_index, section in enumerate(outcome.body.sections):
        console.print(Text("\n" + section.heading, style="bold"))
        for t_index, sentence in enumerate(section.sentences):
            line = Text(f"- {sentence.text}")
            if sentence.evidence:
                line.append(f" [{', '.join(sentence.evidence)}]", style="cyan")
            if (s_index, t_index) in unsupported:
                line.append(" (unsupported)", style="red")
            console.print(line, highlight=False)
    report = outcome.citations
    console.print(
        f"\nsupported sentences: {report.supported}/{report.sentences} "
        f"({report.supported_share:.0%})"
    )
    for flag in report.flags:
        where = f"section {flag.section + 1}, sentence {flag.sentence + 1}"
        if flag.problem in _PROBLEMS:
            detail = f" {where}: {flag.citation} {_PROBLEMS[flag.problem]}"
            console.print(Text("flag", style="yellow") + Text(detail), highlight=False)
        elif flag.problem == "prompt_injection":
            console.print(Text("flag", style="red") + Text(f" {where}: {flag.detail}"))
    if outcome.evidence:
        console.print(_evidence_legend(outcome))


def _evidence_legend(outcome: DraftOutcome) -> Table:
    cited = {c for s in (outcome.body.sentences() if outcome.body else []) for c in s.evidence}
    table = Table(title="evidence cited")
    for column in ("id", "date", "kind", "source", "title or start"):
        table.add_column(column)
    for item in outcome.evidence.items if outcome.evidence else []:
        if item.id in cited:
            table.add_row(
                Text(item.id),
                item.occurred_at.date().isoformat(),
                Text(item.kind),
                Text(f"{item.source}:{item.external_id}"),
                Text((item.title or item.text)[:60]),
            )
    return table


def cycle_table(summary: CycleSummary) -> Table:
    table = Table(title="cycle drafting")
    for column in ("drafted", "already there", "no evidence", "failed", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(summary.drafted)),
        str(summary.skipped),
        str(len(summary.empty)),
        str(len(summary.failed)),
        f"{summary.seconds:.1f}",
    )
    return table
