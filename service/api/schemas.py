"""Request and response bodies: what the OpenAPI schema promises, with examples."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from domain import kinds
from domain.draft_options import MAX_EXCLUDED, Tone
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import StartSummary, StoredSetup
from service.cycles.tasks import TaskLine

T = TypeVar("T")
if TYPE_CHECKING:
    DraftKind = str
else:
    # A Literal of the enum's values: the schema lists them inline, a wrong value gets
    # "Input should be 'self_reflection', ...", and a valid one stays a plain string.
    DraftKind = Literal[tuple(kind.value for kind in kinds.DraftKind)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Items matching, over all pages.")
    limit: int
    offset: int


class MeOut(BaseModel):
    person_id: int
    email: str
    name: str
    roles: list[str] = Field(examples=[["employee", "manager"]])
    reports: int = Field(description="People this person manages, per the scope setting.")
    panels: list[int]


class PersonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    employee_id: str = Field(examples=["E00042"])
    name: str
    email: str
    manager_id: int | None
    level: str = Field(examples=["L4"])
    job_family: str = Field(examples=["Engineering"])
    department: str


class RecordOut(BaseModel):
    id: int
    kind: str = Field(examples=["work_record"])
    source: str
    external_id: str
    title: str | None
    body: str
    occurred_at: datetime
    author: str | None


class EvidenceItemOut(BaseModel):
    id: str = Field(description="The citation id drafts use.", examples=["E3"])
    record_id: int
    kind: str
    title: str | None
    text: str
    occurred_at: datetime
    author: str | None
    vector_score: float
    text_score: float
    reads_as_instructions: bool = Field(
        description="The item reads as instructions to a model: it is quoted as data with a "
        "marker, never copied into a draft, and a draft citing it is flagged."
    )


class EvidencePackOut(BaseModel):
    person_id: int
    period: str | None
    kind: DraftKind
    tokens: int
    candidates: int
    items: list[EvidenceItemOut]
    message: str | None = Field(description="Why the pack is empty, when it is.")


class DraftOptionsIn(BaseModel):
    """How to write the draft differently from the default (every field optional)."""

    evidence_period: str | None = Field(
        default=None,
        min_length=4,
        max_length=64,
        examples=["2026"],
        description="Draw evidence from this period instead of the draft's own.",
    )
    exclude_records: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDED,
        description="Record ids (an evidence item's `record_id`) to leave out.",
    )
    tone: Tone | None = Field(
        default=None,
        description="Ask the model for a shorter or more direct text (the offline drafter "
        "writes in one voice and says so in the job's result `note`).",
    )


class DraftRequest(DraftOptionsIn):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "self_reflection", "period": "2026-H1"}]}
    )

    kind: DraftKind
    period: str = Field(min_length=4, max_length=64, examples=["2026-H1"])


class JobOut(BaseModel):
    id: int
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class SentenceOut(BaseModel):
    text: str
    evidence: list[str] = Field(examples=[["E1", "E4"]])


class SectionOut(BaseModel):
    heading: str
    sentences: list[SentenceOut]


class VersionOut(BaseModel):
    version: int
    author: str
    origin: Literal["llm", "offline", "edit", "stale_edit"] = Field(
        description="stale_edit: an edit refused as stale, kept but never current"
    )
    created_at: datetime
    text: str = Field(description="The draft as plain text, the format an edit sends back.")
    sections: list[SectionOut]
    supported_share: float = Field(description="Share of sentences resting on cited evidence.")
    citation_flags: list[dict[str, Any]]


class CitedEvidenceOut(BaseModel):
    """An evidence item a draft's sentences may cite, as it was when the draft was written."""

    id: str = Field(examples=["E3"])
    kind: str
    title: str | None
    occurred_at: datetime
    text: str
    instruction_signals: list[str] = Field(
        default_factory=list,
        description="Why the item reads as instructions to a model; empty when it does not.",
    )


class DraftOut(BaseModel):
    id: int
    person_id: int
    kind: DraftKind
    period: str
    status: Literal["draft", "checked", "approved"]
    current_version: int
    version: VersionOut
    evidence: list[CitedEvidenceOut] = Field(description="What the citations (E1, E2, ...) name.")


class VersionSummary(BaseModel):
    version: int
    author: str
    origin: str
    created_at: datetime


class EditIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "based_on": 2,
                    "text": "## Results\n- Cut checkout latency from 420 ms to 260 ms. [E1]\n",
                }
            ]
        }
    )

    based_on: int = Field(ge=1, description="The version this edit started from.")
    text: str = Field(min_length=1, max_length=100_000)


class FlagOut(BaseModel):
    key: str = Field(examples=["F2"])
    measure: str = Field(examples=["personality_criticism"])
    phrase: str = Field(examples=["abrasive"])
    section: int = Field(description="Index of the section in the draft.")
    sentence: int = Field(description="Index of the sentence in its section.")
    start: int = Field(description="Character span of the phrase in the sentence.")
    end: int
    suggestion: str
    acknowledged_by: str | None = None
    reason: str | None = None


class CheckOut(BaseModel):
    draft_id: int
    version: int
    status: str
    flags: list[FlagOut]
    open_flags: int


class AcknowledgeIn(BaseModel):
    reason: str = Field(min_length=3, max_length=2000, examples=["quoting the customer's words"])


EvidenceId = Annotated[str, Field(pattern=r"^E[1-9]\d{0,5}$", examples=["E4"])]


class RewriteOut(BaseModel):
    """A proposed rewrite of a flagged sentence, beside the original; nothing is saved."""

    draft_id: int
    flag: str = Field(examples=["F2"])
    measure: str = Field(examples=["personality_criticism"])
    phrase: str = Field(examples=["abrasive"])
    version: int = Field(description="The version the flag's check saw: `based_on` to apply.")
    section: int = Field(description="Index of the section in the draft.")
    sentence: int = Field(description="Index of the sentence in its section.")
    original: SentenceOut
    proposal: SentenceOut = Field(
        description="Cites only ids the original cited, at least one (checked)."
    )
    origin: Literal["llm", "template"] = Field(
        description="llm: the configured model's rewrite; template: built offline from the "
        "first sentence of a cited evidence item."
    )
    model: str | None = Field(description="The model that wrote it; null for a template.")
    note: str = Field(description="What the person should know before applying it.")


class ApplyRewriteIn(BaseModel):
    """The rewrite to put in place of the flagged sentence (the proposal, or the person's
    own wording of it), as an edit of the version the flag's check saw."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "based_on": 2,
                    "text": "Cut the refund backlog from 900 to 120 tickets.",
                    "evidence": ["E1"],
                }
            ]
        }
    )

    based_on: int = Field(
        ge=1, le=2_147_483_647, description="The version the flag's check saw (`version`)."
    )
    text: str = Field(min_length=1, max_length=2000, description="The one rewritten sentence.")
    evidence: list[EvidenceId] = Field(
        min_length=1,
        max_length=50,
        description="Its citations: only ids the original sentence cited.",
    )


class CycleJobIn(BaseModel):
    kinds: list[DraftKind] = Field(default=list(kinds.REVIEW_KINDS), min_length=1)


class ProbeIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "manager_feedback", "sample": 20, "seed": 7}]}
    )

    kind: DraftKind
    sample: int = Field(default=20, ge=1, le=500, description="People drafted twice.")
    seed: int = Field(default=7, ge=0, le=2**31 - 1)


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class RatingIn(BaseModel):
    """Strict: a JSON integer only. "5", 5.0 and true are refused (422 naming the field)
    rather than coerced, so a client's type bug never lands as a rating."""

    rating: int = Field(
        ge=1, le=10, strict=True, examples=[4], description="Within the cycle's scale."
    )


class PlacementIn(BaseModel):
    """Strict integers, like ratings."""

    performance: int = Field(ge=1, le=3, strict=True, description="1 low, 2 moderate, 3 high.")
    potential: int = Field(ge=1, le=3, strict=True, description="1 low, 2 moderate, 3 high.")


class RatingOut(BaseModel):
    cycle: str
    person_id: int
    rater_id: int
    rating: int
    calibrated_rating: int | None
    finalised: bool
    updated_at: datetime


class PanelIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"cycle": "2026-H1", "level": "L3", "job_family": "engineering", "members": [8]}
            ]
        }
    )

    cycle: str = Field(min_length=4, max_length=64)
    level: str = Field(min_length=1, max_length=32)
    job_family: str = Field(min_length=1, max_length=128)
    members: list[Annotated[int, Field(ge=1, le=2_147_483_647)]] = Field(
        min_length=1, max_length=50, description="Person ids."
    )


class PanelRatingOut(BaseModel):
    """A cohort person's rating as a panel sees it: by label, never by id."""

    label: str
    proposed: int | None
    calibrated: int | None
    final: bool


class PanelOut(BaseModel):
    id: int
    cycle: str
    level: str
    job_family: str
    members: int


class NineBoxOut(BaseModel):
    performance: int
    potential: int


class CohortRowOut(BaseModel):
    label: str = Field(description="A pseudonym (P-xxxxxx) unless pseudonymisation is off.")
    person_id: int | None
    manager_label: str | None
    summary: str | None = Field(description="The comparable-evidence summary, names redacted.")
    proposed: int | None
    calibrated: int | None
    final: bool
    placement: NineBoxOut | None
    predicted: float | None = Field(description="The rating the evidence predicts.")


class ManagerOut(BaseModel):
    label: str
    n: int
    mean_residual: float
    direction: Literal["harsh", "generous"]
    flagged: bool


class DisagreementOut(BaseModel):
    label: str
    proposed: int
    predicted: float | None
    calibrated: int | None
    evidence_gap: float | None
    calibration_change: int | None
    size: float


class DistributionOut(BaseModel):
    scale: list[int]
    proposed: dict[str, int]
    calibrated: dict[str, int]
    rated: int
    calibrated_people: int


class CohortOut(BaseModel):
    panel: PanelOut
    pseudonymised: bool
    rows: list[CohortRowOut]
    distribution: DistributionOut
    managers: list[ManagerOut]
    disagreements: list[DisagreementOut]
    evidence_r_squared: float | None


# --- review cycles: set-up and tasks (issue 16) --------------------------------------------


class CycleCreateIn(CycleSetupIn):
    """A cycle's set-up with the period it reviews (the cycle's key, e.g. 2026-H2)."""

    period: str = Field(min_length=4, max_length=64, examples=["2026-H2"])


class CycleCopyIn(BaseModel):
    """The period of the new cycle; the set-up's dates move by the distance between the
    two periods' starts."""

    model_config = ConfigDict(extra="forbid")

    period: str = Field(min_length=4, max_length=64, examples=["2026-H2"])


CycleSetupOut = StoredSetup
CycleStartOut = StartSummary
TaskOut = TaskLine
