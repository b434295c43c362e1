"""The HR bias report and a calibration panel in headless Chromium with a realistic store:
the 120-person synthetic org (evals/synthetic_org), ingested, drafted for 2026-H1 by the
offline drafter, with a panel for its largest cohort, some people on the 9-box, a few
ratings calibrated and the cycle's bias report run.

tests/test_e2e.py looks at every page on an 8-person org, where every group is suppressed
and the charts are nearly empty; this test looks at the charts with data in them, checks
that small groups are still suppressed, scans with axe-core and screenshots the pages to
docs/screenshots/{hr-cycle,panel-cohort}-{desktop,phone}.png. It reuses test_e2e.py's
browser, server and helpers (`live` serves this module's `api_org`).
"""

import asyncio
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import Engine, insert, select

from domain.periods import parse_period
from evals.synthetic_org import generate_org
from service.access.tokens import issue_token
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.calibration.panels import create_panel, place
from service.db.models import Person, PersonRole
from service.drafting.run import Drafting, draft_cycle, offline_drafter
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, ingest_path
from service.ratings.workflow import calibrate_rating, cycle_ratings
from service.settings import Settings
from tests import test_e2e
from tests.api_org import CYCLE, CYCLE_PERIOD, ApiOrg
from tests.test_e2e import PHONE, Live

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# test_e2e.py's fixtures: the browser, and `live`, which serves this module's `api_org`
browser = test_e2e.browser
live = test_e2e.live

PEOPLE = 120
KINDS = ("calibration_summary", "manager_feedback")
# (performance, potential) for the first cohort people by id: two share a cell.
PLACEMENTS = [(3, 3), (2, 3), (2, 2), (2, 2), (1, 2), (3, 1)]
SUPPRESSED = "suppressed (fewer than 5)"


def build_synthetic_org(
    engine: Engine, settings: Settings, ingestor: Ingestor, folder: Path, parser: SenseParser
) -> ApiOrg:
    """The synthetic org in the store, as `ApiOrg`: "hr" (an HR admin in people ops) and
    "member" (a panel member from outside the cohort) with tokens, and the panel."""
    generate_org(folder, people=PEOPLE, seed=7)
    ingest_path(ingestor, folder)
    run = Drafting(engine, settings, ingestor.embedder(), offline_drafter(), "test")
    drafted = asyncio.run(
        draft_cycle(run, CYCLE_PERIOD, KINDS, concurrency=2, progress=NoProgress())
    )
    assert not drafted.failed, drafted.failed
    assert len(drafted.drafted) > PEOPLE, "most people should have both drafts"
    with engine.begin() as conn:
        people = conn.execute(select(Person.id, Person.level, Person.job_family)).all()
        (level, family), size = Counter((p.level, p.job_family) for p in people).most_common(1)[0]
        cohort = sorted(p.id for p in people if (p.level, p.job_family) == (level, family))
        assert size >= 8, (level, family, size)
        member = max(
            (p for p in people if p.job_family == family and p.level != level),
            key=lambda p: (p.level, -p.id),
        ).id
        hr = min(p.id for p in people if p.job_family == "people_ops")
        conn.execute(insert(PersonRole).values(person_id=hr, role="hr_admin", granted_by="test"))
        panel_id = create_panel(conn, CYCLE_PERIOD, level, family, [member], actor="test")
        for person, (performance, potential) in zip(cohort, PLACEMENTS, strict=False):
            place(conn, panel_id, person, performance, potential, actor="test")
        rated = [r for r in cycle_ratings(conn, CYCLE, cohort) if r.finalised_at is None]
        for r in rated[:3]:  # the panel moves a few ratings by a step
            moved = r.rating - 1 if r.rating > 2 else r.rating + 1
            calibrate_rating(conn, CYCLE, r.person_id, moved, actor="test")
        build_report(
            conn, parse_period(CYCLE), actor="test", parser=parser
        )  # after the changes: not stale
        ids = {"hr": hr, "member": member}
        tokens = {
            who: issue_token(conn, pid, days=1, label="test", actor="test").token
            for who, pid in ids.items()
        }
    return ApiOrg(ids, tokens, panel_id=panel_id)


@pytest.fixture
def api_org(
    engine: Engine,
    settings: Settings,
    ingestor: Ingestor,
    tmp_path: Path,
    sense_parser: SenseParser,
) -> ApiOrg:
    """Overrides conftest's (and test_e2e.py's) small org for `live`; built in a thread of
    its own, because drafting runs an event loop and Playwright's sync API owns this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(
            build_synthetic_org, engine, settings, ingestor, tmp_path / "org", sense_parser
        ).result()


def said(chart: Locator) -> str:
    """What a chart says to a screen reader."""
    label = chart.get_attribute("aria-label")
    assert label and re.search(r"\d", label), f"{chart} says no number: {label!r}"
    return label


CHART_TEXT = """() => {
  const problems = [];
  let smallest = Infinity;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.viewBox.baseVal;
    const scale = svg.getBoundingClientRect().width / box.width;
    const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim());
    const boxes = texts.map(t => [t, t.getBBox()]);
    for (const [t, b] of boxes) {
      smallest = Math.min(smallest, parseFloat(getComputedStyle(t).fontSize) * scale);
      if (b.x < 0 || b.y < 0 || b.x + b.width > box.width || b.y + b.height > box.height)
        problems.push(`${svg.id}: "${t.textContent}" runs outside the chart`);
    }
    boxes.forEach(([t, b], i) => boxes.slice(i + 1).forEach(([u, c]) => {
      const across = Math.min(b.x + b.width, c.x + c.width) - Math.max(b.x, c.x);
      const down = Math.min(b.y + b.height, c.y + c.height) - Math.max(b.y, c.y);
      if (across > 1 && down > 1)
        problems.push(`${svg.id}: "${t.textContent}" overlaps "${u.textContent}"`);
    }));
  }
  return {smallest, problems};
}"""


def check_chart_text(page: Page) -> None:
    """At a phone's width, no chart text is under 10 px (SVG text shrinks with its SVG),
    runs outside its chart or overlaps other text."""
    page.set_viewport_size(PHONE)
    found = page.evaluate(CHART_TEXT)
    assert not found["problems"], found["problems"]
    assert found["smallest"] >= 10, f"chart text of {found['smallest']:.1f} px on a phone"


def test_the_bias_report_and_a_panel_with_a_realistic_org(live: Live) -> None:
    org = live.org
    hr = live.open_as("hr", "/hr")
    expect(hr.get_by_role("heading", level=1)).to_have_text(f"Bias report, {CYCLE}")
    expect(hr.get_by_role("status")).to_have_count(0)  # not stale
    gender = hr.locator("svg#impact-gender[role=img]")
    expect(gender).to_be_visible()
    words = said(gender)
    assert re.search(r"woman: \d+% of \d+", words) and re.search(r"man: \d+% of \d+", words)
    top_gender = hr.get_by_role("table", name=re.compile(r"^Gender Top ratings"))
    # one nonbinary and one undisclosed person: named, never counted
    for group in ("nonbinary", "undisclosed"):
        assert f"{group}: {SUPPRESSED}" in words, words
        row = top_gender.get_by_role("row", name=re.compile(rf"^{group}\b"))
        expect(row).to_contain_text(SUPPRESSED)
        expect(row.locator("td")).to_have_count(1)
    assert hr.get_by_text(SUPPRESSED).count() >= 4  # in every table of small groups
    for chart in hr.locator("svg.chart[role=img]").all():
        said(chart)
    leniency = said(hr.locator("svg#hr-leniency[role=img]"))
    managers = re.findall(r"\(E\d+\): [+-]\d\.\d\d points over (\d+) rated reports", leniency)
    assert managers and all(int(n) >= 3 for n in managers), leniency
    live.look(hr, "hr-cycle")
    check_chart_text(hr)

    page = live.open_as("member", f"/panels/{org.panel_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Calibration: L4 engineering")
    cohort = page.get_by_role("table", name="The cohort's ratings side by side")
    rows = cohort.locator("tbody tr")
    assert rows.count() >= 8
    distribution = said(page.locator("svg#distribution[role=img]"))
    proposed = re.findall(r"rating \d: (\d+) proposed, (\d+) calibrated", distribution)
    assert sum(int(p) for p, _ in proposed) >= 8, distribution
    assert any(p != c for p, c in proposed), f"no rating moved: {distribution}"
    panel_managers = re.findall(
        r": [+-]\d\.\d\d points over (\d+) rated reports", said(page.locator("svg#leniency"))
    )
    assert panel_managers and all(int(n) >= 3 for n in panel_managers)  # none on too few
    expect(page.locator(".ninebox .cell li")).to_have_count(len(PLACEMENTS))
    expect(
        page.locator('.ninebox .cell[data-performance="2"][data-potential="2"] li')
    ).to_have_count(2)
    assert "Not placed yet:" in page.content()
    live.look(page, "panel-cohort")
    check_chart_text(page)
