"""What a person may do to a draft, given who they are to its subject.

- The subject sees their own self-reflection at every stage, and a draft of another kind
  (their manager's feedback, a promotion packet, a calibration summary) once it is
  approved: an unapproved manager's draft is the manager's working paper. In a cycle HR
  set up, not even an approved one until the cycle is released to the subject's
  department (`withheld`, service.cycles.release): the review reaches the employee at
  release, after calibration, never piecemeal. Their own rating likewise: once final, and
  in a set-up cycle once released. This holds for a subject who is an HR admin too.
- Managers see, request, edit, check and approve every kind for the people in their scope.
- The subject requests, edits, checks and approves their own self-reflection: it is their
  own account (issue 16: "an employee writes and approves a self-reflection"), and the
  approval gate (a bias check, every flag settled) holds for them as for a manager. Every
  other kind is approved by the subject's manager, never by its subject.
- HR admins read every draft (to follow a cycle) but write none.
- A draft's earlier versions and its audit trail are for those who write it, and HR: the
  subject of an approved manager's draft reads the approved text, not the working papers.
- Peer feedback is shown to its subject without its author's name; the manager and HR
  see who wrote it.
A draft someone may not see is "not found" to them; one they see but may not change is
"forbidden" (service.http.errors).
"""

from domain.kinds import DraftKind
from service.access.principal import Principal

SELF_KIND = DraftKind.SELF_REFLECTION.value


def _as_subject(principal: Principal, subject_id: int) -> bool:
    """The caller reads as the subject (not as a manager of them, which nobody is of
    themselves); HR's wider reading does not reach their own review."""
    return subject_id == principal.person_id and not principal.manages(subject_id)


def may_see_draft(
    principal: Principal, subject_id: int, kind: str, status: str, *, withheld: bool
) -> bool:
    """`withheld`: the draft is of a set-up cycle not yet released to the subject's
    department (service.cycles.release.withheld_clause computes it with the draft's row)."""
    if _as_subject(principal, subject_id):
        return kind == SELF_KIND or (status == "approved" and not withheld)
    return principal.manages(subject_id) or principal.hr_admin


def may_see_rating(principal: Principal, person_id: int, *, final: bool, withheld: bool) -> bool:
    """HR sees every rating, a manager their reports'; a person sees their own only once it
    is final (a proposal under calibration is not yet their rating) and, in a set-up
    cycle, released to their department."""
    if _as_subject(principal, person_id):
        return final and not withheld
    return principal.hr_admin or principal.manages(person_id)


def may_write_draft(principal: Principal, subject_id: int, kind: str) -> bool:
    """Request, edit, check and acknowledge flags."""
    if principal.manages(subject_id):
        return True
    return subject_id == principal.person_id and kind == SELF_KIND


def may_approve_draft(principal: Principal, subject_id: int, kind: str) -> bool:
    if principal.manages(subject_id):
        return True
    return subject_id == principal.person_id and kind == SELF_KIND


def may_read_history(principal: Principal, subject_id: int, kind: str) -> bool:
    return principal.hr_admin or may_write_draft(principal, subject_id, kind)


def shows_author(principal: Principal, subject_id: int, kind: str) -> bool:
    return not (kind == "feedback" and subject_id == principal.person_id)


def may_read_review(principal: Principal, person_id: int, *, withheld: bool) -> bool:
    """A person's released review of a cycle (feedback, rating, acknowledgement): theirs
    once released to their department; their manager's and HR's at any time (they wrote
    and checked it, and read the comment it drew)."""
    if _as_subject(principal, person_id):
        return not withheld
    return principal.hr_admin or principal.manages(person_id)
