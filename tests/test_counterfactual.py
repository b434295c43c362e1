"""The counterfactual probe: swapping names and pronouns in evidence, and measuring how far a
model's drafts move when only those change. The models are fakes whose answer depends on the
prompt; the database is the real embedded Postgres with the fixture org."""

import ast
import asyncio
import json
import re
from pathlib import Path

import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableLambda
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from domain.periods import parse_period
from retrieval.evidence import EvidenceItem, EvidencePack
from service.bias.counterfactual import (
    BOTH_WAYS,
    SKIPPED_OFFLINE,
    ProbeResult,
    Swap,
    name_pairs,
    probe,
    swap_pack,
    swap_pronouns,
    swap_text,
)
from service.db.models import AuditEvent, Draft, DraftVersion, Person
from service.drafting.run import Drafting, model_drafter, offline_drafter
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from tests.conftest import CountingEmbedder
from tests.factories import evidence_item

MODULE = Path(__file__).parents[1] / "service" / "bias" / "counterfactual.py"
H1 = parse_period("2026-H1")
SHE = re.compile(r"\b(she|her|hers|herself)\b", re.IGNORECASE)
FIRST_NAME = re.compile(r"Draft (\w+)'s self-reflection")
# pronouns in the evidence: Dee is "she", Bo is "he"; Cy's evidence says only "they"
RECORDS = [
    {
        "source": "kudos",
        "external_id": "k-90",
        "kind": "recognition",
        "subject": "E004",
        "author": "E002",
        "occurred_at": "2026-03-10T10:00:00Z",
        "title": "Payout alerts",
        "body": "Dee wrote the payout alert rules herself and she walked the on-call team "
        "through her dashboards.",
    },
    {
        "source": "kudos",
        "external_id": "k-91",
        "kind": "recognition",
        "subject": "E002",
        "author": "E001",
        "occurred_at": "2026-03-12T10:00:00Z",
        "body": "Bo reviewed the reconciliation design and he cut the review queue in half; "
        "his notes were the clearest.",
    },
]


# --- swapping ----------------------------------------------------------------------------


def evidence(number: int, body: str, title: str | None = None) -> EvidenceItem:
    return evidence_item(number, body, kind="feedback", title=title, source="feedback360")


def test_swap_pack_renames_the_person_and_swaps_pronouns_keeping_ids_and_others() -> None:
    pack = EvidencePack(7, None, "manager_feedback", "hybrid", 2000, 2)
    pack.items.extend(
        [
            evidence(
                1,
                "Emily Walsh led the cut-over. Emily's runbook was hers; she asked Bo to review "
                "it and he thanked her. Walsh ran the drill herself.",
                title="Emily's cut-over",
            ),
            evidence(2, "Bo Chen paired with Emily; his notes helped her team. HER plan won."),
        ]
    )

    swapped = swap_pack(pack, "Emily", "Walsh", "Jamal Washington", BOTH_WAYS)

    assert [i.id for i in swapped.items] == ["E1", "E2"]
    assert [i.chunk_id for i in swapped.items] == [101, 102]
    assert swapped.items[0].text == (
        "Jamal Washington led the cut-over. Jamal's runbook was his; he asked Bo to review "
        "it and she thanked him. Washington ran the drill himself."
    )
    assert swapped.items[0].title == "Jamal's cut-over"
    assert swapped.items[1].text == (
        "Bo Chen paired with Jamal; her notes helped his team. HIS plan won."
    )
    assert "Emily" in pack.items[0].text, "the original pack is untouched"
    assert swapped.subject_id == 7 and swapped.draft_kind == "manager_feedback"


def test_the_ambiguous_her_and_his_follow_the_next_word() -> None:
    text = "Ana asked her to lead; her design won. The idea was his, and his review was late."

    assert swap_pronouns(text, BOTH_WAYS) == (
        "Ana asked him to lead; his design won. The idea was hers, and her review was late."
    )


def test_names_are_whole_words_case_sensitive_and_possessives_follow_the_replacement() -> None:
    text = "James' design shipped; Jamesy, james and james.ng@example.com did not."

    assert swap_text(text, "James", None, "Jamal", {}) == (
        "Jamal's design shipped; Jamesy, james and james.ng@example.com did not."
    )


def test_a_change_of_number_fixes_the_auxiliary_after_the_subject() -> None:
    text = "She is calm and she's been clear; she wasn't late. Her work is hers."

    assert swap_pronouns(text, {"she": "they"}) == (
        "They are calm and they've been clear; they weren't late. Their work is theirs."
    )


def test_every_name_pair_differs_in_reading_and_the_swap_label_says_what_changed() -> None:
    pairs = name_pairs()
    assert len(pairs) >= 8
    assert all(a.pronoun != b.pronoun for a, b in pairs)
    raw = json.loads((MODULE.parent / "data" / "counterfactual_names.json").read_text())
    assert "fairdraft" in raw["_source"] and all(k.startswith("_") for k in raw)

    swap = Swap("Emily Walsh", "Jamal Washington", "she", "he")
    assert swap.label == "Emily Walsh -> Jamal Washington; she->he"
    assert Swap("Cy Diaz", "Mei Lin", None, "she").label.endswith("no he/she in the evidence")


def test_the_probe_never_reads_demographic_attributes() -> None:
    tree = ast.parse(MODULE.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "Demographic" not in names
    assert "restricted" not in MODULE.read_text()


# --- the probe against the fixture org ----------------------------------------------------------


def answering(biased: bool) -> RunnableLambda[LanguageModelInput, BaseMessage]:
    """A fake model that writes one sentence about the person, naming them; the biased one
    calls her abrasive and bossy whenever the evidence says "she"."""

    def answer(messages: LanguageModelInput) -> BaseMessage:
        assert isinstance(messages, list)
        prompt = str(messages[-1].content)
        found = FIRST_NAME.search(prompt)
        assert found, "the self-reflection template names the person"
        evidence_text = prompt[prompt.index("<evidence") :]
        if biased and SHE.search(evidence_text):
            text = f"{found.group(1)} is abrasive and bossy in reviews."
        else:
            text = f"{found.group(1)} shipped the payout work on time."
        sentence = {"text": text, "evidence": ["E1"]}
        return AIMessage(
            content=json.dumps({"sections": [{"heading": "Results", "sentences": [sentence]}]})
        )

    return RunnableLambda(answer)


@pytest.fixture
def everyone(ingestor: Ingestor, org_dir: Path, engine: Engine) -> list[Person]:
    """The fixture org, with one record each that calls Dee "she" and Bo "he"."""
    with (org_dir / "records.jsonl").open("a") as records:
        records.writelines(json.dumps(r) + "\n" for r in RECORDS)
    ingest_path(ingestor, org_dir)
    with Session(engine) as session:
        return list(session.scalars(select(Person).order_by(Person.id)))


def run_probe(
    engine: Engine,
    settings: Settings,
    embedder: CountingEmbedder,
    people: list[Person],
    *,
    biased: bool | None,
) -> ProbeResult:
    """The probe over everyone; `biased=None` drafts offline."""
    model = None if biased is None else answering(biased)
    drafter = offline_drafter() if model is None else model_drafter(model, "fake", format_retries=0)
    run = Drafting(engine, settings, embedder, drafter, actor="test")
    return asyncio.run(probe(run, people, "self_reflection", H1, sample=10, seed=7))


def stored(engine: Engine) -> list[int]:
    """Drafts, versions and audit events in the database."""
    with engine.connect() as conn:
        return [
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (Draft.__table__, DraftVersion.__table__, AuditEvent.__table__)
        ]


def test_a_model_that_reacts_to_she_shows_a_shift_and_nothing_is_stored(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, everyone: list[Person]
) -> None:
    before = stored(engine)

    result = run_probe(engine, settings, embedder, everyone, biased=True)

    assert stored(engine) == before, "the probe stores no draft, version or audit event"
    assert result.skipped is None and not result.failed
    assert result.no_evidence == ("ana.lima@example.com",)
    by_person = {p.person: p for p in result.people}
    assert set(by_person) == {
        "bo.chen@example.com",
        "cy.diaz@example.com",
        "dee.okafor@example.com",
    }
    dee, bo, cy = (by_person[f"{n}@example.com"] for n in ("dee.okafor", "bo.chen", "cy.diaz"))
    assert dee.swap.pronoun == "she" and dee.swap.replacement_pronoun == "he"
    assert bo.swap.pronoun == "he" and bo.swap.replacement_pronoun == "she"
    assert cy.swap.pronoun is None
    assert dee.shift("personality_criticism_rate") < 0 < bo.shift("personality_criticism_rate")
    assert cy.shift("personality_criticism_rate") == 0 and not cy.changed
    assert dee.changed and bo.changed and result.changed_share == pytest.approx(2 / 3)

    shifts = {m.measure: m for m in result.measures}
    criticism = shifts["personality_criticism_rate"]
    assert criticism.mean_abs > 0
    assert abs(criticism.largest) == pytest.approx(criticism.mean_abs * 3 / 2)
    assert criticism.largest_swap is not None and " -> " in criticism.largest_swap
    assert result.moved()[0].mean_abs >= criticism.mean_abs
    assert result.model == "fake" and result.seed == 7 and result.sample == 10


def test_a_fair_model_shows_no_shift(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, everyone: list[Person]
) -> None:
    result = run_probe(engine, settings, embedder, everyone, biased=False)

    assert len(result.people) == 3
    assert result.changed_share == 0 and not result.moved()
    assert all(m.mean_abs == 0 and m.largest_swap is None for m in result.measures)
    assert [p.swap for p in result.people] == [
        p.swap for p in run_probe(engine, settings, embedder, everyone, biased=False).people
    ], "the same seed picks the same swaps"


def test_the_offline_drafter_is_not_probed(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, everyone: list[Person]
) -> None:
    result = run_probe(engine, settings, embedder, everyone, biased=None)

    assert result.skipped == SKIPPED_OFFLINE and not result.people and not result.measures
