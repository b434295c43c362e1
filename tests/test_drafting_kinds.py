"""Draft kinds have one home (domain.kinds): every data file keyed by kind holds
exactly the enum's kinds, the API's schema lists the enum's values, and the defaults of the
CLI, the job queue and the API are the one set of review kinds."""

import pytest

from domain.kinds import DRAFT_KINDS, REVIEW_KINDS, DraftKind
from service.api.schemas import CycleJobIn, ProbeIn
from service.drafting.kind_data import (
    KindDataError,
    check_kind_data,
    kind_data_problems,
    kind_sources,
)


def test_every_data_file_holds_every_kind_and_no_other() -> None:
    assert kind_data_problems() == []
    check_kind_data()
    for source, kinds in kind_sources().items():
        assert kinds == {kind.value for kind in DraftKind}, source


def test_a_kind_missing_from_a_file_is_named() -> None:
    sources = {"sections.json": {"self_reflection", "manager_feedback", "promotion_packet"}}
    assert kind_data_problems(sources) == [
        "sections.json: no entry for draft kind 'calibration_summary'"
    ]


def test_a_file_naming_an_unknown_kind_is_named() -> None:
    sources = {"queries.json": {kind.value for kind in DraftKind} | {"exit_interview"}}
    assert kind_data_problems(sources) == ["queries.json: unknown draft kind 'exit_interview'"]


def test_start_up_check_refuses_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.drafting.kind_data as kind_data

    monkeypatch.setattr(kind_data, "kind_sources", lambda: {"x.j2": set()})
    with pytest.raises(KindDataError, match=r"x\.j2: no entry for draft kind 'self_reflection'"):
        check_kind_data()


def test_api_accepts_exactly_the_enum_and_defaults_to_the_review_kinds() -> None:
    schema = ProbeIn.model_json_schema()["properties"]["kind"]
    assert schema["enum"] == [kind.value for kind in DRAFT_KINDS]
    assert CycleJobIn().kinds == [kind.value for kind in REVIEW_KINDS]
    assert REVIEW_KINDS == (
        DraftKind.SELF_REFLECTION,
        DraftKind.MANAGER_FEEDBACK,
        DraftKind.PROMOTION_PACKET,
    )
