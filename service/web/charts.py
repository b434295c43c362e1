"""Charts drawn on the server as SVG: no script, no CDN, readable without colour.

Every chart is a <figure> holding an SVG with role="img", a <title> and an aria-label that
says in words what it shows; a label with the value on every bar; a second series told
apart by a hatch pattern and a marker shape as well as by colour; and the same numbers as
a table for screen readers (visually hidden: the picture is for the eye, the table for the
ear). Labels are people's and groups' names, so they are hostile input: every piece is
built with `markupsafe` (`_tag`: a literal template whose values `Markup.format` escapes),
never by pasting text into a string, and a template inserts the result as it is. No
`style` attribute or element (the pages' CSP refuses inline style): SVG presentation
attributes (`fill`, `stroke`) carry the drawing.

The drawings use a viewBox and scale to the width they are given (`.chart` in app.css);
they are narrow enough (440 units) and their smallest text large enough (14 units) that it
stays legible on a phone: a 390 px screen draws them about 318 px wide, so 14 units are
about 10 px. Text that can sit over a guide line has a white halo.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from service.calibration.cohort import ManagerRow

INK = "#1b1f24"
MUTED = "#4d5661"
ACCENT = "#1f5fbf"
WARN = "#8a4b00"
LINE = "#c9ced6"
WIDTH = 440
_ROW = 46  # height of one row of a horizontal bar chart
_TOP = 34  # room for the legend
_SMALL = 14  # the smallest text: about 10 px when a phone draws the chart 318 px wide
_CHAR = 8.6  # a generous width of one character of 14-unit text, to space the legend


@dataclass(frozen=True)
class RateBar:
    """One group's share of top ratings (adverse impact), or a suppressed group."""

    group: str
    n: int
    rate: float | None  # None when the group is too small to show
    ratio: float | None  # rate / the highest group's rate
    reference: bool  # the highest-rate group, the others' yardstick
    flagged: bool


@dataclass(frozen=True)
class _HBar:
    """One row of a horizontal bar chart: a heading line, then the bar."""

    heading: str
    value: float | None  # None: no bar, `value_text` is said instead
    value_text: str
    marked: bool  # drawn hatched, with a diamond at its end instead of a circle


def _n(x: float) -> str:
    return f"{x:.1f}"


def _tag(template: str, *values: object) -> Markup:
    """One piece of SVG or HTML: `template` is ours (a literal), every value put into it is
    escaped by `Markup.format` unless it is itself Markup built here. No text reaches a
    chart any other way."""
    return Markup(template).format(*values)


def _join(parts: Iterable[Markup | str]) -> Markup:
    """Pieces side by side; a plain string among them is escaped."""
    return Markup("").join(parts)


_BOLD = Markup(' font-weight="700"')
_HALO = Markup(' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"')


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: int = 14,
    bold: bool = False,
    fill: str = INK,
    halo: bool = False,
    fit: float | None = None,
) -> Markup:
    """`halo`: a white outline under the glyphs, so that a line behind the text does not
    run through it. `fit`: the width the text may take; longer text (by a generous
    estimate) is squeezed into it rather than cut off at the chart's edge."""
    extra = _BOLD if bold else Markup("")
    if fit is not None and len(text) * _CHAR * size / _SMALL > fit:
        extra += _tag(' textLength="{}" lengthAdjust="spacingAndGlyphs"', _n(fit))
    if halo:
        extra += _HALO
    return _tag(
        '<text x="{}" y="{}" text-anchor="{}" font-size="{}"{} fill="{}">{}</text>',
        _n(x),
        _n(y),
        anchor,
        size,
        extra,
        fill,
        text,
    )


def _vline(x: float, y1: float, y2: float, *, dashed: bool = False) -> Markup:
    """The zero line (solid) or a guide (dashed), drawn beside a bar, never through the
    text above it."""
    style = (
        _tag('stroke="{}" stroke-width="1" stroke-dasharray="4 3"', MUTED)
        if dashed
        else _tag('stroke="{}" stroke-width="2"', INK)
    )
    return _tag('<line x1="{}" y1="{}" x2="{}" y2="{}" {}/>', _n(x), _n(y1), _n(x), _n(y2), style)


def _hatch(pattern_id: str, colour: str) -> Markup:
    """Diagonal stripes: the second series reads as different in greyscale too."""
    return _tag(
        '<pattern id="{}" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#ffffff"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="{}" stroke-width="3"/></pattern>',
        pattern_id,
        colour,
    )


def _marker(x: float, y: float, marked: bool) -> Markup:
    """A circle, or for the marked series a larger diamond: shape, not only colour."""
    if marked:
        points = f"{_n(x)},{_n(y - 7)} {_n(x + 7)},{_n(y)} {_n(x)},{_n(y + 7)} {_n(x - 7)},{_n(y)}"
        return _tag(
            '<polygon points="{}" fill="{}" stroke="{}" stroke-width="1"/>', points, WARN, INK
        )
    return _tag('<circle cx="{}" cy="{}" r="4.5" fill="{}"/>', _n(x), _n(y), INK)


def _rect(x: float, y: float, width: str, height: str, fill: str) -> Markup:
    """A bar or a legend swatch, outlined in ink (sizes as written: "14", or `_n(w)`)."""
    return _tag(
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="{}" stroke-width="1"/>',
        _n(x),
        _n(y),
        width,
        height,
        fill,
        INK,
    )


def _line(x1: float, y1: float, x2: float, y2: float) -> Markup:
    """A thin ink line: an axis or a tick."""
    return _tag(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>',
        _n(x1),
        _n(y1),
        _n(x2),
        _n(y2),
        INK,
    )


def _svg(chart_id: str, height: float, title: str, summary: str, body: Markup) -> Markup:
    return _tag(
        '<svg class="chart" id="{}" role="img" aria-label="{}. {}" viewBox="0 0 {} {}" '
        'width="{}" height="{}" xmlns="http://www.w3.org/2000/svg" '
        'font-family="system-ui, sans-serif"><title>{}</title>{}</svg>',
        chart_id,
        title,
        summary,
        WIDTH,
        _n(height),
        WIDTH,
        _n(height),
        title,
        body,
    )


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Markup:
    """The chart's numbers, the first column as row headers; hidden by its wrapper (a
    table ignores the width that hides a box)."""
    head = _join(_tag('<th scope="col">{}</th>', h) for h in headers)
    body = _join(
        _tag(
            '<tr><th scope="row">{}</th>{}</tr>',
            row[0],
            _join(_tag("<td>{}</td>", cell) for cell in row[1:]),
        )
        for row in rows
    )
    return _tag(
        '<div class="visually-hidden"><table><caption>{}</caption>'
        "<thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>",
        caption,
        head,
        body,
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _figure(svg: Markup, caption: str, table: Markup) -> Markup:
    return _tag(
        '<figure class="chart-figure">{}<figcaption class="help">{}</figcaption>{}</figure>',
        svg,
        caption,
        table,
    )


def _legend(items: Sequence[tuple[str, str]], y: float = 16) -> Markup:
    """Swatches (an SVG fill each) with their names, left to right."""
    out, x = [], 8.0
    for fill, name in items:
        out.append(_rect(x, y - 10, "14", "12", fill))
        out.append(_text(x + 19, y, name, size=_SMALL))
        x += 19 + _CHAR * len(name) + 18
    return _join(out)


def _hatched(chart_id: str) -> str:
    """The fill that names a chart's hatch pattern (escaped where it is written)."""
    return f"url(#{chart_id}-hatch)"


# ---------------------------------------------------------------- rating distribution


def distribution_chart(
    proposed: Mapping[int, int], calibrated: Mapping[int, int], *, chart_id: str
) -> Markup:
    """People per rating value, proposed (solid) and calibrated (hatched) side by side:
    whether calibration moved the cohort, and which way."""
    values = sorted(set(proposed) | set(calibrated))
    height, top, bottom, left, right = 250.0, _TOP + 18, 40.0, 16.0, WIDTH - 16.0
    base = height - bottom
    most = max([*proposed.values(), *calibrated.values(), 1])
    step = (right - left) / max(len(values), 1)
    bar = min(34.0, step * 0.36)
    parts = [
        _tag("<defs>{}</defs>", _hatch(f"{chart_id}-hatch", ACCENT)),
        _legend([(ACCENT, "Proposed"), (_hatched(chart_id), "Calibrated")]),
        _line(left, base, right, base),
    ]
    for i, value in enumerate(values):
        centre = left + step * (i + 0.5)
        for offset, count, fill in (
            (-bar - 2, proposed.get(value, 0), ACCENT),
            (2.0, calibrated.get(value, 0), _hatched(chart_id)),
        ):
            h = (base - top) * count / most
            x = centre + offset
            parts.append(_rect(x, base - h, _n(bar), _n(h), fill))
            parts.append(_text(x + bar / 2, base - h - 5, str(count), anchor="middle"))
        parts.append(_text(centre, base + 18, str(value), anchor="middle", bold=True))
    parts.append(_text((left + right) / 2, height - 4, "Rating", anchor="middle", fill=MUTED))
    said = "; ".join(
        f"rating {v}: {proposed.get(v, 0)} proposed, {calibrated.get(v, 0)} calibrated"
        for v in values
    )
    title = "Rating distribution, proposed and calibrated"
    svg = _svg(chart_id, height, title, f"People per rating. {said}.", _join(parts))
    table = _table(
        title,
        ["Rating", "Proposed", "Calibrated"],
        [[str(v), str(proposed.get(v, 0)), str(calibrated.get(v, 0))] for v in values],
    )
    caption = (
        "Solid bars: people per proposed rating. Hatched bars: the same people after "
        "calibration (someone not yet calibrated counts at their proposal)."
    )
    return _figure(svg, caption, table)


# ---------------------------------------------------------------- horizontal bars


def _hbars(
    rows: Sequence[_HBar],
    *,
    chart_id: str,
    domain: tuple[float, float],
    ticks: Sequence[tuple[float, str]],
    guides: Sequence[float],
    legend: Sequence[tuple[str, str]],
    captions: tuple[str, str],
    title: str,
    summary: str,
) -> Markup:
    """Rows of bars from zero (wherever zero sits in `domain`), each with a heading line
    above it and its value written at its end; dashed guide lines; a solid zero line."""
    left, right = 60.0, WIDTH - 60.0  # room for a value written past the bar's end
    low, high = domain

    def at(v: float) -> float:
        return left + (right - left) * (min(max(v, low), high) - low) / (high - low)

    bottom = _TOP + _ROW * len(rows)
    fills = {False: ACCENT, True: _hatched(chart_id)}
    parts = [_tag("<defs>{}</defs>", _hatch(f"{chart_id}-hatch", WARN)), _legend(legend)]
    zero = at(0.0)
    for i, row in enumerate(rows):
        y = _TOP + _ROW * i
        parts.append(_text(8, y + 15, row.heading, fit=WIDTH - 16))
        mid = y + 29
        parts += [_vline(at(g), mid - 11, y + _ROW, dashed=True) for g in guides]
        parts.append(_vline(zero, mid - 11, y + _ROW))
        if row.value is None:
            parts.append(_text(zero + 6, mid + 5, row.value_text, fill=MUTED, halo=True))
            continue
        end = at(row.value)
        x, w = min(zero, end), abs(end - zero)
        parts.append(_rect(x, mid - 8, _n(w), "16", fills[row.marked]))
        parts.append(_marker(end, mid, row.marked))
        below = row.value < 0
        anchor = "end" if below else "start"
        parts.append(
            _text(
                end + (-11 if below else 11),
                mid + 5,
                row.value_text,
                anchor=anchor,
                bold=True,
                halo=True,
            )
        )
    for value, label in ticks:
        parts.append(_line(at(value), bottom, at(value), bottom + 5))
        parts.append(_text(at(value), bottom + 19, label, anchor="middle", size=_SMALL))
    parts.append(_text(8, bottom + 39, captions[0], size=_SMALL, fill=MUTED))
    parts.append(_text(WIDTH - 8, bottom + 39, captions[1], anchor="end", size=_SMALL, fill=MUTED))
    return _svg(chart_id, bottom + 46, title, summary, _join(parts))


def leniency_chart(managers: Sequence[ManagerRow], *, chart_id: str) -> Markup:
    """Each manager's mean (rating - what the evidence predicts) over their rated reports,
    around a zero line: left of it they rate harder than the evidence, right of it softer.
    Dashed lines mark half a rating step. Each row also says what the report concludes
    (`ManagerRow.said`: flagged, within, or not enough rated reports to tell) with the
    mixed model's shrunken estimate and its 95% interval, which decide the flag."""
    reach = max([1.0, *(abs(m.mean_residual) for m in managers)])
    reach = float(int(reach * 2 + 0.999)) / 2
    rows = [
        _HBar(
            heading=f"{m.label} · n {m.n} · {m.direction}"
            + (" · flagged" if m.flagged else "")
            + (" · too few reports to tell" if m.verdict == "not_enough_evidence" else ""),
            value=m.mean_residual,
            value_text=f"{m.mean_residual:+.2f}",
            marked=m.flagged,
        )
        for m in managers
    ]
    said = "; ".join(
        f"{m.label}: {m.mean_residual:+.2f} points over {m.n} rated reports, {m.direction}"
        + (", flagged" if m.flagged else "")
        + (f" ({m.said()})" if m.said() else "")
        for m in managers
    )
    title = "Manager leniency: ratings against what the evidence predicts"
    svg = _hbars(
        rows,
        chart_id=chart_id,
        domain=(-reach, reach),
        ticks=[(v, f"{v:+.1f}" if v else "0") for v in (-reach, -0.5, 0.0, 0.5, reach)],
        guides=[-0.5, 0.5],
        legend=[(ACCENT, "Not flagged"), (_hatched(chart_id), "Flagged")],
        captions=("← harder than evidence", "softer than evidence →"),
        title=title,
        summary=f"Mean rating points above or below the evidence per manager. {said}.",
    )
    table = _table(
        title,
        [
            "Manager",
            "Rated reports",
            "Mean offset (points)",
            "Direction",
            "Flagged",
            "What the report says",
        ],
        [
            [
                m.label,
                str(m.n),
                f"{m.mean_residual:+.2f}",
                m.direction,
                _yes(m.flagged),
                m.said() or "-",
            ]
            for m in managers
        ],
    )
    caption = (
        "Bars run from zero to each manager's mean offset; dashed lines at half a rating "
        "step. Flagged (hatched, diamond): the mixed model's shrunken estimate has a 95% "
        "interval that excludes zero. Too few reports to tell: the team's interval still "
        "reaches half a step."
    )
    return _figure(svg, caption, table)


def rate_chart(groups: Sequence[RateBar], *, top: str, small: int, chart_id: str) -> Markup:
    """Each group's share of people at the top ratings (adverse impact); suppressed groups
    are named with their size but drawn without a bar. The dashed line is four fifths of
    the highest group's rate, the EEOC rule of thumb."""
    best = max((g.rate for g in groups if g.reference and g.rate is not None), default=None)
    suppressed = f"suppressed (fewer than {small})"
    rows = [
        _HBar(
            heading=g.group
            + ("" if g.rate is None else f" · n {g.n}")
            + (" · highest rate" if g.reference else "")
            + (" · flagged" if g.flagged else ""),
            value=g.rate,
            value_text=suppressed if g.rate is None else f"{g.rate:.0%}",
            marked=g.flagged,
        )
        for g in groups
    ]
    said = "; ".join(
        f"{g.group}: {suppressed if g.rate is None else f'{g.rate:.0%} of {g.n}'}"
        f"{', flagged' if g.flagged else ''}"
        for g in groups
    )
    title = f"Share of each group rated {top}"
    svg = _hbars(
        rows,
        chart_id=chart_id,
        domain=(0.0, 1.0),
        ticks=[(v, f"{v:.0%}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
        guides=[] if best is None else [best * 0.8],
        legend=[(ACCENT, "Not flagged"), (_hatched(chart_id), "Flagged")],
        captions=("", "dashed: four fifths of the highest" if best is not None else ""),
        title=title,
        summary=f"{said}.",
    )
    table = _table(
        title,
        ["Group", "People", "Rate", "Ratio to highest", "Flagged"],
        [
            [
                g.group,
                suppressed if g.rate is None else str(g.n),
                suppressed if g.rate is None else f"{g.rate:.0%}",
                "" if g.ratio is None else f"{g.ratio:.2f}",
                _yes(g.flagged),
            ]
            for g in groups
        ],
    )
    caption = (
        "A group is flagged when its rate is under four fifths of the highest group's and "
        "the difference is significant (Fisher's exact test, Holm-adjusted)."
    )
    return _figure(svg, caption, table)
