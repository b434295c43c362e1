"""What a request costs the database (issue 15, "requests cheaper"): the caller in one
query, the hot reads (a cached evidence pack, a draft) in two, and the same answers as
the step-by-step code they replace."""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from domain.errors import FairdraftError
from evals.request_cpu import StatementCounter
from service.access.principal import load_principal
from service.api.routers.drafts import _draft_out
from service.drafting.queries import visible_draft
from service.http.errors import ApiError
from tests.api_org import CYCLE, ApiOrg


@contextmanager
def counted(engine: Engine) -> Iterator[StatementCounter]:
    with StatementCounter(engine).attached() as counter:
        yield counter


def test_the_caller_is_loaded_in_one_query_with_every_role(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    for who in ("ana", "bo", "cy", "hal", "pat"):
        with counted(engine) as counter:
            answer = client.get("/api/v1/me", headers=api_org.auth(who))
        assert answer.status_code == 200, answer.text
        assert counter.count == 1, who  # the token, person, role, panels, reports together
        with engine.connect() as conn:
            expected = load_principal(conn, api_org.ids[who], indirect=True)
        assert expected is not None
        me = answer.json()
        assert me["roles"] == expected.roles
        assert me["reports"] == len(expected.reports)
        assert me["panels"] == sorted(expected.panels)
    assert client.get("/api/v1/me", headers=api_org.auth("ana")).json()["reports"] == 7
    assert "hr_admin" in client.get("/api/v1/me", headers=api_org.auth("hal")).json()["roles"]
    pat = client.get("/api/v1/me", headers=api_org.auth("pat")).json()
    assert pat["panels"] == [api_org.panel_id]


def test_a_principal_reads_the_reporting_tree_direct_or_indirect(
    api_org: ApiOrg, engine: Engine
) -> None:
    with engine.connect() as conn:
        ana_all = load_principal(conn, api_org.ids["ana"], indirect=True)
        ana_direct = load_principal(conn, api_org.ids["ana"], indirect=False)
        cy = load_principal(conn, api_org.ids["cy"], indirect=True)
        nobody = load_principal(conn, 2_000_000_000, indirect=True)
    assert ana_all is not None and ana_direct is not None and cy is not None
    ids = api_org.ids
    assert ana_direct.reports == {ids[w] for w in ("bo", "eve", "hal", "pat")}
    assert ana_all.reports == {ids[w] for w in ("bo", "cy", "dee", "eve", "fay", "hal", "pat")}
    assert cy.reports == frozenset() and cy.panels == frozenset() and not cy.hr_admin
    assert nobody is None


def test_unknown_revoked_and_foreign_tokens_still_find_nobody(
    client: TestClient, api_org: ApiOrg
) -> None:
    for token in ("fd_not-a-token", "not-ours-at-all", api_org.tokens["cy"] + "x"):
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401


def test_the_hot_reads_run_two_queries_each(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    evidence = f"/api/v1/people/{api_org.ids['cy']}/evidence?kind=self_reflection&period={CYCLE}"
    draft = f"/api/v1/drafts/{api_org.drafts['cy_self']}"
    assert client.get(evidence, headers=api_org.auth("bo")).status_code == 200  # packs cached
    for path in (evidence, draft):
        with counted(engine) as counter:
            answer = client.get(path, headers=api_org.auth("bo"))
        assert answer.status_code == 200, answer.text
        # the caller, then the pack's data version or the draft with its version and evidence
        assert counter.count == 2, path


def test_a_draft_read_in_one_query_answers_as_the_step_by_step_read(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    """Every person against every draft: the same 200 body or the same refusal as
    visible_draft + load_version + draft_evidence."""
    for who in api_org.ids:
        with engine.connect() as conn:
            principal = load_principal(conn, api_org.ids[who], indirect=True)
            assert principal is not None
            for draft_id in api_org.drafts.values():
                answer = client.get(f"/api/v1/drafts/{draft_id}", headers=api_org.auth(who))
                try:
                    expected = _draft_out(conn, visible_draft(conn, principal, draft_id))
                except (FairdraftError, ApiError):
                    assert answer.status_code == 404, (who, draft_id)
                    continue
                assert answer.status_code == 200, (who, draft_id, answer.text)
                assert answer.json() == expected.model_dump(mode="json")
    missing = client.get("/api/v1/drafts/999999", headers=api_org.auth("hal"))
    assert missing.status_code == 404


def test_every_get_gives_its_connection_back_to_the_pool(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    """Authentication lends a GET's route its connection; refused, unrouted and
    database-free requests give it back too."""
    paths = (
        "/api/v1/me",  # reads nothing more
        f"/api/v1/people/{api_org.ids['fay']}/evidence?kind=self_reflection",  # 404, no query
        "/api/v1/no-such-route",
        f"/api/v1/drafts/{api_org.drafts['fay_self']}",  # 404 for Cy
        "/api/v1/drafts/0",  # 422
    )
    for _ in range(15):  # more than the pool holds
        for path in paths:
            assert client.get(path, headers=api_org.auth("cy")).status_code < 500
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
