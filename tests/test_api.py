"""The API over real HTTP semantics (TestClient) on real Postgres: the flows people use."""

import time

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.app import create_app
from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import ApiOrg


def test_me_names_the_person_and_roles_of_the_token(client: TestClient, api_org: ApiOrg) -> None:
    bo = client.get("/api/v1/me", headers=api_org.auth("bo")).json()
    assert bo["email"] == "bo.chen@example.com"
    assert bo["roles"] == ["employee", "manager"]
    pat = client.get("/api/v1/me", headers=api_org.auth("pat")).json()
    assert "calibration_panel" in pat["roles"]


def test_a_missing_or_unknown_token_gets_401_in_the_one_error_shape(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer fd_nope"}):
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["errors"][0]["field"] == "Authorization"
        assert body["request_id"] == response.headers["X-Request-ID"]


def test_a_requested_draft_is_written_by_a_worker_and_the_job_reports_it(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    response = client.post(
        f"/api/v1/people/{api_org.ids['dee']}/drafts",
        json={"kind": "self_reflection", "period": "2026-H1"},
        headers=api_org.auth("dee"),
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    Worker(engine, settings).run_once()
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=api_org.auth("dee")).json()
    assert done["status"] == "done", done
    draft = client.get(f"/api/v1/drafts/{done['result']['draft_id']}", headers=api_org.auth("dee"))
    assert draft.status_code == 200
    assert all(
        s["evidence"] for sec in draft.json()["version"]["sections"] for s in sec["sentences"]
    )
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=api_org.auth("cy")).status_code == 404


def test_two_managers_editing_one_draft_one_gets_409_and_both_texts_are_kept(
    client: TestClient, api_org: ApiOrg
) -> None:
    draft = api_org.drafts["cy_feedback"]
    current = client.get(f"/api/v1/drafts/{draft}", headers=api_org.auth("bo")).json()
    base = current["current_version"]
    text = current["version"]["text"]
    first = client.post(
        f"/api/v1/drafts/{draft}/versions",
        json={"based_on": base, "text": text + "\n- Bo's addition. [E1]"},
        headers=api_org.auth("bo"),
    )
    assert first.status_code == 201, first.text
    second = client.post(
        f"/api/v1/drafts/{draft}/versions",
        json={"based_on": base, "text": text + "\n- Ana's addition. [E1]"},
        headers=api_org.auth("ana"),
    )
    assert second.status_code == 409
    refused = second.json()
    assert refused["errors"][0]["field"] == "based_on"
    assert "Bo's addition" in refused["current"]["text"]
    history = client.get(f"/api/v1/drafts/{draft}/versions", headers=api_org.auth("bo")).json()
    origins = {v["version"]: (v["origin"], v["author"]) for v in history}
    assert origins[refused["kept_version"]] == ("stale_edit", "ana.lima@example.com")
    kept = client.get(
        f"/api/v1/drafts/{draft}/versions/{refused['kept_version']}", headers=api_org.auth("bo")
    ).json()
    assert "Ana's addition" in kept["version"]["text"]
    assert kept["current_version"] == refused["current"]["version"]


def test_a_panel_member_sees_the_cohort_pseudonymised_and_places_and_calibrates(
    client: TestClient, api_org: ApiOrg
) -> None:
    panel = client.get(f"/api/v1/panels/{api_org.panel_id}", headers=api_org.auth("pat"))
    assert panel.status_code == 200, panel.text
    cohort = panel.json()
    assert cohort["pseudonymised"]
    labels = [row["label"] for row in cohort["rows"]]
    assert len(labels) == 2 and all(label.startswith("P-") for label in labels)
    assert "Cy Diaz" not in panel.text and "Fay" not in panel.text
    cy = next(row for row in cohort["rows"] if row["proposed"] == 4)
    placed = client.put(
        f"/api/v1/panels/{api_org.panel_id}/people/{cy['label']}/placement",
        json={"performance": 3, "potential": 2},
        headers=api_org.auth("pat"),
    )
    assert placed.status_code == 200, placed.text
    calibrated = client.put(
        f"/api/v1/panels/{api_org.panel_id}/people/{cy['label']}/calibrated-rating",
        json={"rating": 3},
        headers=api_org.auth("pat"),
    )
    assert calibrated.status_code == 200, calibrated.text
    assert calibrated.json() == {
        "label": cy["label"],
        "proposed": 4,
        "calibrated": 3,
        "final": False,
    }
    again = client.get(f"/api/v1/panels/{api_org.panel_id}", headers=api_org.auth("pat")).json()
    row = next(r for r in again["rows"] if r["label"] == cy["label"])
    assert row["placement"] == {"performance": 3, "potential": 2}
    refused = client.post(
        f"/api/v1/panels/{api_org.panel_id}/people/{cy['label']}/finalise",
        headers=api_org.auth("pat"),
    )
    assert refused.status_code == 409
    assert "bias report" in refused.json()["errors"][0]["reason"]


def test_a_queued_draft_survives_a_restart_and_the_next_service_finishes_it(
    api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    with TestClient(create_app(settings, engine=engine, worker=False)) as first:
        job = first.post(
            f"/api/v1/people/{api_org.ids['cy']}/drafts",
            json={"kind": "promotion_packet", "period": "2026-H1"},
            headers=api_org.auth("bo"),
        ).json()
    quick = settings.model_copy(update={"job_poll_s": 0.05})
    with TestClient(create_app(quick, engine=engine, worker=True)) as second:
        deadline = time.monotonic() + 30
        status = "queued"
        while status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.1)
            status = second.get(f"/api/v1/jobs/{job['id']}", headers=api_org.auth("bo")).json()[
                "status"
            ]
    assert status == "done"
