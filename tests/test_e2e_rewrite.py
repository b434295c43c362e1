"""A rewrite of a flagged sentence in headless Chromium (issue 14): asked for from the
draft page, shown beside the original, applied with one form post, under the pages' strict
CSP (no script of ours is involved), and checked again.

Reuses tests/test_e2e.py's browser, server and sign-in (`live` serves api_org). axe-core
runs on the proposal page as on every main page, without writing docs/screenshots."""

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests import test_e2e
from tests.test_e2e import BLOCKING, Live, notice, submit, text_editor

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = test_e2e.browser
api_org = test_e2e.api_org
live = test_e2e.live

SENTENCE = "Cy can be abrasive when a design review runs long."


def serious_axe_findings(page: Page) -> list[str]:
    results: dict[str, Any] = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]


def test_a_manager_asks_for_a_rewrite_sees_it_beside_the_sentence_and_applies_it(
    live: Live,
) -> None:
    draft = live.org.drafts["cy_feedback"]
    page = live.open_as("bo", f"/drafts/{draft}")
    text = text_editor(page)
    text.fill(text.input_value().rstrip() + f"\n- {SENTENCE} [E1]\n")
    submit(page, page.get_by_role("button", name="Save the text as version 2").click)
    submit(page, page.get_by_role("button", name="Check this version").click)
    flag = page.locator("mark.flag", has_text="abrasive")
    key = (flag.get_attribute("id") or "").removeprefix("at-")
    assert re.fullmatch(r"F\d+", key), key

    submit(page, page.get_by_role("button", name=f"Suggest a rewrite of {key}").click)
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"A rewrite of {key}")
    original = page.get_by_role("region", name="The sentence, version 2")
    expect(original.locator("mark.flag")).to_contain_text("abrasive")
    expect(original).to_contain_text("when a design review runs long.")
    proposal = page.get_by_label(re.compile(r"^The sentence to put in its place"))
    proposed = proposal.input_value()
    assert proposed and "abrasive" not in proposed, proposed
    assert not serious_axe_findings(page)

    submit(page, page.get_by_role("button", name="Apply as a new version").click)
    assert notice(page).startswith(f"Rewrite of {key} applied: saved as version 3.")
    expect(page.locator("p.sentence", has_text=proposed)).to_have_count(1)
    expect(page.locator("p.sentence", has_text=SENTENCE)).to_have_count(0)
    submit(page, page.get_by_role("button", name="Check this version").click)
    expect(page.locator("mark.flag", has_text="abrasive")).to_have_count(0)
