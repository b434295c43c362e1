"""A writer asks for a draft again: without chosen evidence, over another evidence period, in
a shorter or more direct tone (domain/draft_options.py, service/drafting/asks.py), and a set-up
cycle's questions become the sections a model is asked to answer."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.draft_options import MAX_EXCLUDED, DraftOptions, Tone
from domain.periods import parse_period
from service.cycles.setup import CycleSetupIn, default_questions
from service.cycles.setup_store import create_cycle
from service.db.models import Person
from service.drafting.run import Drafting, offline_drafter, prepare
from service.drafting.store import draft_evidence, load_version
from service.ingest.run import Ingestor
from service.jobs.queue import job_status
from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import CYCLE_PERIOD, ApiOrg
from tests.cycle_org import setup_body

API = "/api/v1"


def regenerate(client: TestClient, org: ApiOrg, who: str, draft: int, **body: Any) -> Any:
    return client.post(f"{API}/drafts/{draft}/regenerate", json=body, headers=org.auth(who))


def run_job(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any]:
    Worker(engine, settings).run_once()
    with engine.connect() as conn:
        view = job_status(conn, job_id)
    assert view is not None and view.status == "done", view
    assert view.result is not None
    return view.result


def records_of(engine: Engine, draft_id: int) -> set[int]:
    with engine.connect() as conn:
        return {int(item["record_id"]) for item in draft_evidence(conn, draft_id)}


def test_a_regenerated_draft_leaves_out_the_excluded_record_and_is_the_next_version(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    draft = api_org.drafts["cy_feedback"]
    before = records_of(engine, draft)
    left_out = min(before)
    answer = regenerate(client, api_org, "bo", draft, exclude_records=[left_out])
    assert answer.status_code == 202, answer.text
    result = run_job(engine, settings, answer.json()["id"])
    assert result["draft_id"] == draft and result["version"] == 2
    after = records_of(engine, draft)
    assert left_out not in after and after, (before, after)
    with engine.connect() as conn:
        provenance = load_version(conn, draft).provenance
    assert provenance is not None and provenance["options"] == {"exclude_records": [left_out]}


def test_another_evidence_period_draws_only_on_that_period(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    draft = api_org.drafts["cy_self"]
    answer = regenerate(client, api_org, "cy", draft, evidence_period="2026-Q1")
    assert answer.status_code == 202, answer.text
    run_job(engine, settings, answer.json()["id"])
    q1 = parse_period("2026-Q1")
    with engine.connect() as conn:
        dates = [item["occurred_at"][:10] for item in draft_evidence(conn, draft)]
    assert dates and all(q1.start.isoformat() <= d <= q1.end.isoformat() for d in dates), dates


def test_the_offline_drafter_says_it_cannot_change_the_tone(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    answer = regenerate(client, api_org, "bo", api_org.drafts["cy_feedback"], tone="shorter")
    assert answer.status_code == 202, answer.text
    note = run_job(engine, settings, answer.json()["id"])["note"]
    assert "offline drafter" in note and "shorter tone" in note


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tone": "sarcastic"}, "tone"),
        ({"evidence_period": "last year"}, "evidence_period"),
        ({"exclude_records": list(range(1, MAX_EXCLUDED + 2))}, "exclude_records"),
        ({"exclude_records": ["<b>1</b>"]}, "exclude_records"),
    ],
)
def test_bad_options_are_refused_naming_the_field(
    client: TestClient, api_org: ApiOrg, body: dict[str, Any], field: str
) -> None:
    answer = regenerate(client, api_org, "bo", api_org.drafts["cy_feedback"], **body)
    assert answer.status_code == 422
    assert field in answer.text and "<b>" not in answer.text


def test_only_a_writer_of_the_draft_may_regenerate_it(client: TestClient, api_org: ApiOrg) -> None:
    feedback = api_org.drafts["cy_feedback"]
    assert regenerate(client, api_org, "cy", feedback).status_code == 404  # not yet hers to see
    assert regenerate(client, api_org, "hal", feedback).status_code == 403  # HR reads only
    assert regenerate(client, api_org, "eve", feedback).status_code == 404  # another team
    assert regenerate(client, api_org, "cy", api_org.drafts["cy_self"]).status_code == 202


def test_a_draft_request_takes_the_same_options(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    answer = client.post(
        f"{API}/people/{api_org.ids['cy']}/drafts",
        json={"kind": "promotion_packet", "period": "2026-H1", "tone": "more_direct"},
        headers=api_org.auth("bo"),
    )
    assert answer.status_code == 202, answer.text
    assert "more direct tone" in run_job(engine, settings, answer.json()["id"])["note"]


def test_options_refuse_more_exclusions_than_anyone_asks_for() -> None:
    with pytest.raises(Exception, match="at most 200"):
        DraftOptions(exclude_records=frozenset(range(MAX_EXCLUDED + 1)))


def test_a_set_up_cycle_asks_the_model_its_questions_in_the_asked_tone(
    api_org: ApiOrg, engine: Engine, settings: Settings, ingestor: Ingestor
) -> None:
    questions = ["What did <they> ship that mattered?", "What should change next half?"]
    asked = {str(k): list(v) for k, v in default_questions().items()}
    body = setup_body(questions={**asked, "manager_feedback": questions})
    with engine.begin() as conn:
        create_cycle(conn, CYCLE_PERIOD, CycleSetupIn.model_validate(body), actor="t")
    with Session(engine) as session:
        cy = session.get_one(Person, api_org.ids["cy"])
    run = Drafting(engine, settings, ingestor.embedder(), offline_drafter(), "t")
    options = DraftOptions(tone=Tone.MORE_DIRECT)
    prepared = prepare(run, cy, "manager_feedback", CYCLE_PERIOD, options)
    assert prepared.prompt.sections == ("What did \u2039they> ship that mattered?", questions[1])
    assert "- What should change next half?" in prepared.prompt.user
    assert "Tone asked for by the writer: more direct" in prepared.prompt.user
    default = prepare(run, cy, "self_reflection", CYCLE_PERIOD)  # the cycle's default questions
    assert default.prompt.sections[0].startswith("What did you deliver this period")
