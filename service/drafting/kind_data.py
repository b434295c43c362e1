"""Every data file keyed by draft kind names exactly the kinds of `DraftKind`.

A kind added to the enum without its queries, sections, offline plan or template, or a file
naming a kind the enum lacks, would otherwise fail only when someone drafts that kind; this
check names every gap at start-up instead. Retrieval keeps reading its own JSON (it must
not import the service), so the check of its file lives here.
"""

import json
from pathlib import Path

import prompts
from domain.errors import Misconfigured
from domain.kinds import DraftKind
from retrieval.queries import QUERIES_FILE

PROMPTS_DIR = Path(prompts.__file__).parent
SECTIONS_FILE = PROMPTS_DIR / "sections.json"
OFFLINE_KINDS_FILE = Path(__file__).parent / "data" / "offline_kinds.json"


class KindDataError(Misconfigured):
    """A data file lacks a draft kind or names one the enum does not know."""


def _keyed_kinds(mapping: dict[str, object]) -> set[str]:
    """The kinds a JSON object names, skipping comment keys such as `_source`."""
    return {key for key in mapping if not key.startswith("_")}


def _read_object(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data


def kind_sources() -> dict[str, set[str]]:
    """For each data file (by its path), the kinds it holds an entry for."""
    offline = _read_object(OFFLINE_KINDS_FILE).get("kinds")
    if not isinstance(offline, dict):
        raise KindDataError(f'{OFFLINE_KINDS_FILE}: no "kinds" object')
    return {
        str(QUERIES_FILE): _keyed_kinds(_read_object(QUERIES_FILE)),
        str(SECTIONS_FILE): _keyed_kinds(_read_object(SECTIONS_FILE)),
        str(OFFLINE_KINDS_FILE): _keyed_kinds(offline),
        f"{PROMPTS_DIR}/*.j2": {path.stem for path in PROMPTS_DIR.glob("*.j2")},
    }


def kind_data_problems(sources: dict[str, set[str]] | None = None) -> list[str]:
    """One line per gap: a kind a file lacks, or a kind a file names that the enum lacks."""
    known = {kind.value for kind in DraftKind}
    problems = []
    for source, kinds in (kind_sources() if sources is None else sources).items():
        problems += [f"{source}: no entry for draft kind {k!r}" for k in sorted(known - kinds)]
        problems += [f"{source}: unknown draft kind {k!r}" for k in sorted(kinds - known)]
    return problems


def check_kind_data() -> None:
    """Refuse to start while a draft kind's data is missing or a file names an unknown kind."""
    problems = kind_data_problems()
    if problems:
        raise KindDataError("draft kind data out of step: " + "; ".join(problems))
