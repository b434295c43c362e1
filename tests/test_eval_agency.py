"""The agency eval on its labelled set: a well-formed report whose AUC is a number in [0, 1],
a set that keeps its promised size and balance, an AUC that counts ties half, a loader
that refuses a malformed set naming the line and field, and the held-out set's figures
reported beside the development set's without its texts.

No database: the eval scores texts with the language measures alone.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from evals.eval_agency import (
    AgencySetError,
    load_cases,
    main,
    roc_auc,
)

HEADER = {"_source": "written for this test", "_labels": "agentic or communal"}
FIGURES = {
    "cases",
    "agentic",
    "communal",
    "mixed_left_out",
    "auc",
    "target_auc",
    "meets_target",
    "share_zero",
    "share_zero_agentic",
    "share_zero_communal",
    "share_no_word",
    "agentic_without_agentic_word",
    "communal_without_communal_word",
    "misranked",
}
HELD_OUT_FIGURES = FIGURES | {"holdout"}


def write_set(path: Path, cases: list[dict[str, object]]) -> Path:
    lines = [json.dumps(HEADER), *(json.dumps(case) for case in cases)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def case(case_id: str, label: str = "agentic") -> dict[str, object]:
    return {"id": case_id, "label": label, "text": "She shipped it early.", "note": "achievement"}


def test_the_eval_ends_with_one_json_line_of_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert set(result) == HELD_OUT_FIGURES
    assert isinstance(result["auc"], float) and 0.0 <= result["auc"] <= 1.0
    assert 0.0 <= result["share_zero"] <= 1.0
    assert result["agentic"] + result["communal"] == result["cases"]


def test_the_set_is_large_balanced_and_covers_every_facet() -> None:
    cases = [c for c in load_cases().cases if not c.mixed]
    labels = Counter(c.label for c in cases)
    assert labels["agentic"] == labels["communal"] >= 120
    facets: Counter[tuple[str, str]] = Counter((c.label, c.note) for c in cases)
    agentic = {"competence", "capability", "achievement", "leadership", "assertiveness"}
    agentic |= {"independence", "decisiveness", "ambition", "influence"}
    communal = {"warmth", "helpfulness", "care", "cooperation", "supportiveness", "kindness"}
    communal |= {"nurturing", "agreeableness", "attending"}
    for label, wanted in (("agentic", agentic), ("communal", communal)):
        assert {note for lab, note in facets if lab == label} == wanted
        assert all(facets[(label, note)] >= 8 for note in wanted)


def test_the_auc_counts_ties_half() -> None:
    assert roc_auc([3.0, 2.0], [1.0, 0.0]) == 1.0
    assert roc_auc([0.0, 0.0], [0.0, 0.0]) == 0.5
    # pairs: 1>0 wins, 1<2 loses, 2>0 wins, 2=2 ties: 2.5 of 4
    assert roc_auc([1.0, 2.0], [0.0, 2.0]) == 0.625


def test_the_loader_refuses_a_duplicate_id(tmp_path: Path) -> None:
    path = write_set(tmp_path / "cases.jsonl", [case("ag-001"), case("ag-001", "communal")])
    with pytest.raises(AgencySetError, match=r"line 3: id: 'ag-001' repeats line 2") as caught:
        load_cases(path)
    assert caught.value.field == "id"


def test_the_loader_refuses_an_unknown_label(tmp_path: Path) -> None:
    path = write_set(tmp_path / "cases.jsonl", [case("ag-001"), case("ag-002", "neutral")])
    with pytest.raises(AgencySetError, match=r"line 3: label:") as caught:
        load_cases(path)
    assert caught.value.field == "label"


def test_a_malformed_set_is_a_message_and_exit_2_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(HEADER) + "\n{not json\n", encoding="utf-8")
    assert main(["--cases", str(path)]) == 2
    assert "line 2: not a JSON object" in capsys.readouterr().err


def two_sets(tmp_path: Path) -> tuple[Path, Path]:
    dev = write_set(
        tmp_path / "dev.jsonl",
        [
            {"id": "ag-001", "label": "agentic", "text": "She led the launch.", "note": "x"},
            {"id": "co-001", "label": "communal", "text": "He is kind.", "note": "x"},
        ],
    )
    held = write_set(
        tmp_path / "held.jsonl",
        [
            {"id": "ag-001", "label": "agentic", "text": "Zephyrine shipped it.", "note": "x"},
            {"id": "ag-002", "label": "agentic", "text": "Quillon is kind and warm.", "note": "x"},
            {"id": "co-001", "label": "communal", "text": "Marisol helps the team.", "note": "x"},
        ],
    )
    return dev, held


def test_the_held_out_figures_are_reported_but_never_its_texts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev, held = two_sets(tmp_path)
    assert main(["--cases", str(dev), "--holdout", str(held)]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["auc"] == 1.0
    assert set(result["holdout"]) == FIGURES
    assert result["holdout"]["cases"] == 3
    assert result["holdout"]["auc"] == 0.5  # shipped above helps, kind and warm below
    assert result["holdout"]["misranked"] == 1
    assert "on the held-out set" in out
    for word in ("Zephyrine", "Quillon", "Marisol"):  # read it and it is no longer held out
        assert word not in out


def test_without_a_held_out_file_its_figures_are_null(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev, _ = two_sets(tmp_path)
    assert main(["--cases", str(dev), "--holdout", str(tmp_path / "absent.jsonl")]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1])["holdout"] is None
    assert "absent.jsonl not found" in out


def test_a_malformed_held_out_set_is_a_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev, held = two_sets(tmp_path)
    held.write_text(json.dumps(HEADER) + "\n" + json.dumps(case("ag-001", "neutral")) + "\n")
    assert main(["--cases", str(dev), "--holdout", str(held)]) == 2
    assert "held.jsonl line 2: label:" in capsys.readouterr().err
