"""How the bias report is shown in a terminal: flagged findings first, then the detail.

Walks the typed report (service/bias/report_model.py): one line per finding, worded by
its kind, and the top-rating table of each attribute. Every text that comes from data
(cycle, attribute and group names, the model's name) is printed as plain text, never read
as rich markup: a group called "[prefer not to say]" is shown, not swallowed as a style,
and one with a stray "[/]" does not stop the report."""

from collections.abc import Sequence
from math import ceil, log10
from typing import assert_never

from rich.console import Console
from rich.table import Table
from rich.text import Text

from service.bias.counterfactual import ProbeResult
from service.bias.ratings import AdverseImpact, ManagerLeniency, MismatchedRating
from service.bias.report_model import (
    Finding,
    GapFinding,
    ImpactFinding,
    LanguageFinding,
    ManagerFinding,
    MismatchFinding,
    StoredBiasReport,
    share_sentence,
)


def print_report(console: Console, stored: StoredBiasReport) -> None:
    seen, report = stored.data_seen, stored.report
    console.rule(Text(f"bias report {stored.cycle}, version {stored.version}"))
    console.print(
        Text(
            f"saw {seen.drafts} drafts ({seen.edited_drafts} edited by people), "
            f"{report.ratings.ratings} ratings, attributes: "
            f"{', '.join(seen.attributes) or 'none on record'}; {stored.created_at.isoformat()}"
        )
    )
    console.print(findings_table(report.findings))
    for attribute, parts in report.ratings.by_attribute.items():
        console.print(impact_table(attribute, parts.adverse_impact))
    language = report.language
    tested = sum(1 for c in language if not c.suppressed)
    console.print(
        f"language: {len(language)} comparisons ({tested} tested, the rest suppressed for "
        f"groups under 5), {sum(c.flagged for c in language)} flagged"
    )
    if managers := report.ratings.managers:
        console.print(Text(managers_line(managers)))
    if singles := single_ratings_line(report.ratings.mismatched):
        console.print(Text(singles))
    if note := report.ratings.note:
        console.print(Text(f"ratings: {note}"))


def findings_table(findings: Sequence[Finding]) -> Table:
    table = Table(title=f"findings ({len(findings)}), flagged first")
    for column in ("what", "where", "detail"):
        table.add_column(column)
    for finding in findings:
        _row(table, finding.what, *_where_and_detail(finding))
    if not findings:
        _row(table, "none", "", "no difference both significant and large enough to flag")
    return table


def _row(table: Table, *cells: str) -> None:
    """A row of plain text: brackets in a name are shown, not read as markup."""
    table.add_row(*(Text(cell) for cell in cells))


def _where_and_detail(finding: Finding) -> tuple[str, str]:
    """Where the finding is (attribute and group, manager or person) and its numbers."""
    match finding:
        case LanguageFinding():
            return (
                f"{finding.attribute} / {finding.scope} / {finding.measure}",
                share_sentence(finding)
                or f"{finding.focal} vs {finding.reference}: Cliff's delta "
                f"{finding.effect_size:+.2f}, adjusted p {finding.p_adjusted:.3g}",
            )
        case ImpactFinding():
            return (
                f"{finding.attribute}: {finding.group}",
                f"top-rating rate {_f(finding.rate, '.0%')}, ratio {_f(finding.ratio, '.2f')} "
                "(< 0.8)",
            )
        case GapFinding():
            return (
                f"{finding.attribute}: {finding.group}",
                f"{_f(finding.coefficient, '+.2f')} points with evidence held equal "
                f"(95% CI {_f(finding.ci_low, '+.2f')} to {_f(finding.ci_high, '+.2f')})",
            )
        case ManagerFinding():
            return (
                f"manager {finding.manager_id} ({finding.n} reports)",
                leniency_detail(finding),
            )
        case MismatchFinding():
            return (
                f"person {finding.person_id} (rater {finding.manager_id})",
                f"rated {finding.rating:.0f}, evidence suggests {finding.expected:.1f} "
                f"({finding.residual:+.1f})" + interval_text(finding),
            )
        case _:
            assert_never(finding)


def leniency_detail(m: ManagerLeniency) -> str:
    """A manager's offset in words: the shrunken estimate with its 95% interval, or
    "not enough rated reports to tell"; reports stored before issue 14 show the mean."""
    if m.estimate is None or m.ci_low is None or m.ci_high is None:
        return f"{m.mean_residual:+.2f} points vs the evidence, adjusted p {m.p_adjusted:.3g}"
    shown = (
        f"{m.estimate:+.2f} points vs the evidence (95% interval {m.ci_low:+.2f} to "
        f"{m.ci_high:+.2f}; team mean {m.mean_residual:+.2f} over {m.n} rated reports)"
    )
    if m.verdict == "not_enough_evidence":
        if m.ci_high < 0 or m.ci_low > 0:  # held back: the managers are not shown to differ
            return (
                f"not enough rated reports to tell: {shown}; not flagged, as the managers' "
                "offsets are not shown to differ at all (one-way F test, p >= 0.05)"
            )
        return f"not enough rated reports to tell: {shown}"
    if m.verdict == "within":
        return f"within half a step of the evidence: {shown}"
    return shown


def managers_line(managers: Sequence[ManagerLeniency]) -> str:
    """How many managers were flagged, and which could not be told from noise: said,
    not left silent (issue 14)."""
    undecided = [m.manager_id for m in managers if m.verdict == "not_enough_evidence"]
    flagged = sum(m.flagged for m in managers)
    line = f"managers: {len(managers)} with 3+ rated reports, {flagged} flagged"
    if undecided:
        shown = ", ".join(str(i) for i in undecided[:10]) + (", ..." if len(undecided) > 10 else "")
        line += f"; not enough rated reports to tell for {len(undecided)} ({shown})"
    return line


def single_ratings_line(mismatched: Sequence[MismatchedRating]) -> str | None:
    """How many ratings lie outside their prediction interval, and how many more are far
    from the evidence but inside it: said, not left silent (issue 14). None when no rating
    is 1.5 points or more from the evidence."""
    if not mismatched:
        return None
    undecided = [m for m in mismatched if m.verdict == "not_enough_evidence"]
    level = next((m.level for m in mismatched if m.level is not None), None)
    outside = len(mismatched) - len(undecided)
    line = f"single ratings: {outside} outside the " + (
        f"{level_text(level)} prediction interval" if level is not None else "evidence's range"
    )
    if undecided:
        shown = ", ".join(str(m.person_id) for m in undecided[:10])
        line += (
            f"; {len(undecided)} more 1.5+ points from the evidence but inside it: not enough "
            f"evidence to tell a mismatch from the evidence model's own error (people {shown}"
            + (", ...)" if len(undecided) > 10 else ")")
        )
    return line


def interval_text(m: MismatchedRating) -> str:
    if m.pi_low is None or m.pi_high is None or m.level is None:
        return ""
    return (
        f", outside its {level_text(m.level)} prediction interval {m.pi_low:.1f} to {m.pi_high:.1f}"
    )


def level_text(level: float) -> str:
    """A level near 1 with the digits that tell it from 100%: 1 - 0.05/120 is "99.96%",
    1 - 0.05/2400 "99.998%"."""
    if not 0 < level < 1:
        return f"{level:.0%}"
    digits = max(0, ceil(-log10(1 - level)) - 2)
    return f"{100 * level:.{digits}f}%"


def _f(value: float | None, spec: str) -> str:
    """A number as the table writes it, or a dash where the analysis has none."""
    return "-" if value is None else format(value, spec)


def impact_table(attribute: str, impact: AdverseImpact) -> Table:
    table = Table(title=Text(f"top ratings (>= {impact.top:.0f}) by {attribute}"))
    for column in ("group", "n", "rate", "ratio", "flag"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in impact.groups:
        if g.suppressed:
            _row(table, g.group, "<5", "suppressed", "", "")
            continue
        _row(
            table,
            g.group,
            str(g.n),
            _f(g.rate, ".0%"),
            "" if g.ratio is None else f"{g.ratio:.2f}",
            "adverse impact" if g.flagged else ("below 4/5" if g.below_four_fifths else ""),
        )
    return table


def probe_table(result: ProbeResult) -> Table:
    """The measures that moved when names and pronouns were swapped, largest first."""
    title = f"counterfactual probe: {result.kind}, {result.period}, model {result.model}"
    table = Table(title=Text(title))
    for column in ("measure", "mean |shift|", "mean shift", "largest", "swap"):
        table.add_column(column, justify="left" if column in ("measure", "swap") else "right")
    if result.skipped:
        _row(table, "skipped", "", "", "", result.skipped)
        return table
    for shift in result.moved():
        _row(
            table,
            shift.measure,
            f"{shift.mean_abs:.3f}",
            f"{shift.mean_signed:+.3f}",
            f"{shift.largest:+.3f}",
            shift.largest_swap or "",
        )
    table.caption = (
        f"{len(result.people)} people, {result.changed_share:.0%} of drafts changed; "
        f"{len(result.failed)} failed"
    )
    return table
