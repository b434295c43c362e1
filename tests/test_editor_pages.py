"""A manager's editor in the browser's terms (no browser): drafts asked for from the team
table, a draft written again without chosen evidence or in another tone, and who gets the
forms (service/web/pages/team.py, drafts.py)."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.db.models import Draft
from service.drafting.store import draft_evidence
from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import CYCLE, ApiOrg
from tests.test_web import ORIGIN, sign_in


def post(client: TestClient, url: str, data: dict[str, str | list[str]]) -> str:
    """Post a form as the browser does; the place it sends the browser to."""
    answer = client.post(url, data=data, headers=ORIGIN, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def test_a_manager_drafts_a_missing_promotion_packet_from_the_team_table(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    sign_in(client, api_org, "bo")
    cy = api_org.ids["cy"]
    team = client.get("/team").text
    assert f'action="/team/{cy}/drafts"' in team and "Draft<span" in team
    job_page = post(client, f"/team/{cy}/drafts", {"kind": "promotion_packet", "period": CYCLE})
    assert job_page.startswith("/jobs/")
    Worker(engine, settings).run_once()
    assert "Open the draft" in client.get(job_page).text or "/drafts/" in client.get(job_page).text
    with engine.connect() as conn:
        kinds = conn.execute(select(Draft.kind).where(Draft.subject_id == cy)).scalars().all()
    assert "promotion_packet" in kinds


def test_nobody_drafts_for_a_person_outside_their_team(client: TestClient, api_org: ApiOrg) -> None:
    sign_in(client, api_org, "bo")
    fay = api_org.ids["fay"]
    answer = client.post(
        f"/team/{fay}/drafts",
        data={"kind": "manager_feedback", "period": CYCLE},
        headers=ORIGIN,
        follow_redirects=True,
    )
    assert "Fay" not in answer.text
    assert answer.status_code == 404 or "not found" in answer.text
    sign_in(client, api_org, "hal")  # HR reads every draft but writes none
    refused = client.post(
        f"/team/{api_org.ids['cy']}/drafts",
        data={"kind": "manager_feedback", "period": CYCLE},
        headers=ORIGIN,
        follow_redirects=True,
    )
    assert "may not request" in refused.text


def test_writing_a_draft_again_leaves_out_the_ticked_evidence(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    draft = api_org.drafts["cy_feedback"]
    sign_in(client, api_org, "bo")
    page = client.get(f"/drafts/{draft}").text
    assert f'action="/drafts/{draft}/regenerate"' in page and 'form="regen-form"' in page
    with engine.connect() as conn:
        left_out = min(int(e["record_id"]) for e in draft_evidence(conn, draft))
    job_page = post(
        client,
        f"/drafts/{draft}/regenerate",
        {"exclude": [str(left_out)], "tone": "shorter", "evidence_period": ""},
    )
    Worker(engine, settings).run_once()
    assert "shorter tone" in client.get(job_page).text  # the offline drafter says so
    with engine.connect() as conn:
        records = {int(e["record_id"]) for e in draft_evidence(conn, draft)}
        version = conn.execute(select(Draft.current_version).where(Draft.id == draft)).scalar()
    assert version == 2 and records and left_out not in records


def test_a_bad_evidence_period_is_told_on_the_draft_page_and_nothing_is_queued(
    client: TestClient, api_org: ApiOrg
) -> None:
    draft = api_org.drafts["cy_feedback"]
    sign_in(client, api_org, "bo")
    answer = client.post(
        f"/drafts/{draft}/regenerate",
        data={"evidence_period": "<b>soon</b>"},
        headers=ORIGIN,
        follow_redirects=True,
    )
    assert "<b>soon</b>" not in answer.text
    assert "evidence_period" in answer.text or "period" in answer.text


def test_readers_get_no_form_to_write_a_draft_again(client: TestClient, api_org: ApiOrg) -> None:
    sign_in(client, api_org, "hal")
    page = client.get(f"/drafts/{api_org.drafts['cy_feedback']}").text
    assert "/regenerate" not in page and 'form="regen-form"' not in page
    refused = client.post(
        f"/drafts/{api_org.drafts['cy_feedback']}/regenerate",
        data={},
        headers=ORIGIN,
        follow_redirects=True,
    )
    assert "not change it" in refused.text
    sign_in(client, api_org, "eve")
    hidden = client.post(
        f"/drafts/{api_org.drafts['cy_feedback']}/regenerate", data={}, headers=ORIGIN
    )
    assert hidden.status_code == 404


def test_a_panel_drafts_its_whole_cohorts_summaries_in_one_job(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    sign_in(client, api_org, "pat")
    panel = f"/panels/{api_org.panel_id}"
    assert "Draft the missing summaries" in client.get(panel).text
    job_page = post(client, f"{panel}/summaries", {})
    Worker(engine, settings).run_once()
    done = client.get(job_page).text
    assert "The calibration summaries are ready" in done and "2 drafted" in done
    with engine.connect() as conn:
        summarised = set(
            conn.execute(
                select(Draft.subject_id).where(Draft.kind == "calibration_summary")
            ).scalars()
        )
    assert summarised == {api_org.ids["cy"], api_org.ids["fay"]}  # the L3 engineering cohort
    assert "Draft the missing summaries" not in client.get(panel).text
    sign_in(client, api_org, "bo")  # not a member: the panel does not exist for him
    assert client.post(f"{panel}/summaries", headers=ORIGIN).status_code == 404
