"""Peer feedback through the API (issue 16): the employee nominates, the manager edits and
approves, peers answer (draft, submit once) or decline, and the subject's view never holds
an author nor fewer than 3 answers; a request is its peer's alone."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.app import create_app
from service.settings import Settings
from tests.cycle_org import PERIOD, CycleOrg, start_cycle_org

API = "/api/v1"
NOMINATIONS = f"{API}/cycles/{PERIOD.name}/nominations"
ANSWERS = ["Clear reviews.", "Share plans earlier.", "Keep pairing."]


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    return start_cycle_org(engine)


@pytest.fixture
def api(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _peers(org: CycleOrg, *keys: str) -> list[int]:
    return [org.ids[k] for k in keys]


def _requests(api: TestClient, org: CycleOrg) -> dict[str, int]:
    """Bea nominates Al, Ned and Cal; Mia adds Hana and approves: request id by peer."""
    body = {"peers": _peers(org, "al", "ned", "cal")}
    assert api.post(NOMINATIONS, json=body, headers=org.auth("bea")).status_code == 200
    edit = {"subject_id": org.ids["bea"], "peers": _peers(org, "al", "ned", "cal", "hana")}
    edited = api.post(NOMINATIONS, json=edit, headers=org.auth("mia"))
    assert edited.status_code == 200, edited.text
    approve = {"subject_id": org.ids["bea"]}
    approved = api.post(f"{NOMINATIONS}/approve", json=approve, headers=org.auth("mia"))
    assert approved.status_code == 200 and approved.json()["requests"] == 4, approved.text
    found = {}
    for who in ("al", "ned", "cal", "hana"):
        mine = api.get(f"{API}/me/feedback-requests", headers=org.auth(who)).json()
        assert [r["subject_name"] for r in mine] == ["Bea Ross"]
        found[who] = mine[0]["id"]
    return found


def test_nominations_are_the_subjects_and_their_managers_only(
    api: TestClient, org: CycleOrg
) -> None:
    bea = org.ids["bea"]
    own = api.get(NOMINATIONS, headers=org.auth("bea"))
    assert own.status_code == 200 and own.json()["peers"] == []
    assert (
        api.get(NOMINATIONS, params={"subject_id": bea}, headers=org.auth("mia")).status_code == 200
    )
    for stranger in ("al", "cal", "ned"):
        seen = api.get(NOMINATIONS, params={"subject_id": bea}, headers=org.auth(stranger))
        assert seen.status_code == 404, stranger
    hr = api.get(NOMINATIONS, params={"subject_id": bea}, headers=org.auth("hana"))
    assert hr.status_code == 403
    wrong = api.post(
        NOMINATIONS, json={"peers": _peers(org, "mia", "al", "cal")}, headers=org.auth("bea")
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "peers"
    self_approve = api.post(
        f"{NOMINATIONS}/approve", json={"subject_id": bea}, headers=org.auth("bea")
    )
    assert self_approve.status_code == 403
    unknown = api.post(
        f"{API}/cycles/2031-H1/nominations", json={"peers": []}, headers=org.auth("bea")
    )
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "cycle"


def test_a_request_is_its_peers_alone_and_answers_show_from_three_without_authors(
    api: TestClient, org: CycleOrg
) -> None:
    requests = _requests(api, org)
    al_request = f"{API}/feedback-requests/{requests['al']}"
    for stranger in ("bea", "mia", "hana", "cal", "jo"):
        assert api.get(al_request, headers=org.auth(stranger)).status_code == 404
        put = api.put(al_request, json={"answers": ["x"]}, headers=org.auth(stranger))
        assert put.status_code == 404
        assert (
            api.post(
                f"{al_request}/decline", json={"reason": "x"}, headers=org.auth(stranger)
            ).status_code
            == 404
        )
    draft = api.put(al_request, json={"answers": ["Half"]}, headers=org.auth("al"))
    assert draft.status_code == 200 and draft.json()["answers"] == ["Half"]
    declined = api.post(
        f"{API}/feedback-requests/{requests['hana']}/decline",
        json={"reason": "We rarely work together"},
        headers=org.auth("hana"),
    )
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    feedback = f"{API}/people/{org.ids['bea']}/peer-feedback"
    query = {"cycle": PERIOD.name}
    for count, who in enumerate(("al", "ned", "cal"), 1):
        sent = api.post(
            f"{API}/feedback-requests/{requests[who]}",
            json={"answers": ANSWERS},
            headers=org.auth(who),
        )
        assert sent.status_code == 200, sent.text
        seen = api.get(feedback, params=query, headers=org.auth("bea")).json()
        assert seen["answered"] == count
        assert len(seen["answers"]) == (3 if count >= 3 else 0)
    again = api.post(al_request, json={"answers": ANSWERS}, headers=org.auth("al"))
    assert again.status_code == 409
    views: dict[str, Any] = {
        who: api.get(feedback, params=query, headers=org.auth(who))
        for who in ("bea", "mia", "hana", "al", "cal")
    }
    assert views["al"].status_code == views["cal"].status_code == 404
    for who in ("bea", "mia"):
        body = views[who].json()
        assert {(a["author"], a["author_id"]) for a in body["answers"]} == {("a peer", None)}
        for name in ("Al Reyes", "Ned Park", "Cal Ibsen", "Hana Kim", "rarely"):
            assert name not in views[who].text
    assert {a["author"] for a in views["hana"].json()["answers"]} == {
        "Al Reyes",
        "Ned Park",
        "Cal Ibsen",
    }


def test_hostile_answers_get_the_field_and_reason(api: TestClient, org: CycleOrg) -> None:
    request = f"{API}/feedback-requests/{_requests(api, org)['cal']}"
    cases: dict[str, Any] = {
        "answers[0]": {"answers": ["x" * 10_001]},
        "answers[1]": {"answers": ["ok", "esc\x1b[31m"]},
    }
    for field, body in cases.items():
        answer = api.put(request, json=body, headers=org.auth("cal"))
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == field
    markup = ["<img src=x onerror=alert(1)>", "{{ 7*7 }}", "&amp; </textarea>"]
    kept = api.put(request, json={"answers": markup}, headers=org.auth("cal"))
    assert kept.status_code == 200 and kept.json()["answers"] == markup
    long_reason = api.post(
        f"{request}/decline", json={"reason": "r" * 501}, headers=org.auth("cal")
    )
    assert long_reason.status_code == 422 and long_reason.json()["errors"][0]["field"] == "reason"
    headers = org.auth("cal") | {"Content-Type": "application/json"}
    for raw in (b'{"answers": ["\\ud800 lone"]}', b'{"answers": ["nul \\u0000"]}'):
        unstorable = api.put(request, content=raw, headers=headers)
        assert unstorable.status_code == 422, unstorable.text
        assert unstorable.json()["errors"][0]["field"] == "answers[0]"
    not_json = api.put(
        request, content=b"\xff\xfe", headers=org.auth("cal") | {"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
