"""Who a draft is about, as far as drafting needs to know.

Only what the words of a draft need: how to name the person, the level and job family the
draft is judged against, and the kind of draft. Demographic attributes are deliberately not
here: nothing that writes a draft may see them (design: they are read only by the bias
check and HR roles). Drafts name their subject by first name, never by pronoun.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DraftSubject:
    name: str
    first_name: str
    level: str
    job_family: str
    kind: str  # a DraftKind value (domain.kinds)
