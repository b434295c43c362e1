"""The sentence editor's form: a draft shown as one field per heading and sentence, each
sentence with its citation chips (tick to keep, pick one to add), and read back into a
DraftBody. No script needed: it is a plain form, so it works with a keyboard, a screen
reader and without JavaScript.

Field names: `h-S` a section's heading, `t-S-N` a sentence's text, `c-S-N` the evidence ids
it keeps (checkboxes, repeated), `a-S-N` one evidence id to add; `t-S-new` and `a-S-new` a
sentence added at the end of section S. An emptied sentence is dropped, an emptied heading
refused. Ids are checked against the draft's pack: a forged one is refused by name.
"""

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from domain.errors import Invalid
from service.drafting.structure import DraftBody, DraftSection, DraftSentence

MAX_SECTIONS = 20
MAX_SENTENCES = 60  # per section
MAX_TEXT = 2000  # characters of one sentence or heading
_FIELD = re.compile(r"^(?P<what>[htca])-(?P<section>\d{1,2})(?:-(?P<sentence>\d{1,2}|new))?$")


@dataclass(frozen=True)
class SentenceRow:
    key: str  # "S-N", or "S-new" for the empty row that adds a sentence
    text: str
    cited: list[str]


@dataclass(frozen=True)
class EditorSection:
    index: int
    heading: str
    rows: list[SentenceRow]


def editor_sections(body: DraftBody) -> list[EditorSection]:
    """The form's sections: every sentence, then an empty row to add one."""
    return [
        EditorSection(
            s,
            section.heading,
            [
                SentenceRow(f"{s}-{n}", sentence.text, list(sentence.evidence))
                for n, sentence in enumerate(section.sentences)
            ]
            + [SentenceRow(f"{s}-new", "", [])],
        )
        for s, section in enumerate(body.sections)
    ]


def body_from_form(form: Mapping[str, Sequence[str]], pack_ids: Collection[str]) -> DraftBody:
    """The edited draft, or Invalid naming the field at fault."""
    headings: dict[int, str] = {}
    rows: dict[tuple[int, int], dict[str, list[str]]] = {}
    for name, values in form.items():
        found = _FIELD.match(name)
        if found is None:
            continue  # based_on and anything a browser adds
        section = int(found["section"])
        if section >= MAX_SECTIONS:
            raise Invalid(f"a draft has at most {MAX_SECTIONS} sections", field=name)
        if found["what"] == "h":
            headings[section] = _text(name, values)
            continue
        if found["sentence"] is None:
            raise Invalid("a sentence field names its section and sentence", field=name)
        number = MAX_SENTENCES if found["sentence"] == "new" else int(found["sentence"])
        if number > MAX_SENTENCES:
            raise Invalid(f"a section has at most {MAX_SENTENCES} sentences", field=name)
        rows.setdefault((section, number), {})[found["what"]] = list(values)
    sections = [
        DraftSection(
            heading=_heading(headings, s),
            sentences=_sentences(s, rows, set(pack_ids)),
        )
        for s in sorted(headings)
    ]
    if not any(section.sentences for section in sections):
        raise Invalid("the draft holds no sentences", field="t-0-0")
    return DraftBody(sections=sections)


def _heading(headings: Mapping[int, str], section: int) -> str:
    heading = headings[section]
    if not heading:
        raise Invalid("a heading may not be empty", field=f"h-{section}")
    return heading


def _sentences(
    section: int, rows: Mapping[tuple[int, int], Mapping[str, list[str]]], pack: set[str]
) -> list[DraftSentence]:
    out = []
    for (s, n), fields in sorted(rows.items()):
        if s != section:
            continue
        key = f"{s}-{'new' if n == MAX_SENTENCES else n}"
        text = _text(f"t-{key}", fields.get("t", [""]))
        if not text:
            continue  # emptied: the sentence is dropped
        cited = [*fields.get("c", []), *(a for a in fields.get("a", []) if a)]
        unknown = [c for c in cited if c not in pack]
        if unknown:
            raise Invalid(
                f"{', '.join(unknown[:3])} is not evidence of this draft", field=f"c-{key}"
            )
        out.append(DraftSentence(text=text, evidence=list(dict.fromkeys(cited))))
    return out


def _text(name: str, values: Sequence[str]) -> str:
    if len(values) != 1:
        raise Invalid("give this field once", field=name)
    text = " ".join(values[0].split())
    if len(text) > MAX_TEXT:
        raise Invalid(f"at most {MAX_TEXT} characters ({len(text)} given)", field=name)
    return text
