"""The sentence editor: a draft edited sentence by sentence with its citation chips kept,
added or removed (service/web/draft_editor.py and its page route)."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from domain.errors import Invalid
from service.drafting.store import load_version
from service.drafting.structure import DraftBody, DraftSection, DraftSentence
from service.web.draft_editor import body_from_form, editor_sections
from tests.api_org import ApiOrg
from tests.test_web import ORIGIN, sign_in

PACK = {"E1", "E2", "E3"}
BODY = DraftBody(
    sections=[
        DraftSection(
            heading="Strengths",
            sentences=[
                DraftSentence(text="Shipped the ledger.", evidence=["E1"]),
                DraftSentence(text="Mentored two people.", evidence=["E2", "E3"]),
            ],
        )
    ]
)


def form_of(body: DraftBody) -> dict[str, list[str]]:
    """What the browser sends for the page's form as it is shown, nothing changed."""
    form: dict[str, list[str]] = {"based_on": ["1"]}
    for section in editor_sections(body):
        form[f"h-{section.index}"] = [section.heading]
        for row in section.rows:
            form[f"t-{row.key}"] = [row.text]
            form[f"c-{row.key}"] = list(row.cited)
            form[f"a-{row.key}"] = [""]
    return form


def test_an_unchanged_form_reads_back_as_the_same_draft() -> None:
    assert body_from_form(form_of(BODY), PACK) == BODY


def test_chips_unticked_are_removed_and_a_chosen_one_is_added() -> None:
    form = form_of(BODY)
    form["c-0-1"] = ["E3"]  # E2 unticked
    form["a-0-0"] = ["E2"]
    form["t-0-new"], form["a-0-new"] = ["Led the   incident review."], ["E3"]
    edited = body_from_form(form, PACK).sections[0].sentences
    assert [(s.text, s.evidence) for s in edited] == [
        ("Shipped the ledger.", ["E1", "E2"]),
        ("Mentored two people.", ["E3"]),
        ("Led the incident review.", ["E3"]),
    ]


def test_an_emptied_sentence_is_dropped_and_an_emptied_heading_refused() -> None:
    form = form_of(BODY)
    form["t-0-0"] = ["  "]
    assert [s.text for s in body_from_form(form, PACK).sentences()] == ["Mentored two people."]
    form["h-0"] = [""]
    with pytest.raises(Invalid) as refused:
        body_from_form(form, PACK)
    assert refused.value.field == "h-0"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("a-0-1", "E99", "c-0-1"),  # not in the pack
        ("c-0-0", "<script>", "c-0-0"),
        ("t-0-0", "x" * 2001, "t-0-0"),
        ("h-25", "Too many", "h-25"),
        ("t-0-99", "beyond", "t-0-99"),
    ],
)
def test_a_forged_or_oversized_field_is_refused_by_name(name: str, value: str, field: str) -> None:
    form = form_of(BODY)
    form[name] = [value]
    with pytest.raises(Invalid) as refused:
        body_from_form(form, PACK)
    assert refused.value.field == field


def test_the_page_saves_an_edit_with_its_chips_as_the_next_version(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    draft = api_org.drafts["cy_self"]
    with engine.connect() as conn:
        current = load_version(conn, draft)
    sign_in(client, api_org, "cy")
    page = client.get(f"/drafts/{draft}").text
    assert f'action="/drafts/{draft}/sentences"' in page and 'name="a-0-new"' in page
    assert "rest on evidence" in page
    form = form_of(current.body)
    form["based_on"] = [str(current.version)]
    first = current.body.sections[0].sentences[0]
    form["c-0-0"] = []  # every chip of the first sentence removed
    form["t-0-0"] = ["<b>Rewritten</b> by hand."]
    saved = client.post(
        f"/drafts/{draft}/sentences", data=form, headers=ORIGIN, follow_redirects=True
    )
    assert saved.status_code == 200 and "Saved as version" in saved.text
    assert "&lt;b&gt;Rewritten&lt;/b&gt; by hand." in saved.text  # shown as text
    assert "no evidence" in saved.text  # the uncited sentence is marked
    with engine.connect() as conn:
        after = load_version(conn, draft)
    assert after.version == current.version + 1
    assert after.body.sections[0].sentences[0].text == "<b>Rewritten</b> by hand."
    assert after.body.sections[0].sentences[0].evidence == [] != first.evidence


def test_only_a_writer_saves_sentences(client: TestClient, api_org: ApiOrg) -> None:
    draft = api_org.drafts["cy_self"]
    sign_in(client, api_org, "hal")
    refused = client.post(f"/drafts/{draft}/sentences", data={"based_on": "1"}, headers=ORIGIN)
    assert refused.status_code == 403
    sign_in(client, api_org, "eve")
    hidden = client.post(f"/drafts/{draft}/sentences", data={"based_on": "1"}, headers=ORIGIN)
    assert hidden.status_code == 404
