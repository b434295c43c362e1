"""A review cycle's vocabulary, named once: its phases in the order they run, the reviews a
cycle may ask for, the tasks starting it creates and their statuses.

Standard library only: the CLI checks options against these before anything heavy loads,
and the set-up validation, the database constraints (migration 0012) and the API schemas
read them here.
"""

from enum import StrEnum


class Phase(StrEnum):
    """A phase of a cycle, in the order a cycle runs them (the enum's order is that order)."""

    SELF_REFLECTION = "self_reflection"
    PEER_FEEDBACK = "peer_feedback"
    MANAGER_REVIEW = "manager_review"
    CALIBRATION = "calibration"
    RELEASE = "release"
    SIGN_OFF = "sign_off"


PHASES: tuple[Phase, ...] = tuple(Phase)


class CycleReview(StrEnum):
    """A review a cycle asks for. Promotion packets are written for nominated people only,
    calibration by panels: neither gives every participant a task when the cycle starts."""

    SELF_REFLECTION = "self_reflection"
    PEER_FEEDBACK = "peer_feedback"
    UPWARD_FEEDBACK = "upward_feedback"
    MANAGER_FEEDBACK = "manager_feedback"
    PROMOTION_PACKET = "promotion_packet"
    CALIBRATION = "calibration"


CYCLE_REVIEWS: tuple[CycleReview, ...] = tuple(CycleReview)
# The reviews whose writers answer questions (calibration is a panel's discussion).
QUESTIONED_REVIEWS: tuple[CycleReview, ...] = (
    CycleReview.SELF_REFLECTION,
    CycleReview.PEER_FEEDBACK,
    CycleReview.UPWARD_FEEDBACK,
    CycleReview.MANAGER_FEEDBACK,
    CycleReview.PROMOTION_PACKET,
)


class TaskKind(StrEnum):
    """Something a person must do in a cycle, by a due date."""

    WRITE_SELF_REFLECTION = "write_self_reflection"
    NOMINATE_PEERS = "nominate_peers"
    APPROVE_NOMINATIONS = "approve_nominations"
    WRITE_MANAGER_FEEDBACK = "write_manager_feedback"
    ACKNOWLEDGE_REVIEW = "acknowledge_review"
    GIVE_PEER_FEEDBACK = "give_peer_feedback"
    GIVE_UPWARD_FEEDBACK = "give_upward_feedback"
    WRITE_PROMOTION_PACKET = "write_promotion_packet"
    CALIBRATE_COHORT = "calibrate_cohort"


TASK_KINDS: tuple[TaskKind, ...] = tuple(TaskKind)
# The phase each task belongs to: its due date is that phase's. Peers are nominated and the
# list approved while people write their self-reflections, so that requests can go out
# when peer feedback opens.
TASK_PHASE: dict[TaskKind, Phase] = {
    TaskKind.WRITE_SELF_REFLECTION: Phase.SELF_REFLECTION,
    TaskKind.NOMINATE_PEERS: Phase.SELF_REFLECTION,
    TaskKind.APPROVE_NOMINATIONS: Phase.SELF_REFLECTION,
    TaskKind.WRITE_MANAGER_FEEDBACK: Phase.MANAGER_REVIEW,
    TaskKind.ACKNOWLEDGE_REVIEW: Phase.SIGN_OFF,
    TaskKind.GIVE_PEER_FEEDBACK: Phase.PEER_FEEDBACK,
    TaskKind.GIVE_UPWARD_FEEDBACK: Phase.PEER_FEEDBACK,
    TaskKind.WRITE_PROMOTION_PACKET: Phase.MANAGER_REVIEW,
    TaskKind.CALIBRATE_COHORT: Phase.CALIBRATION,
}


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    DECLINED = "declined"


TASK_STATUSES: tuple[TaskStatus, ...] = tuple(TaskStatus)


class RequestStatus(StrEnum):
    """A feedback request's state: `open` (a draft may be saved), then `submitted` (read-only,
    evidence of the subject) or `declined` (with the peer's reason)."""

    OPEN = "open"
    SUBMITTED = "submitted"
    DECLINED = "declined"


REQUEST_STATUSES: tuple[RequestStatus, ...] = tuple(RequestStatus)


class FeedbackKind(StrEnum):
    """Whom a feedback request asks: a nominated peer, or a report about their manager
    (upward feedback, asked of every participant whose manager participates)."""

    PEER = "peer"
    UPWARD = "upward"


FEEDBACK_KINDS: tuple[FeedbackKind, ...] = tuple(FeedbackKind)


class CycleStatus(StrEnum):
    """`draft`: the set-up may change; `started`: tasks exist, only phase dates move."""

    DRAFT = "draft"
    STARTED = "started"


CYCLE_STATUSES: tuple[CycleStatus, ...] = tuple(CycleStatus)


def needed_phases(reviews: frozenset[CycleReview]) -> tuple[Phase, ...]:
    """The phases a cycle asking for these reviews must date, in order: release and sign-off
    always; self-reflection when people write one or nominate peers; peer feedback,
    manager review and calibration when asked (upward feedback runs in the peer-feedback
    phase)."""
    need = {Phase.RELEASE, Phase.SIGN_OFF}
    if reviews & {CycleReview.SELF_REFLECTION, CycleReview.PEER_FEEDBACK}:
        need.add(Phase.SELF_REFLECTION)
    if reviews & {CycleReview.PEER_FEEDBACK, CycleReview.UPWARD_FEEDBACK}:
        need.add(Phase.PEER_FEEDBACK)
    if reviews & {CycleReview.MANAGER_FEEDBACK, CycleReview.PROMOTION_PACKET}:
        need.add(Phase.MANAGER_REVIEW)
    if CycleReview.CALIBRATION in reviews:
        need.add(Phase.CALIBRATION)
    return tuple(p for p in PHASES if p in need)
