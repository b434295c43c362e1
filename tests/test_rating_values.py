"""Ratings are whole numbers sent as JSON integers, and review cycles are made only by HR
(ratings import, panel set-up): a manager's or a panel's request never creates one."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from service.db.models import Rating, ReviewCycle
from service.ingest.errors import IngestRefused
from service.ingest.run import Ingestor, ingest_path
from tests.api_org import CYCLE, ApiOrg
from tests.test_web import ORIGIN, sign_in

NOT_INTEGERS: tuple[Any, ...] = ("5", "4", 4.0, 5.0, True, False, "four", 3.5, None, [4], {"v": 4})


def _cycles(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(ReviewCycle.name)).scalars())


def _ratings(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Rating)).scalar_one())


def _label(client: TestClient, api_org: ApiOrg) -> str:
    cohort = client.get(f"/api/v1/panels/{api_org.panel_id}", headers=api_org.auth("pat")).json()
    label: str = next(r["label"] for r in cohort["rows"] if r["proposed"] == 4)  # Cy
    return label


@pytest.mark.parametrize("value", NOT_INTEGERS)
def test_a_rating_that_is_not_a_json_integer_is_refused_naming_the_field(
    client: TestClient, api_org: ApiOrg, engine: Engine, value: Any
) -> None:
    before = _ratings(engine)
    proposed = client.put(
        f"/api/v1/cycles/{CYCLE}/ratings/{api_org.ids['dee']}",
        json={"rating": value},
        headers=api_org.auth("bo"),
    )
    assert proposed.status_code == 422, proposed.text
    assert [e["field"] for e in proposed.json()["errors"]] == ["rating"]

    base = f"/api/v1/panels/{api_org.panel_id}/people/{_label(client, api_org)}"
    pat = api_org.auth("pat")
    calibrated = client.put(f"{base}/calibrated-rating", json={"rating": value}, headers=pat)
    assert calibrated.status_code == 422, calibrated.text
    assert [e["field"] for e in calibrated.json()["errors"]] == ["rating"]
    placed = client.put(
        f"{base}/placement", json={"performance": value, "potential": 2}, headers=pat
    )
    assert placed.status_code == 422, placed.text
    assert [e["field"] for e in placed.json()["errors"]] == ["performance"]
    assert _ratings(engine) == before


def test_a_json_integer_rating_is_taken(client: TestClient, api_org: ApiOrg) -> None:
    proposed = client.put(
        f"/api/v1/cycles/{CYCLE}/ratings/{api_org.ids['dee']}",
        json={"rating": 5},
        headers=api_org.auth("bo"),
    )
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["rating"] == 5


def test_a_managers_rating_in_an_unknown_cycle_is_404_and_creates_no_cycle(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    cycles, ratings = _cycles(engine), _ratings(engine)
    dee, bo = api_org.ids["dee"], api_org.auth("bo")
    for cycle, status in (("2027-H1", 404), ("9999-H1", 422), ("0001-H1", 422), ("9999-12", 422)):
        answer = client.put(f"/api/v1/cycles/{cycle}/ratings/{dee}", json={"rating": 3}, headers=bo)
        assert answer.status_code == status, answer.text
        assert answer.json()["errors"][0]["field"] in {"cycle", "period"}
    unknown = client.put(f"/api/v1/cycles/2027-H1/ratings/{dee}", json={"rating": 3}, headers=bo)
    assert "no review cycle named '2027-H1'" in unknown.json()["errors"][0]["reason"]

    sign_in(client, api_org, "bo")
    page = client.post(
        f"/team/{dee}/rating",
        data={"rating": "3", "period": "2027-H2"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert page.status_code == 303  # back to the form, with the refusal as its message
    assert "no review cycle" in client.get(page.headers["location"]).text
    assert (_cycles(engine), _ratings(engine)) == (cycles, ratings)


def test_hr_makes_cycles_by_importing_ratings_or_setting_up_a_panel(
    client: TestClient, api_org: ApiOrg, engine: Engine, ingestor: Ingestor, tmp_path: Path
) -> None:
    assert _cycles(engine) == [CYCLE]
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("cycle,employee_id,rater_id,rating\n2026-H2,E003,E002,4\n")
    ingest_path(ingestor, ratings)
    made = client.post(
        "/api/v1/panels",
        json={
            "cycle": "2027-H1",
            "level": "L3",
            "job_family": "engineering",
            "members": [api_org.ids["pat"]],
        },
        headers=api_org.auth("hal"),
    )
    assert made.status_code == 201, made.text
    assert _cycles(engine) == [CYCLE, "2026-H2", "2027-H1"]


def test_a_ratings_file_with_a_cycle_that_is_not_a_period_is_refused_naming_line_and_field(
    api_org: ApiOrg, engine: Engine, ingestor: Ingestor, tmp_path: Path
) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("cycle,employee_id,rater_id,rating\n9999-H1,E003,E002,4\nsoon,E003,E002,4\n")
    with pytest.raises(IngestRefused) as refused:
        ingest_path(ingestor, ratings)
    assert [(e.line, e.field) for e in refused.value.errors] == [(2, "cycle"), (3, "cycle")]
    assert "2000 to 2100" in refused.value.errors[0].reason
    assert _cycles(engine) == [CYCLE]
