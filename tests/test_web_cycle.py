"""An employee's cycle pages over HTTP (issue 16): my tasks, peer nominations (the
employee's page and the manager's), the feedback answer form and the feedback received.

Each page answers the right person only, with the API's statuses for everyone else (a
request is its peer's alone: 404; a report's list is their managers': 403 for HR, 404 for
anyone else); a refused form is shown again with the reason by its field and everything
typed kept; hostile names and answers are shown as text.
"""

import re
from collections.abc import Iterator, Mapping

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from service.app import create_app
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import Person
from service.settings import Settings
from service.web.pages.cycle import router
from tests.cycle_org import PERIOD, CycleOrg, build_cycle_org, setup_body
from tests.test_web_escaping import injected

ORIGIN = {"Origin": "http://testserver"}
CYCLE = PERIOD.name
OWN_LIST = f"/cycles/{CYCLE}/nominations"
ANSWERS = ["Clear reviews.", "Share plans earlier.", "Keep pairing."]
HOSTILE = '<img src=x onerror="window.__pwned=1">{{7*191}}'


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    org = build_cycle_org(engine)
    reviews = [*setup_body()["reviews"], "upward_feedback"]
    with engine.begin() as conn:
        create_cycle(
            conn, PERIOD, CycleSetupIn.model_validate(setup_body(reviews=reviews)), actor="t"
        )
        start_cycle(conn, CYCLE, actor="t")
    return org


@pytest.fixture
def web(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def sign_in(web: TestClient, org: CycleOrg, who: str) -> None:
    web.cookies.clear()
    response = web.post(
        "/sign-in", data={"token": org.tokens[who]}, headers=ORIGIN, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def post(web: TestClient, url: str, data: Mapping[str, object]) -> tuple[int, str]:
    """Post a form as the browser does; a redirect is followed to the page it shows."""
    response = web.post(url, data=data, headers=ORIGIN, follow_redirects=False)
    if response.status_code == 303:
        shown = web.get(response.headers["location"])
        return 303, shown.text
    return response.status_code, response.text


def team_list(org: CycleOrg, who: str) -> str:
    return f"/team/{org.ids[who]}/cycles/{CYCLE}/nominations"


def checked_ids(page: str) -> set[str]:
    """The ids of the ticked peer boxes on a nominations page."""
    return set(re.findall(r'name="peers" value="(\d+)" checked', page))


def approved_for_bea(web: TestClient, org: CycleOrg) -> None:
    """Bea nominates Al, Ned and Cal; Mia approves: each of them is asked."""
    sign_in(web, org, "bea")
    peers = [org.ids[k] for k in ("al", "ned", "cal")]
    assert post(web, OWN_LIST, {"peers": peers})[0] == 303
    sign_in(web, org, "mia")
    status, page = post(web, f"{team_list(org, 'bea')}/approve", {})
    assert status == 303 and "Approved: 3 peers asked for feedback." in page, page


def request_of(web: TestClient, org: CycleOrg, who: str, subject: str = "Bea Ross") -> str:
    """The answer form's path of `who`'s request about `subject`, from their list page."""
    sign_in(web, org, who)
    page = web.get("/feedback-requests").text
    found = re.search(
        rf'href="(/feedback-requests/\d+)">[^<]*<span[^>]*>[^<]*</span> {subject}', page
    )
    assert found is not None, page
    return found.group(1)


# ---------------------------------------------------------------- my tasks


def test_my_tasks_lists_the_callers_tasks_soonest_first_overdue_in_words_each_linked(
    web: TestClient, org: CycleOrg
) -> None:
    sign_in(web, org, "al")  # a report of Mia's who manages Ned
    page = web.get("/tasks").text
    assert 'href="/tasks">My tasks</a>' in page  # in the navigation
    assert "Write your self-reflection" in page and f'href="/me?period={CYCLE}"' in page
    assert f'href="{OWN_LIST}"' in page
    assert f'href="{team_list(org, "ned")}"' in page  # approve Ned's peers
    assert f'href="/team/{org.ids["ned"]}/rating?period={CYCLE}"' in page
    assert f'href="/me/reviews/{CYCLE}"' in page
    assert "Approve the peers Ned Park nominated" in page
    # The cycle's dates are in July 2026 and the clock is past them: overdue, in words.
    assert page.count(">Overdue</strong>") == page.count('class="card task overdue"') > 0
    order = [page.index(t) for t in ("self-reflection", "Nominate peers", "manager feedback")]
    assert order == sorted(order), "soonest due first"
    assert "Bea Ross" not in page  # Mia approves Bea's list, not Al
    sign_in(web, org, "bea")  # her upward request is about Mia, whom she may not read
    upward = re.search(
        r'href="(/feedback-requests/\d+)">Give upward feedback to Mia Stone<',
        web.get("/tasks").text,
    )
    assert upward is not None and "Mia Stone" in web.get(upward.group(1)).text


def test_my_tasks_is_paged_like_the_api_and_refuses_bad_parameters_on_a_page(
    web: TestClient, org: CycleOrg
) -> None:
    sign_in(web, org, "mia")
    first = web.get("/tasks", params={"limit": 2}).text
    total = web.get("/api/v1/me/tasks?limit=2", headers=org.auth("mia")).json()["total"]
    assert f"Tasks 1 to 2 of {total}." in first
    assert 'href="/tasks?limit=2&amp;offset=2"' in first
    second = web.get("/tasks", params={"limit": 2, "offset": 2}).text
    assert f"Tasks 3 to 4 of {total}." in second and "offset=0" in second
    for bad in ({"limit": 0}, {"offset": -1}, {"cycle": "H1-2026"}, {"limit": 100_000}):
        refused = web.get("/tasks", params=bad)
        assert refused.status_code == 422 and "text/html" in refused.headers["content-type"], bad
    sign_in(web, org, "jo")  # not a participant: nothing to do
    assert "Nothing to do" in web.get("/tasks").text


def test_my_tasks_needs_a_sign_in(web: TestClient) -> None:
    response = web.get("/tasks", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=/tasks"


# ---------------------------------------------------------------- nominations


def test_an_employee_searches_ticks_and_saves_peers_with_refusals_by_the_field(
    web: TestClient, org: CycleOrg
) -> None:
    ids = {k: str(v) for k, v in org.ids.items()}
    sign_in(web, org, "bea")
    page = web.get(OWN_LIST).text
    for shown in ("Al Reyes", "Ned Park", "Cal Ibsen", "Hana Kim"):
        assert shown in page
    for hidden in ("Mia Stone", "Jo Tanaka"):  # her manager; not a participant
        assert f">{hidden}" not in page
    searched = web.get(OWN_LIST, params={"q": "NED", "peers": [ids["al"]], "searched": "true"})
    assert "Ned Park" in searched.text and "Cal Ibsen" not in searched.text
    assert checked_ids(searched.text) == {ids["al"]}, "the tick survives the search"

    refusals = {
        "mia": "the manager writes their own review",
        "bea": "you cannot nominate yourself",
        "jo": f"person {ids['jo']} is not a participant",
    }
    for who, reason in refusals.items():
        status, refused = post(web, OWN_LIST, {"peers": [ids["al"], ids[who]]})
        assert status == 422 and reason in refused, (who, refused)
        assert 'id="peers-error"' in refused and 'aria-invalid="true"' in refused
        assert checked_ids(refused) == {ids["al"], ids[who]}, "the choices are kept"
    too_many = post(web, OWN_LIST, {"peers": [org.ids[k] for k in ids] * 2})
    assert too_many[0] == 422 and "named twice" in too_many[1]

    status, saved = post(web, OWN_LIST, {"peers": [ids["al"], ids["ned"]]})
    assert status == 303 and "Saved 2 peers. Add 1 more" in saved
    status, saved = post(web, OWN_LIST, {"peers": [ids["al"], ids["ned"], ids["cal"]]})
    assert status == 303 and "Your manager approves the list next." in saved
    assert checked_ids(saved) == {ids["al"], ids["ned"], ids["cal"]}
    tasks = web.get("/tasks").text
    assert '<span class="status done">done</span>' in tasks  # nominate_peers is done


def test_hostile_names_and_searches_are_shown_as_text_and_wildcards_are_plain(
    web: TestClient, org: CycleOrg, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == org.ids["hana"]).values(name=HOSTILE))
    sign_in(web, org, "bea")
    listed = web.get(OWN_LIST).text
    searched = web.get(OWN_LIST, params={"q": HOSTILE[:12], "searched": "true"}).text
    for page in (listed, searched):
        assert "&lt;img src=x" in page and not injected(page)
    assert 'value="&lt;img src=x' in searched  # the search box keeps what was typed
    for wildcard in ("%", "l_R", "\\"):  # as wildcards, "l_R" would find Al Reyes
        found = web.get(OWN_LIST, params={"q": wildcard, "searched": "true"}).text
        assert "Nobody in this cycle matches" in found, wildcard
    status, refused = post(web, OWN_LIST, {"peers": [org.ids["hana"], org.ids["bea"]]})
    assert status == 422 and not injected(refused) and "&lt;img src=x" in refused
    for bad in ({"peers": "abc"}, {"q": "x" * 101}, {"peers": ["1"] * 65}):
        refused_page = web.get(OWN_LIST, params={**bad, "searched": "true"})
        assert refused_page.status_code == 422, bad
        assert "text/html" in refused_page.headers["content-type"]
    for form in ({"peers": "abc"}, {"peers": ["1"] * 65}):
        assert post(web, OWN_LIST, form)[0] == 422, form


def test_an_answer_form_past_its_bounds_is_a_clear_422(web: TestClient, org: CycleOrg) -> None:
    approved_for_bea(web, org)
    form = request_of(web, org, "al")
    cases = (
        {"action": "save", "answers": ["x"] * 51},
        {"action": "save", "answers": ["x"] * 4},  # three questions
        {"action": "save", "answers": ["x" * 10_001]},
        {"action": "publish", "answers": ["x"]},
        {"answers": ["x"]},
    )
    for case in cases:
        status, page = post(web, form, case)
        assert status == 422 and "Traceback" not in page, (case, status)
    status, page = post(web, f"{form}/decline", {"reason": "x" * 501})
    assert status == 422 and "at most 500 characters" in page


def test_a_form_post_from_another_site_is_refused(web: TestClient, org: CycleOrg) -> None:
    sign_in(web, org, "bea")
    response = web.post(
        OWN_LIST, data={"peers": [org.ids["al"]]}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


def test_a_reports_list_is_their_managers_to_edit_and_approve_as_the_api_rules(
    web: TestClient, org: CycleOrg
) -> None:
    bea = team_list(org, "bea")
    for who, status in (("mia", 200), ("hana", 403), ("al", 404), ("cal", 404), ("ned", 404)):
        sign_in(web, org, who)
        assert web.get(bea).status_code == status, who
        assert web.post(bea, data={"peers": []}, headers=ORIGIN).status_code == status or (
            status == 200
        ), who
        if status != 200:
            approve = web.post(f"{bea}/approve", headers=ORIGIN, follow_redirects=False)
            assert approve.status_code == status, who
    sign_in(web, org, "bea")
    own = web.get(bea, follow_redirects=False)
    assert own.status_code == 303 and own.headers["location"] == OWN_LIST
    assert web.get(f"/team/999999/cycles/{CYCLE}/nominations").status_code == 404
    assert web.get("/cycles/2031-H1/nominations").status_code == 404

    sign_in(web, org, "mia")
    status, refused = post(web, f"{bea}/approve", {})
    assert status == 422 and "name 3 to 8 peers (0 named)" in refused
    peers = [org.ids[k] for k in ("al", "ned", "cal", "hana")]
    status, saved = post(web, bea, {"peers": peers})
    assert status == 303 and "Saved 4 peers." in saved
    status, approved = post(web, f"{bea}/approve", {})
    assert status == 303 and "Approved: 4 peers asked for feedback." in approved
    assert "(added by the manager)" in approved and "Approve the list" not in approved
    sign_in(web, org, "bea")
    status, told = post(web, OWN_LIST, {"peers": peers[:3]})
    assert status == 303 and "are approved" in told, "a refusal after approval is told"


# ---------------------------------------------------------------- answering


def test_a_request_is_its_peers_alone_and_answers_are_kept_through_refusals(
    web: TestClient, org: CycleOrg
) -> None:
    approved_for_bea(web, org)
    form = request_of(web, org, "al")
    for stranger in ("bea", "mia", "hana", "cal", "jo"):
        sign_in(web, org, stranger)
        assert web.get(form).status_code == 404, stranger
        sent = web.post(form, data={"action": "save", "answers": ["x"]}, headers=ORIGIN)
        assert sent.status_code == 404, stranger
        assert web.post(f"{form}/decline", data={"reason": "x"}, headers=ORIGIN).status_code == 404
    assert web.get("/feedback-requests/999999999").status_code == 404

    sign_in(web, org, "al")
    page = web.get(form).text
    assert "What has this person done well" in page and 'for="answer-0"' in page
    assert '<script src="/static/autosave.js" defer></script>' in page
    status, saved = post(web, form, {"action": "save", "answers": ["Half", "", ""]})
    assert status == 303 and "Draft saved at" in saved and ">Half</textarea>" in saved
    autosaved = web.post(
        form,
        data={"action": "save", "answers": ["Half, then more", "", ""]},
        headers={**ORIGIN, "Accept": "application/json"},
    )
    assert autosaved.status_code == 200 and "saved_at" in autosaved.json()
    assert ">Half, then more</textarea>" in web.get(form).text
    bad = web.post(
        form,
        data={"action": "save", "answers": ["a\x07b"]},
        headers={**ORIGIN, "Accept": "application/json"},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "answers[0]"

    status, refused = post(web, form, {"action": "submit", "answers": [HOSTILE, "", "Kept"]})
    assert status == 422 and 'id="answer-1-error"' in refused
    assert "answer every question to submit" in refused
    assert ">Kept</textarea>" in refused and not injected(refused), "typed text kept, as text"
    status, done = post(web, form, {"action": "submit", "answers": [HOSTILE, "Plans.", "Kept"]})
    assert status == 303 and "Submitted: thank you." in done
    assert "<textarea" not in done and "This request is closed" in done and not injected(done)
    status, again = post(web, form, {"action": "submit", "answers": ANSWERS})
    assert status == 303 and "is submitted" in again


def test_a_peer_declines_with_a_reason_and_a_blank_one_is_refused_by_the_field(
    web: TestClient, org: CycleOrg
) -> None:
    approved_for_bea(web, org)
    form = request_of(web, org, "ned")
    status, refused = post(web, f"{form}/decline", {"reason": "   "})
    assert status == 422 and 'id="reason-error"' in refused and "say briefly why" in refused
    status, listed = post(web, f"{form}/decline", {"reason": HOSTILE})
    assert status == 303 and '<span class="status declined">declined</span>' in listed
    assert not injected(web.get(form).text)


def test_upward_feedback_uses_the_same_form(web: TestClient, org: CycleOrg) -> None:
    form = request_of(web, org, "bea", subject="Mia Stone")
    page = web.get(form).text
    assert "Upward feedback for Mia Stone" in page and "“a report”" in page
    assert "What does your manager do" in page


# ---------------------------------------------------------------- feedback received


def test_the_subject_sees_answers_from_three_on_without_authors(
    web: TestClient, org: CycleOrg, engine: Engine
) -> None:
    with engine.begin() as conn:  # a hostile name must show as text wherever it appears
        conn.execute(update(Person).where(Person.id == org.ids["cal"]).values(name=HOSTILE))
    approved_for_bea(web, org)
    forms = {who: request_of(web, org, who) for who in ("al", "ned", "cal")}
    sign_in(web, org, "bea")
    assert "Answers are shown once at least 3" in web.get("/me/feedback").text
    for count, (who, form) in enumerate(forms.items(), 1):
        sign_in(web, org, who)
        assert post(web, form, {"action": "submit", "answers": ANSWERS})[0] == 303
        sign_in(web, org, "bea")
        page = web.get("/me/feedback").text
        assert f"{count} of 3 answered" in page
        assert (page.count("From a peer") == 3) == (count == 3), count
        assert "Al Reyes" not in page and "Ned Park" not in page and not injected(page)
    sign_in(web, org, "al")
    own = web.get("/me/feedback").text
    assert "From a peer" not in own and "Bea Ross" not in own


# ---------------------------------------------------------------- every page, every role

ANONYMOUS = "anonymous"
ROLES = ("bea", "mia", "al", "ned", "cal", "hana", "jo", ANONYMOUS)
SIGN_IN = 303  # no session: the browser is sent to sign in


def page_matrix() -> dict[tuple[str, str], dict[str, int]]:
    """Each page route's status for each caller, once Bea's list is approved (Al, Ned and
    Cal asked). Own lists: Mia and Hana have no manager to approve one (404, as the API);
    Bea's list is approved (a change is told on her page: 303). A report's list: her
    managers' (Mia); 403 for HR and for Bea herself on the team route's forms, 404 for
    everyone else. A request: its peer's (Al) alone, 404 for everyone else."""
    everyone = dict.fromkeys(ROLES, 200) | {ANONYMOUS: SIGN_IN}
    strangers = {"al": 404, "ned": 404, "cal": 404, "jo": 404, ANONYMOUS: SIGN_IN}
    not_al = dict.fromkeys(ROLES, 404) | {ANONYMOUS: SIGN_IN}
    return {
        ("GET", "/tasks"): everyone,
        ("GET", "/cycles/{cycle}/nominations"): everyone | {"mia": 404, "hana": 404, "jo": 404},
        ("POST", "/cycles/{cycle}/nominations"): dict.fromkeys(ROLES, 303)
        | {"mia": 404, "hana": 404, "jo": 404},
        ("GET", "/team/{person_id}/cycles/{cycle}/nominations"): strangers
        | {"mia": 200, "bea": 303, "hana": 403},
        ("POST", "/team/{person_id}/cycles/{cycle}/nominations"): strangers
        | {"mia": 303, "bea": 403, "hana": 403},
        ("POST", "/team/{person_id}/cycles/{cycle}/nominations/approve"): strangers
        | {"mia": 303, "bea": 403, "hana": 403},
        ("GET", "/feedback-requests"): everyone,
        ("GET", "/feedback-requests/{request_id}"): not_al | {"al": 200},
        ("POST", "/feedback-requests/{request_id}"): not_al | {"al": 303},
        ("POST", "/feedback-requests/{request_id}/decline"): not_al | {"al": 422},
        ("GET", "/me/feedback"): everyone,
    }


def test_every_cycle_page_answers_every_role_as_the_api_rules(
    web: TestClient, org: CycleOrg
) -> None:
    approved_for_bea(web, org)
    request_id = int(request_of(web, org, "al").rsplit("/", 1)[1])
    matrix = page_matrix()
    declared = {
        (m, str(getattr(r, "path", ""))) for r in router.routes for m in getattr(r, "methods", ())
    }
    assert declared == set(matrix), "every page route of the cycle pages has a matrix row"
    forms: dict[
        str, dict[str, str | list[str]]
    ] = {  # the forms' bodies: none of them changes what a later row sees
        "/cycles/{cycle}/nominations": {"peers": []},
        "/team/{person_id}/cycles/{cycle}/nominations": {"peers": []},
        "/feedback-requests/{request_id}": {"action": "save", "answers": ["Draft"]},
        "/feedback-requests/{request_id}/decline": {"reason": " "},
    }
    problems = []
    for (method, route), statuses in matrix.items():
        url = route.format(cycle=CYCLE, person_id=org.ids["bea"], request_id=request_id)
        for who, expected in statuses.items():
            if who == ANONYMOUS:
                web.cookies.clear()
            else:
                sign_in(web, org, who)
            response = web.request(
                method, url, data=forms.get(route), headers=ORIGIN, follow_redirects=False
            )
            if response.status_code != expected:
                problems.append(f"{who} {method} {url}: {response.status_code}, not {expected}")
            if response.status_code >= 400:
                assert "text/html" in response.headers["content-type"], (who, method, url)
    assert not problems, "\n".join(problems)
    sign_in(web, org, "al")  # ids that do not exist are 404, like another's
    assert web.get("/feedback-requests/999999999").status_code == 404
    sign_in(web, org, "mia")
    assert web.get(f"/team/999999/cycles/{CYCLE}/nominations").status_code == 404
