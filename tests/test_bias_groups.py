"""Group comparison for rare patterns (issue 14): the report flags a pattern carried by a
fifth of one group's drafts by its share, says so as "x% of ... vs y% of ..." with the
phrases, and every surface shows that sentence, the phrases as plain, escaped text."""

import io
import random
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Engine

from service.bias.display import print_report
from service.bias.language import profile_text
from service.bias.report import Profiled, compare_language, language_findings
from service.bias.report_model import LanguageFinding, StoredBiasReport, share_sentence
from service.bias.stats import REST, ShareTest
from tests.api_org import CYCLE, ApiOrg
from tests.bias_reports import stored_report
from tests.test_bias_report_model import MARKUP, store
from tests.test_web import sign_in
from tests.test_web_escaping import PAYLOADS, html, injected

ORDINARY = (
    "She shipped the billing migration two weeks early.",
    "He wrote the on-call guide that the whole team now uses.",
    "They reduced the p95 latency of the search API from 900 ms to 300 ms.",
    "She ran the quarterly planning review for the data platform.",
    "He mentored two new engineers through their first launches.",
    "They closed 40 support tickets in March.",
)
PLANTED = ("She can be abrasive in design reviews.", "At times she is too aggressive in meetings.")


Scopes = dict[str, list[Profiled]]
Groups = dict[str, dict[int, str]]


def _scoped(planted_share: float, per_group: int = 100) -> tuple[Scopes, Groups]:
    """`per_group` drafts about women and about men of the same ordinary sentences, and
    personality criticism planted in `planted_share` of the women's."""
    rng = random.Random(5)
    items: list[Profiled] = []
    members: dict[int, str] = {}
    for i in range(2 * per_group):
        sentences = rng.sample(ORDINARY, 4)
        group = "woman" if i < per_group else "man"
        if group == "woman" and i < planted_share * per_group:
            sentences.append(rng.choice(PLANTED))
        items.append((i, profile_text(" ".join(sentences))))
        members[i] = group
    return {"manager_feedback": items}, {"gender": members}


def test_a_fifth_of_one_groups_drafts_with_personality_criticism_is_a_finding() -> None:
    scopes, groups = _scoped(0.2)

    language = compare_language(scopes, groups)
    findings = language_findings(language, scopes, groups)

    [found] = [f for f in findings if f.measure == "personality_criticism_rate"]
    assert found.share is not None and found.share.flagged
    assert abs(found.effect_size) < 0.33  # Cliff's delta alone would not have flagged it
    assert set(found.phrases) <= {"abrasive", "too aggressive"} and found.phrases
    sentence = share_sentence(found)
    assert sentence is not None
    assert sentence.startswith(
        "20% of the drafts about woman vs 0% of the drafts about man contain personality "
        "criticism (manager_feedback; 20 of 100 vs 0 of 100"
    )


def test_nothing_planted_flags_nothing() -> None:
    scopes, groups = _scoped(0.0)
    language = compare_language(scopes, groups)
    assert not language_findings(language, scopes, groups)
    assert any(c.share is not None for c in language)  # the share tests ran


def _share(**changes: float | int | None) -> ShareTest:
    base = ShareTest(
        focal_n=50,
        focal_with=1,
        reference_n=150,
        reference_with=30,
        focal_share=0.02,
        reference_share=0.2,
        difference=-0.18,
        risk_ratio=0.1,
        ci_low=0.02,
        ci_high=0.5,
        p_value=1e-4,
        p_adjusted=2e-4,
        focal_rate=0.01,
        reference_rate=0.1,
        rate_ratio=0.1,
        rate_ci_low=0.05,
        rate_ci_high=0.2,
        rate_p_value=1e-5,
        rate_p_adjusted=2e-5,
        flagged=True,
    )
    return base.model_copy(update=changes)


def _finding(text: str, share: ShareTest | None) -> LanguageFinding:
    return LanguageFinding(
        attribute=text,
        scope=text,
        measure="personality_criticism_rate",
        focal=text,
        reference=REST,
        effect_size=-0.18,
        p_adjusted=0.3,
        share=share,
        phrases=(text, "abrasive"),
    )


def test_the_sentence_names_the_side_with_the_larger_share_first() -> None:
    sentence = share_sentence(_finding("x", _share()))

    assert sentence is not None
    assert sentence.startswith(
        "20% of the drafts about the other groups vs 2% of the drafts about x contain "
        "personality criticism (x; 30 of 150 vs 1 of 50, risk ratio 10.00 [95% CI 2.00 to "
        "50.00]"
    )
    assert sentence.endswith(", e.g. \u201cx\u201d, \u201cabrasive\u201d")
    assert share_sentence(_finding("x", _share(flagged=False))) is None
    assert share_sentence(_finding("x", None)) is None


def _with_share_finding(text: str, person: int, manager: int) -> StoredBiasReport:
    report = stored_report(text, cycle=CYCLE, person=person, manager=manager)
    findings = (_finding(text, _share()), *report.report.findings)
    return report.model_copy(
        update={"report": report.report.model_copy(update={"findings": findings})}
    )


@pytest.mark.parametrize("name", MARKUP)
def test_the_cli_prints_the_share_sentence_and_phrases_as_plain_text(name: str) -> None:
    console = Console(record=True, width=1000, file=io.StringIO())
    print_report(console, _with_share_finding(name, 3, 2))
    text = console.export_text()

    assert f"2% of the drafts about {name} contain personality criticism" in text
    assert f"\u201c{name}\u201d" in text


@pytest.fixture
def hal(client: TestClient, api_org: ApiOrg) -> Iterator[TestClient]:
    sign_in(client, api_org, "hal")
    yield client


def test_the_hr_page_shows_the_share_sentence_with_hostile_phrases_escaped(
    hal: TestClient, engine: Engine, api_org: ApiOrg
) -> None:
    cy, bo = api_org.ids["cy"], api_org.ids["bo"]
    for version, name in enumerate((*MARKUP, *PAYLOADS), start=1):
        report = _with_share_finding(name, cy, bo)
        with engine.begin() as conn:
            store(conn, report.model_copy(update={"version": version}))

        page = hal.get("/hr", params={"cycle": CYCLE})

        assert page.status_code == 200, page.text
        assert not injected(page.text), (name, injected(page.text))
        assert "of the drafts about the other groups vs 2% of the drafts about" in page.text
        assert html(f"\u201c{name}\u201d") in page.text


def test_the_api_returns_the_share_and_phrases(
    client: TestClient, engine: Engine, api_org: ApiOrg
) -> None:
    report = _with_share_finding("gender", api_org.ids["cy"], 2)
    with engine.begin() as conn:
        store(conn, report)

    response = client.get(f"/api/v1/cycles/{CYCLE}/bias-report", headers=api_org.auth("hal"))

    assert response.status_code == 200, response.text
    [first, *_] = response.json()["report"]["findings"]
    assert first["phrases"] == ["gender", "abrasive"]
    assert first["share"]["focal_share"] == 0.02 and first["share"]["flagged"] is True
