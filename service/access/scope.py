"""What a person may do to a draft, given who they are to its subject.

- The subject sees their own self-reflection at every stage, and a draft of another kind
  (their manager's feedback, a promotion packet, a calibration summary) once it is
  approved: an unapproved manager's draft is the manager's working paper.
- Managers see, request, edit, check and approve every kind for the people in their scope.
- The subject requests, edits and checks their own self-reflection; approving it is their
  manager's step, so nobody approves their own review text.
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


def may_see_draft(principal: Principal, subject_id: int, kind: str, status: str) -> bool:
    if principal.manages(subject_id) or principal.hr_admin:
        return True
    if subject_id == principal.person_id:
        return kind == SELF_KIND or status == "approved"
    return False


def may_write_draft(principal: Principal, subject_id: int, kind: str) -> bool:
    """Request, edit, check and acknowledge flags."""
    if principal.manages(subject_id):
        return True
    return subject_id == principal.person_id and kind == SELF_KIND


def may_approve_draft(principal: Principal, subject_id: int) -> bool:
    return principal.manages(subject_id)


def may_read_history(principal: Principal, subject_id: int, kind: str) -> bool:
    return principal.hr_admin or may_write_draft(principal, subject_id, kind)


def shows_author(principal: Principal, subject_id: int, kind: str) -> bool:
    return not (kind == "feedback" and subject_id == principal.person_id)
