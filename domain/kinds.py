"""The draft kinds, named once: every list, default and check in the code reads them here.

Standard library only, since the CLI imports it at start-up to check `--kind` before anything
heavy loads. The data files that hold one entry per kind (retrieval's queries, the prompt
sections and templates, the offline drafter's plans) are checked against it by
`service.drafting.kind_data.check_kind_data`.
"""

from enum import StrEnum


class DraftKind(StrEnum):
    """A kind of draft: what it is for decides its evidence, sections, voice and template."""

    SELF_REFLECTION = "self_reflection"
    MANAGER_FEEDBACK = "manager_feedback"
    PROMOTION_PACKET = "promotion_packet"
    CALIBRATION_SUMMARY = "calibration_summary"


DRAFT_KINDS: tuple[DraftKind, ...] = tuple(DraftKind)
# "The three reviews": what a review cycle drafts for each person when no kinds are named.
# The calibration summary is drafted for panels, not asked of everyone.
REVIEW_KINDS: tuple[DraftKind, ...] = (
    DraftKind.SELF_REFLECTION,
    DraftKind.MANAGER_FEEDBACK,
    DraftKind.PROMOTION_PACKET,
)
