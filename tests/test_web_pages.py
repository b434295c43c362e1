"""The manager's, the calibration panel's and HR's pages over HTTP (no browser): the same
scope as the API, every change audited, refusals as messages, pseudonyms on the panel,
charts drawn on the server, small groups suppressed in the bias report."""

import re
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from domain.periods import parse_period
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.calibration.cohort import ManagerRow
from service.calibration.panels import add_member
from service.db.models import AuditEvent
from service.jobs.worker import Worker
from service.ratings.workflow import cycle_ratings
from service.settings import Settings
from service.web.charts import RateBar, distribution_chart, leniency_chart, rate_chart
from tests.api_org import CYCLE, ApiOrg
from tests.test_web import ORIGIN, sign_in

SVG = "{http://www.w3.org/2000/svg}"


def post_form(client: TestClient, url: str, data: dict[str, str] | None = None) -> str:
    """Post a form as the browser would, follow the redirect, return the page shown."""
    response = client.post(url, data=data or {}, headers=ORIGIN, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return page.text


def audit_events(engine: Engine, action: str) -> list[Any]:
    """The audit trail's events of one action, oldest first."""
    with engine.connect() as conn:
        query = select(AuditEvent.__table__).where(AuditEvent.action == action)
        return list(conn.execute(query.order_by(AuditEvent.id)).all())


def cy_label(client: TestClient, api_org: ApiOrg) -> str:
    """Cy's pseudonym on the panel (the one rated 4), as the API tells a member."""
    cohort = client.get(f"/api/v1/panels/{api_org.panel_id}", headers=api_org.auth("pat")).json()
    label: str = next(r["label"] for r in cohort["rows"] if r["proposed"] == 4)
    return label


def cell(page: str, performance: int, potential: int) -> str:
    found = re.search(
        rf'data-performance="{performance}" data-potential="{potential}">(.*?)</div>',
        page,
        re.DOTALL,
    )
    assert found is not None
    return found.group(1)


# ---------------------------------------------------------------- my team


def test_the_team_page_lists_the_managers_reports_with_their_drafts(
    client: TestClient, api_org: ApiOrg
) -> None:
    sign_in(client, api_org, "bo")
    page = client.get("/team").text
    assert "My team, 2026-H1" in page
    assert "Cy Diaz" in page and "Dee Okafor" in page
    assert "Fay" not in page and "Eve Novak" not in page
    assert f'href="/drafts/{api_org.drafts["cy_self"]}"' in page
    assert f'href="/drafts/{api_org.drafts["cy_feedback"]}"' in page
    assert f'href="/team/{api_org.ids["dee"]}/rating?period=2026-H1"' in page
    assert "4 by you" in page  # Cy's rating from the fixture's ratings file
    sign_in(client, api_org, "ana")
    indirect = client.get("/team").text
    assert "Fay Moreau" in indirect and "Eve Novak" in indirect


def test_a_manager_proposes_a_rating_with_the_evidence_in_view(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    sign_in(client, api_org, "bo")
    dee = api_org.ids["dee"]
    form = client.get(f"/team/{dee}/rating")
    assert form.status_code == 200
    assert "Rating for Dee Okafor, 2026-H1" in form.text
    assert "In numbers" in form.text and "You proposed 3." in form.text
    assert '<label for="rating">' in form.text
    page = post_form(client, f"/team/{dee}/rating", {"rating": "2", "period": CYCLE})
    assert "Proposed 2 for Dee Okafor in 2026-H1." in page
    assert "2 by you" in page
    with engine.connect() as conn:
        (stored,) = cycle_ratings(conn, CYCLE, [dee])
    assert (stored.rating, stored.rater_id) == (2, api_org.ids["bo"])
    (event,) = [
        e for e in audit_events(engine, "rating.proposed") if e.actor == "bo.chen@example.com"
    ]
    assert event.before == {"rating": 3, "calibrated_rating": None}
    assert event.after == {"rating": 2, "calibrated_rating": None}

    refused = post_form(client, f"/team/{dee}/rating", {"rating": "9", "period": CYCLE})
    assert 'class="error"' in refused and "outside the scale" in refused


def test_the_team_pages_keep_to_the_managers_scope(client: TestClient, api_org: ApiOrg) -> None:
    sign_in(client, api_org, "bo")
    fay = api_org.ids["fay"]
    hidden = client.get(f"/team/{fay}/rating")
    assert hidden.status_code == 404 and "Fay" not in hidden.text
    posted = client.post(f"/team/{fay}/rating", data={"rating": "3"}, headers=ORIGIN)
    assert posted.status_code == 404
    sign_in(client, api_org, "cy")
    assert "Nobody reports to you." in client.get("/team").text
    assert client.get(f"/team/{api_org.ids['cy']}/rating").status_code == 403
    sign_in(client, api_org, "hal")
    assert client.get(f"/team/{api_org.ids['cy']}/rating").status_code == 403


# ---------------------------------------------------------------- calibration panel


def test_the_panel_page_shows_pseudonyms_charts_and_the_nine_box(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    label = cy_label(client, api_org)
    sign_in(client, api_org, "pat")
    assert f'href="/panels/{api_org.panel_id}"' in client.get("/panels").text
    page = client.get(f"/panels/{api_org.panel_id}").text
    assert label in page and re.search(r"P-[0-9a-f]{6}", page)
    for name in ("Cy", "Diaz", "Fay", "Moreau", "Bo Chen", "Eve Novak"):
        assert name not in page
    assert '<svg class="chart" id="distribution" role="img"' in page
    assert "Discuss first" in page and "Manager leniency" in page
    assert 'class="ninebox"' in page and label in page.split("Not placed yet:")[1]
    assert '<label for="perf-' in page and '<label for="pot-' in page

    placed = post_form(
        client,
        f"/panels/{api_org.panel_id}/people/{label}/placement",
        {"performance": "3", "potential": "2"},
    )
    assert f"{label} placed: performance high, potential medium." in placed
    assert label in cell(placed, performance=3, potential=2)
    assert label not in cell(placed, performance=2, potential=3)
    (event,) = audit_events(engine, "placement.set")
    assert event.actor == "pat.singh@example.com"
    assert event.after == {"performance": 3, "potential": 2}


def test_the_panel_calibrates_and_finalises_after_the_bias_report(
    client: TestClient, api_org: ApiOrg, engine: Engine, sense_parser: SenseParser
) -> None:
    label = cy_label(client, api_org)
    sign_in(client, api_org, "pat")
    base = f"/panels/{api_org.panel_id}/people/{label}"
    calibrated = post_form(client, f"{base}/calibrated-rating", {"rating": "3"})
    assert f"{label}: calibrated rating 3." in calibrated
    refused = post_form(client, f"{base}/finalise")
    assert 'class="error"' in refused and "run the bias report for 2026-H1 first" in refused
    assert f"person {api_org.ids['cy']} " not in refused
    with engine.begin() as conn:
        build_report(conn, parse_period(CYCLE), actor="hal.berg@example.com", parser=sense_parser)
    final = post_form(client, f"{base}/finalise")
    assert f"{label}: rating final." in final and "The rating is final." in final
    with engine.connect() as conn:
        (stored,) = cycle_ratings(conn, CYCLE, [api_org.ids["cy"]])
    assert (stored.calibrated_rating, stored.finalised_by) == (3, "pat.singh@example.com")
    assert [e.actor for e in audit_events(engine, "rating.calibrated")] == ["pat.singh@example.com"]
    (finalised,) = audit_events(engine, "rating.finalised")
    assert (finalised.actor, finalised.entity_id) == (
        "pat.singh@example.com",
        str(stored.person_id),
    )
    again = post_form(client, f"{base}/calibrated-rating", {"rating": "4"})
    assert 'class="error"' in again and "no longer change" in again


def test_a_member_in_the_cohort_decides_nothing_about_themselves_and_ids_stay_hidden(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    with engine.begin() as conn:
        add_member(conn, api_org.panel_id, api_org.ids["fay"], actor="test")
    cohort = client.get(f"/api/v1/panels/{api_org.panel_id}", headers=api_org.auth("fay")).json()
    fay = next(r["label"] for r in cohort["rows"] if r["proposed"] is None)
    sign_in(client, api_org, "fay")
    base = f"/panels/{api_org.panel_id}/people/{fay}"
    page = client.get(f"/panels/{api_org.panel_id}").text
    assert "This is you." in page and f'action="{base}/placement"' not in page
    assert (
        f'action="/panels/{api_org.panel_id}/people/{cy_label(client, api_org)}/placement"' in page
    )
    own = post_form(client, f"{base}/placement", {"performance": "3", "potential": "3"})
    assert 'class="error"' in own and "nobody calibrates, places or finalises themselves" in own
    assert audit_events(engine, "placement.set") == []
    sign_in(client, api_org, "pat")
    unproposed = post_form(client, f"{base}/calibrated-rating", {"rating": "3"})
    assert f"{fay} has no proposed rating in 2026-H1" in unproposed
    assert f"person {api_org.ids['fay']}" not in unproposed


def test_only_members_and_hr_open_a_panel(client: TestClient, api_org: ApiOrg) -> None:
    label = cy_label(client, api_org)
    sign_in(client, api_org, "bo")
    assert client.get(f"/panels/{api_org.panel_id}").status_code == 404
    posted = client.post(f"/panels/{api_org.panel_id}/people/{label}/finalise", headers=ORIGIN)
    assert posted.status_code == 404
    assert "You sit on no calibration panel." in client.get("/panels").text
    sign_in(client, api_org, "hal")
    assert client.get(f"/panels/{api_org.panel_id}").status_code == 200


# ---------------------------------------------------------------- HR


def test_hr_reads_the_stored_report_with_small_groups_suppressed_and_runs_it_again(
    client: TestClient,
    api_org: ApiOrg,
    engine: Engine,
    settings: Settings,
    sense_parser: SenseParser,
) -> None:
    sign_in(client, api_org, "cy")
    refused = client.get("/hr")
    assert refused.status_code == 403 and "Not allowed" in refused.text
    sign_in(client, api_org, "hal")
    assert "No bias report for 2026-H1 yet." in client.get("/hr").text
    with engine.begin() as conn:
        build_report(conn, parse_period(CYCLE), actor="hal.berg@example.com", parser=sense_parser)
    page = client.get("/hr").text
    assert "Report version 1" in page and "Run by hal.berg@example.com" in page
    assert "3 rated people" in page
    suppressed = re.findall(r'<td colspan="\d+">suppressed \(fewer than 5\)</td>', page)
    assert len(suppressed) >= 3
    assert "Every group is suppressed (fewer than 5): nothing to chart." in page
    assert "Flagged findings" in page

    queued = post_form(client, "/hr/bias-report", {"cycle": CYCLE})
    job_id = re.search(r"queued as job (\d+)", queued)
    assert job_id is not None
    assert f'href="/jobs/{job_id.group(1)}"' in queued
    Worker(engine, settings).run_once()
    assert "Report version 2" in client.get("/hr").text


def test_a_form_for_the_panel_posted_from_another_site_is_refused(
    client: TestClient, api_org: ApiOrg
) -> None:
    label = cy_label(client, api_org)
    sign_in(client, api_org, "pat")
    response = client.post(
        f"/panels/{api_org.panel_id}/people/{label}/finalise",
        headers={"Origin": "https://evil.example.com"},
    )
    assert response.status_code == 403


# ---------------------------------------------------------------- charts


def test_the_distribution_chart_labels_every_bar_and_tells_the_series_apart() -> None:
    figure = ET.fromstring(
        str(distribution_chart({1: 0, 2: 1, 3: 2}, {1: 0, 2: 2, 3: 1}, chart_id="d"))
    )
    svg = figure.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img"
    assert "rating 3: 2 proposed, 1 calibrated" in (svg.get("aria-label") or "")
    assert svg.findtext(f"{SVG}title") == "Rating distribution, proposed and calibrated"
    bars = svg.findall(f"{SVG}rect[@stroke-width='1']")
    fills = {b.get("fill") for b in bars if b.get("width") != "14"}
    assert fills == {"#1f5fbf", "url(#d-hatch)"}  # solid and hatched, not two colours
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    # per rating: the proposed count, the calibrated count, the rating itself
    assert labels == ["Proposed", "Calibrated", *"001", *"122", *"213", "Rating"]
    table = figure.find("div[@class='visually-hidden']/table")
    assert table is not None
    assert [th.get("scope") for th in table.iter("th")][:3] == ["col", "col", "col"]


def test_the_leniency_chart_draws_around_zero_with_text_and_escapes_labels() -> None:
    managers = [
        ManagerRow("P-aaaaaa", None, 4, 0.62, "generous", True),
        ManagerRow("<b>Bo</b> & co", None, 3, -0.2, "harsh", False),
    ]
    markup = str(leniency_chart(managers, chart_id="l"))
    assert "<b>" not in markup and "&lt;b&gt;Bo&lt;/b&gt; &amp; co" in markup
    svg = ET.fromstring(markup).find(f"{SVG}svg")
    assert svg is not None
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert "+0.62" in texts and "-0.20" in texts and "0" in texts
    assert "P-aaaaaa · n 4 · generous · flagged" in texts
    assert len(svg.findall(f"{SVG}polygon")) == 1  # the flagged one: a diamond
    assert len(svg.findall(f"{SVG}circle")) == 1
    assert "P-aaaaaa: +0.62 points over 4 rated reports, generous, flagged" in (
        svg.get("aria-label") or ""
    )


def test_the_rate_chart_says_suppressed_instead_of_a_number() -> None:
    groups = [
        RateBar("woman", 12, 0.5, 1.0, True, False),
        RateBar("nonbinary", 0, None, None, False, False),
    ]
    markup = str(rate_chart(groups, top="4 or higher", small=5, chart_id="r"))
    svg = ET.fromstring(markup).find(f"{SVG}svg")
    assert svg is not None
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert "suppressed (fewer than 5)" in texts and "nonbinary" in texts and "50%" in texts
    assert "nonbinary: suppressed (fewer than 5)" in (svg.get("aria-label") or "")
