"""Atlassian Document Format (Jira Cloud's rich text) turned into the plain text drafting
needs: paragraphs, headings, lists, mentions as names, links as their text.

Code blocks and media (attachments) are dropped, as every connector drops code; a node
this walker does not know keeps the text inside it, so a new ADF node type loses its
formatting, never its words. The walk is iterative and bounded in depth and size: a
hostile document nested thousands deep or holding millions of nodes costs a bounded amount
of work and never a RecursionError.

Node and mark names are those of ADF's published structure:
https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_DEPTH = 64  # deeper content is not read: no real document nests this far
MAX_NODES = 50_000  # a description with more nodes keeps its first ones

_DROPPED = frozenset({"codeBlock", "media", "mediaSingle", "mediaGroup", "mediaInline"})
_BLOCKS = frozenset(
    {
        "paragraph",
        "heading",
        "blockquote",
        "panel",
        "rule",
        "table",
        "tableRow",
        "expand",
        "nestedExpand",
        "decisionList",
        "taskList",
    }
)
_CELLS = frozenset({"tableCell", "tableHeader"})
_FENCED = re.compile(r"(^|\n)\s*(```|~~~).*?(\n\s*\2[^\n]*(?=\n|$)|$)", re.DOTALL)
_WIKI_CODE = re.compile(r"\{(code|noformat)[^}]*\}.*?(\{\1\}|$)", re.DOTALL)
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class _Step:
    """One node to visit (or, when `node` is None, text to emit once its children are)."""

    node: object
    depth: int
    prefix: str = ""
    after: str = ""
    tight: bool = False  # a list item's paragraph: ends with one newline, not a blank line


def adf_to_text(document: object) -> str:
    """The document's words as plain text; a string (an API v2 or wiki-markup description)
    comes back with its code blocks removed; anything else is empty."""
    if isinstance(document, str):
        return strip_code(document)
    if not isinstance(document, dict):
        return ""
    out: list[str] = []
    for piece in _walk(document):
        out.append(piece)
    return _tidy("".join(out))


def strip_code(text: str) -> str:
    """Plain text with fenced (``` / ~~~) and wiki-markup ({code} / {noformat}) blocks
    removed."""
    text = _FENCED.sub(r"\1", text)
    text = _WIKI_CODE.sub("", text)
    return _tidy(text)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _walk(document: dict[str, object]) -> Iterator[str]:
    """Depth-first, left to right, with an explicit stack."""
    stack: list[_Step | str] = [_Step(document, 0)]
    visited = 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
            continue
        visited += 1
        if visited > MAX_NODES or item.depth > MAX_DEPTH or not isinstance(item.node, dict):
            continue
        yield item.prefix
        stack.append(item.after)
        stack.extend(reversed(list(_expand(item.node, item.depth, item.tight))))


def _expand(node: dict[str, object], depth: int, tight: bool) -> Iterator[_Step | str]:
    """What a node contributes: its own text, or its children with what goes around them."""
    kind = node.get("type")
    attrs = node.get("attrs")
    attrs = attrs if isinstance(attrs, dict) else {}
    if kind in _DROPPED:
        return
    if kind == "text":
        text = node.get("text")
        yield text if isinstance(text, str) else ""
        return
    if kind == "hardBreak":
        yield "\n"
        return
    if kind == "mention":
        name = attrs.get("text")
        yield name if isinstance(name, str) else "@someone"
        return
    if kind in ("emoji", "status"):
        label = attrs.get("text") or attrs.get("shortName")
        yield label if isinstance(label, str) else ""
        return
    if kind == "inlineCard" or kind == "blockCard":
        url = attrs.get("url")
        yield url if isinstance(url, str) else ""
        return
    if kind == "date":
        yield _date(attrs.get("timestamp"))
        return
    children = node.get("content")
    if not isinstance(children, list):
        return
    yield from _children(kind, children, depth, tight)


def _children(
    kind: object, children: list[object], depth: int, tight: bool
) -> Iterator[_Step | str]:
    if kind in ("bulletList", "orderedList"):
        for number, child in enumerate(children, start=1):
            mark = f"{number}. " if kind == "orderedList" else "- "
            yield _Step(child, depth + 1, prefix="  " * _list_level(depth) + mark)
        yield "" if tight else "\n"
        return
    if kind == "listItem" or kind == "taskItem" or kind == "decisionItem":
        for child in children:
            yield _Step(child, depth + 1, tight=True)
        return
    for child in children:
        yield _Step(child, depth + 1)
    if kind in _CELLS:
        yield " | "
    elif kind in _BLOCKS:
        yield "\n" if tight or kind == "tableRow" else "\n\n"
    elif kind != "doc":
        yield "\n"  # a node this walker does not know: its words kept, on a line of their own


def _list_level(depth: int) -> int:
    """Indent nested lists a little (depth counts list and listItem nodes both)."""
    return max(0, (depth - 1) // 2)


def _date(timestamp: object) -> str:
    """ADF dates are epoch milliseconds as a string."""
    if isinstance(timestamp, str) and timestamp.isdigit():
        moment = datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
        return moment.date().isoformat()
    return ""
