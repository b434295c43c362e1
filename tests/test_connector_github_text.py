"""What is kept of a GitHub description: prose only (no code, diffs, HTML comments or
images), bounded at a word."""

from service.connectors.github_text import bound, summarise


def test_fenced_blocks_of_either_kind_are_cut_out_whole() -> None:
    text = "Before.\n\n````md\n```\ninner\n```\n````\n\n~~~\ntilde code\n~~~\nAfter."
    assert summarise(text, 500) == "Before.\n\nAfter."


def test_indented_code_after_a_blank_line_is_cut_but_a_wrapped_line_is_kept() -> None:
    text = "Intro line\n    continues the paragraph.\n\n    x = secret()\n    y = x\n\nEnd."
    assert summarise(text, 500) == "Intro line\n    continues the paragraph.\n\nEnd."


def test_diffs_html_comments_images_and_details_tags_are_cut() -> None:
    text = (
        "<!-- template: describe your change -->Fixed it.\n"
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n"
        "![shot](https://example.com/a.png) <img src=x onerror=alert(1)>\n"
        "<details><summary>Logs</summary>kept words</details>\n"
        "<!-- an unclosed comment runs to the end"
    )
    result = summarise(text, 500)
    assert result == "Fixed it.\n\nLogs\nkept words"
    assert "old" not in result and "onerror" not in result


def test_markup_that_is_not_code_stays_as_text() -> None:
    assert summarise("<script>alert(1)</script> done", 100) == "<script>alert(1)</script> done"


def test_a_long_text_is_cut_at_a_word_with_an_ellipsis() -> None:
    assert bound("alpha beta gamma delta", 12) == "alpha beta…"
    assert bound("short", 12) == "short"
    assert summarise(None, 10) == "" and summarise("\x00", 10) == ""
