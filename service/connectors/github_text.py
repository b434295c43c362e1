"""A pull request's, review's or issue's description as drafting needs it: prose only.

Descriptions on GitHub are Markdown written for reviewers: fenced and indented code, diffs,
the template's HTML comments, screenshots. None of it says what the person achieved, and
code must never be stored (docs/connectors.md), so it is cut out before anything is kept;
what is left is bounded, ending on a word with an ellipsis.
"""

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)|<img\b[^>]*>", re.IGNORECASE)
_DIFF_LINE = re.compile(r"^(?:diff --git |index [0-9a-f]+\.\.|--- |\+\+\+ |@@ )")
_DETAILS = re.compile(r"</?(?:details|summary)\b[^>]*>", re.IGNORECASE)
_BLANKS = re.compile(r"\n{3,}")


def summarise(markdown: str | None, limit: int) -> str:
    """The prose of `markdown`, without code, diffs, HTML comments or images, at most
    `limit` characters."""
    if not markdown:
        return ""
    text = markdown.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _HTML_COMMENT.sub("", text)
    text = _IMAGE.sub("", text)
    text = _DETAILS.sub("\n", text)
    prose = "\n".join(_prose_lines(text.split("\n")))
    prose = _BLANKS.sub("\n\n", prose).strip()
    return bound(prose, limit)


def bound(text: str, limit: int) -> str:
    """`text` cut to `limit` characters at a word, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _prose_lines(lines: list[str]) -> list[str]:
    """Lines outside fenced blocks, indented code blocks and diff hunks."""
    kept: list[str] = []
    fence: str | None = None
    in_diff = False
    previous_blank = True
    for line in lines:
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        if _DIFF_LINE.match(line):
            in_diff = True
            continue
        if in_diff:
            if line[:1] in ("+", "-", " ") and line.strip():
                continue
            in_diff = False
        indented = line.startswith(("    ", "\t")) and line.strip()
        if indented and (previous_blank or _is_code(kept)):
            kept.append("\x01")  # a marker: this line was code
            continue
        previous_blank = not line.strip()
        kept.append(line.rstrip())
    return [line for line in kept if line != "\x01"]


def _is_code(kept: list[str]) -> bool:
    """The line before was part of an indented code block."""
    return bool(kept) and kept[-1] == "\x01"
