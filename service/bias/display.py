"""How the bias report is shown in a terminal: flagged findings first, then the detail."""

from typing import Any

from rich.console import Console
from rich.table import Table

from service.bias.counterfactual import ProbeResult


def print_report(console: Console, report: dict[str, Any]) -> None:
    seen = report["data_seen"]
    console.rule(f"bias report {report['cycle']}, version {report['version']}")
    console.print(
        f"saw {seen['drafts']} drafts ({seen['edited_drafts']} edited by people), "
        f"{report['ratings'].get('ratings', 0)} ratings, attributes: "
        f"{', '.join(seen['attributes']) or 'none on record'}; {report['created_at']}"
    )
    console.print(findings_table(report["findings"]))
    for attribute, parts in report["ratings"].get("by_attribute", {}).items():
        console.print(impact_table(attribute, parts["adverse_impact"]))
    language = report["language"]
    tested = sum(1 for c in language if not c["suppressed"])
    console.print(
        f"language: {len(language)} comparisons ({tested} tested, the rest suppressed for "
        f"groups under 5), {sum(c['flagged'] for c in language)} flagged"
    )
    if note := report["ratings"].get("note"):
        console.print(f"ratings: {note}")


def findings_table(findings: list[dict[str, Any]]) -> Table:
    table = Table(title=f"findings ({len(findings)}), flagged first")
    for column in ("what", "where", "detail"):
        table.add_column(column)
    for finding in findings:
        table.add_row(finding["what"], _where(finding), _detail(finding))
    if not findings:
        table.add_row("none", "", "no difference both significant and large enough to flag")
    return table


def _where(finding: dict[str, Any]) -> str:
    if finding["what"] == "language":
        return f"{finding['attribute']} / {finding['scope']} / {finding['measure']}"
    if "attribute" in finding:
        return f"{finding['attribute']}: {finding['group']}"
    if "manager_id" in finding and finding["what"].startswith("manager"):
        return f"manager {finding['manager_id']} ({finding['n']} reports)"
    return f"person {finding['person_id']} (rater {finding['manager_id']})"


def _detail(finding: dict[str, Any]) -> str:
    what = finding["what"]
    if what == "language":
        return (
            f"{finding['focal']} vs {finding['reference']}: Cliff's delta "
            f"{finding['effect_size']:+.2f}, adjusted p {finding['p_adjusted']:.3g}"
        )
    if what == "adverse_impact":
        return f"top-rating rate {finding['rate']:.0%}, ratio {finding['ratio']:.2f} (< 0.8)"
    if what == "evidence_adjusted_gap":
        return (
            f"{finding['coefficient']:+.2f} points with evidence held equal "
            f"(95% CI {finding['ci_low']:+.2f} to {finding['ci_high']:+.2f})"
        )
    if what.startswith("manager"):
        return (
            f"{finding['mean_residual']:+.2f} points vs the evidence, "
            f"adjusted p {finding['p_adjusted']:.3g}"
        )
    return (
        f"rated {finding['rating']:.0f}, evidence suggests {finding['expected']:.1f} "
        f"({finding['residual']:+.1f})"
    )


def impact_table(attribute: str, impact: dict[str, Any]) -> Table:
    table = Table(title=f"top ratings (>= {impact['top']:.0f}) by {attribute}")
    for column in ("group", "n", "rate", "ratio", "flag"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in impact["groups"]:
        if g["suppressed"]:
            table.add_row(g["group"], "<5", "suppressed", "", "")
            continue
        table.add_row(
            g["group"],
            str(g["n"]),
            f"{g['rate']:.0%}",
            "" if g["ratio"] is None else f"{g['ratio']:.2f}",
            "adverse impact" if g["flagged"] else ("below 4/5" if g["below_four_fifths"] else ""),
        )
    return table


def probe_table(result: ProbeResult) -> Table:
    """The measures that moved when names and pronouns were swapped, largest first."""
    title = f"counterfactual probe: {result.kind}, {result.period}, model {result.model}"
    table = Table(title=title)
    for column in ("measure", "mean |shift|", "mean shift", "largest", "swap"):
        table.add_column(column, justify="left" if column in ("measure", "swap") else "right")
    if result.skipped:
        table.add_row("skipped", "", "", "", result.skipped)
        return table
    for shift in result.moved():
        table.add_row(
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
