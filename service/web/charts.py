"""Charts drawn on the server as SVG: no script, no CDN, readable without colour.

Every chart is a <figure> holding an SVG with role="img", a <title> and an aria-label that
says in words what it shows; a label with the value on every bar; a second series told
apart by a hatch pattern and a marker shape as well as by colour; and the same numbers as
a table for screen readers (visually hidden: the picture is for the eye, the table for the
ear). All text is escaped here, so a template inserts the result as it is.

The drawings use a viewBox and scale to the width they are given (`.chart` in app.css);
they are narrow enough (440 units) and their smallest text large enough (14 units) that it
stays legible on a phone: a 390 px screen draws them about 318 px wide, so 14 units are
about 10 px. Text that can sit over a guide line has a white halo.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

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
) -> str:
    """`halo`: a white outline under the glyphs, so that a line behind the text does not
    run through it. `fit`: the width the text may take; longer text (by a generous
    estimate) is squeezed into it rather than cut off at the chart's edge."""
    extra = ' font-weight="700"' if bold else ""
    if fit is not None and len(text) * _CHAR * size / _SMALL > fit:
        extra += f' textLength="{_n(fit)}" lengthAdjust="spacingAndGlyphs"'
    if halo:
        extra += ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{size}"'
        f'{extra} fill="{fill}">{escape(text)}</text>'
    )


def _vline(x: float, y1: float, y2: float, *, dashed: bool = False) -> str:
    """The zero line (solid) or a guide (dashed), drawn beside a bar, never through the
    text above it."""
    style = (
        f'stroke="{MUTED}" stroke-width="1" stroke-dasharray="4 3"'
        if dashed
        else (f'stroke="{INK}" stroke-width="2"')
    )
    return f'<line x1="{_n(x)}" y1="{_n(y1)}" x2="{_n(x)}" y2="{_n(y2)}" {style}/>'


def _hatch(pattern_id: str, colour: str) -> str:
    """Diagonal stripes: the second series reads as different in greyscale too."""
    return (
        f'<pattern id="{escape(pattern_id)}" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#ffffff"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{colour}" stroke-width="3"/></pattern>'
    )


def _marker(x: float, y: float, marked: bool) -> str:
    """A circle, or for the marked series a larger diamond: shape, not only colour."""
    if marked:
        points = f"{_n(x)},{_n(y - 7)} {_n(x + 7)},{_n(y)} {_n(x)},{_n(y + 7)} {_n(x - 7)},{_n(y)}"
        return f'<polygon points="{points}" fill="{WARN}" stroke="{INK}" stroke-width="1"/>'
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4.5" fill="{INK}"/>'


def _svg(chart_id: str, height: float, title: str, summary: str, body: str) -> str:
    return (
        f'<svg class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-label="{escape(title)}. {escape(summary)}" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'width="{WIDTH}" height="{_n(height)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif"><title>{escape(title)}</title>{body}</svg>'
    )


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The chart's numbers, the first column as row headers; hidden by its wrapper (a
    table ignores the width that hides a box)."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join(
        f'<tr><th scope="row">{escape(row[0])}</th>'
        + "".join(f"<td>{escape(cell)}</td>" for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="visually-hidden"><table><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _figure(svg: str, caption: str, table: str) -> Markup:
    return Markup(
        f'<figure class="chart-figure">{svg}'
        f'<figcaption class="help">{escape(caption)}</figcaption>{table}</figure>'
    )


def _legend(items: Sequence[tuple[str, str]], y: float = 16) -> str:
    """Swatches (an SVG fill each) with their names, left to right."""
    out, x = [], 8.0
    for fill, name in items:
        out.append(
            f'<rect x="{_n(x)}" y="{_n(y - 10)}" width="14" height="12" fill="{fill}" '
            f'stroke="{INK}" stroke-width="1"/>'
        )
        out.append(_text(x + 19, y, name, size=_SMALL))
        x += 19 + _CHAR * len(name) + 18
    return "".join(out)


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
    hatch = f"{chart_id}-hatch"
    parts = [
        f"<defs>{_hatch(hatch, ACCENT)}</defs>",
        _legend([(ACCENT, "Proposed"), (f"url(#{escape(hatch)})", "Calibrated")]),
        f'<line x1="{_n(left)}" y1="{_n(base)}" x2="{_n(right)}" y2="{_n(base)}" '
        f'stroke="{INK}" stroke-width="1"/>',
    ]
    for i, value in enumerate(values):
        centre = left + step * (i + 0.5)
        for offset, count, fill in (
            (-bar - 2, proposed.get(value, 0), ACCENT),
            (2.0, calibrated.get(value, 0), f"url(#{escape(hatch)})"),
        ):
            h = (base - top) * count / most
            x = centre + offset
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(base - h)}" width="{_n(bar)}" height="{_n(h)}" '
                f'fill="{fill}" stroke="{INK}" stroke-width="1"/>'
            )
            parts.append(_text(x + bar / 2, base - h - 5, str(count), anchor="middle"))
        parts.append(_text(centre, base + 18, str(value), anchor="middle", bold=True))
    parts.append(_text((left + right) / 2, height - 4, "Rating", anchor="middle", fill=MUTED))
    said = "; ".join(
        f"rating {v}: {proposed.get(v, 0)} proposed, {calibrated.get(v, 0)} calibrated"
        for v in values
    )
    title = "Rating distribution, proposed and calibrated"
    svg = _svg(chart_id, height, title, f"People per rating. {said}.", "".join(parts))
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
) -> str:
    """Rows of bars from zero (wherever zero sits in `domain`), each with a heading line
    above it and its value written at its end; dashed guide lines; a solid zero line."""
    left, right = 60.0, WIDTH - 60.0  # room for a value written past the bar's end
    low, high = domain

    def at(v: float) -> float:
        return left + (right - left) * (min(max(v, low), high) - low) / (high - low)

    bottom = _TOP + _ROW * len(rows)
    hatch = f"{chart_id}-hatch"
    fills = {False: ACCENT, True: f"url(#{escape(hatch)})"}
    parts = [f"<defs>{_hatch(hatch, WARN)}</defs>", _legend(legend)]
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
        parts.append(
            f'<rect x="{_n(x)}" y="{_n(mid - 8)}" width="{_n(w)}" height="16" '
            f'fill="{fills[row.marked]}" stroke="{INK}" stroke-width="1"/>'
        )
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
        parts.append(
            f'<line x1="{_n(at(value))}" y1="{_n(bottom)}" x2="{_n(at(value))}" '
            f'y2="{_n(bottom + 5)}" stroke="{INK}" stroke-width="1"/>'
        )
        parts.append(_text(at(value), bottom + 19, label, anchor="middle", size=_SMALL))
    parts.append(_text(8, bottom + 39, captions[0], size=_SMALL, fill=MUTED))
    parts.append(_text(WIDTH - 8, bottom + 39, captions[1], anchor="end", size=_SMALL, fill=MUTED))
    return _svg(chart_id, bottom + 46, title, summary, "".join(parts))


def leniency_chart(managers: Sequence[ManagerRow], *, chart_id: str) -> Markup:
    """Each manager's mean (rating - what the evidence predicts) over their rated reports,
    around a zero line: left of it they rate harder than the evidence, right of it softer.
    Dashed lines mark half a rating step, where a significant offset is flagged."""
    reach = max([1.0, *(abs(m.mean_residual) for m in managers)])
    reach = float(int(reach * 2 + 0.999)) / 2
    rows = [
        _HBar(
            heading=f"{m.label} · n {m.n} · {m.direction}" + (" · flagged" if m.flagged else ""),
            value=m.mean_residual,
            value_text=f"{m.mean_residual:+.2f}",
            marked=m.flagged,
        )
        for m in managers
    ]
    said = "; ".join(
        f"{m.label}: {m.mean_residual:+.2f} points over {m.n} rated reports, {m.direction}"
        + (", flagged" if m.flagged else "")
        for m in managers
    )
    title = "Manager leniency: ratings against what the evidence predicts"
    svg = _hbars(
        rows,
        chart_id=chart_id,
        domain=(-reach, reach),
        ticks=[(v, f"{v:+.1f}" if v else "0") for v in (-reach, -0.5, 0.0, 0.5, reach)],
        guides=[-0.5, 0.5],
        legend=[(ACCENT, "Not flagged"), (f"url(#{escape(chart_id)}-hatch)", "Flagged")],
        captions=("← harder than evidence", "softer than evidence →"),
        title=title,
        summary=f"Mean rating points above or below the evidence per manager. {said}.",
    )
    table = _table(
        title,
        ["Manager", "Rated reports", "Mean offset (points)", "Direction", "Flagged"],
        [
            [m.label, str(m.n), f"{m.mean_residual:+.2f}", m.direction, _yes(m.flagged)]
            for m in managers
        ],
    )
    caption = (
        "Bars run from zero to each manager's mean offset; dashed lines at half a rating "
        "step. Flagged (hatched, diamond): at least half a step and significant."
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
        legend=[(ACCENT, "Not flagged"), (f"url(#{escape(chart_id)}-hatch)", "Flagged")],
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
