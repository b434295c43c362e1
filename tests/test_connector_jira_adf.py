"""Atlassian Document Format to plain text (service/connectors/adf.py): the words kept,
code and media dropped, unknown nodes' text kept, hostile documents bounded."""

from service.connectors.adf import MAX_NODES, adf_to_text, strip_code


def _doc(*content: object) -> dict[str, object]:
    return {"type": "doc", "version": 1, "content": list(content)}


def _para(*content: object) -> dict[str, object]:
    return {"type": "paragraph", "content": list(content)}


def _text(text: str, **marks: object) -> dict[str, object]:
    node: dict[str, object] = {"type": "text", "text": text}
    if marks:
        node["marks"] = [{"type": kind, "attrs": attrs} for kind, attrs in marks.items()]
    return node


def _item(*content: object) -> dict[str, object]:
    return {"type": "listItem", "content": list(content)}


def test_paragraphs_headings_mentions_and_links_read_as_prose() -> None:
    doc = _doc(
        {"type": "heading", "attrs": {"level": 1}, "content": [_text("Outcome")]},
        _para(
            _text("Shipped with "),
            {"type": "mention", "attrs": {"id": "5b10", "text": "@Bo Chen"}},
            _text("; notes in the "),
            _text("design doc", link={"href": "https://docs.example.com/d"}),
            {"type": "hardBreak"},
            _text("see "),
            {"type": "inlineCard", "attrs": {"url": "https://example.atlassian.net/browse/PAY-1"}},
        ),
    )
    assert adf_to_text(doc) == (
        "Outcome\n\nShipped with @Bo Chen; notes in the design doc\n"
        "see https://example.atlassian.net/browse/PAY-1"
    )


def test_lists_nest_and_number() -> None:
    doc = _doc(
        {
            "type": "bulletList",
            "content": [
                _item(
                    _para(_text("one")),
                    {"type": "orderedList", "content": [_item(_para(_text("one-a")))]},
                ),
                _item(_para(_text("two"))),
            ],
        },
        _para(_text("after")),
    )
    assert adf_to_text(doc) == "- one\n  1. one-a\n- two\n\nafter"


def test_code_blocks_and_media_are_dropped() -> None:
    doc = _doc(
        _para(_text("Fixed the parser.")),
        {"type": "codeBlock", "attrs": {"language": "sql"}, "content": [_text("DROP TABLE x")]},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "f1"}}]},
        _para(_text("Done.")),
    )
    assert adf_to_text(doc) == "Fixed the parser.\n\nDone."


def test_an_unknown_node_keeps_its_words() -> None:
    doc = _doc({"type": "someFutureNode", "content": [_text("still here")]}, _para(_text("end")))
    assert adf_to_text(doc) == "still here\nend"


def test_a_hostile_document_is_bounded_not_a_recursion_error() -> None:
    deep: dict[str, object] = _doc()
    node = deep
    for _ in range(100_000):
        child: dict[str, object] = {"type": "paragraph", "content": []}
        node["content"] = [child]
        node = child
    node["content"] = [_text("too deep")]
    assert adf_to_text(deep) == ""
    wide = _doc(*(_para(_text("w")) for _ in range(MAX_NODES)))
    assert adf_to_text(wide).count("w") < MAX_NODES
    assert adf_to_text({"type": "doc", "content": "not a list"}) == ""
    assert adf_to_text(["not", "a", "doc"]) == ""
    assert adf_to_text(_doc(_para({"type": "text", "text": 42}))) == ""


def test_a_plain_string_description_loses_its_code_blocks() -> None:
    text = "Fixed it.\n```python\nimport os\n```\nThen {code:java}System.exit(1);{code} shipped."
    assert strip_code(text) == "Fixed it.\n\nThen  shipped."
    assert adf_to_text("Plain words") == "Plain words"
