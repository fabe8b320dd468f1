"""Issue 3 in a real browser: the bridge's own consent page for a signed link.

Debian's Chromium (driven by Playwright for Python, never a downloaded browser) opens a link from
`POST /api/v1/links` of a real `kyc-bridge serve`, cannot continue until all three boxes are
ticked, submits, and lands on the test double of Persona's hosted flow with the right template
id and reference id. The consent page's screenshot is kept in artifacts/.
"""

from __future__ import annotations

from wp.services import BOXES, disabled, screenshot

pytest_plugins = ["wp.fixtures"]


def test_signed_link_needs_all_three_boxes_then_reaches_the_hosted_flow(bridge, browser, persona_standin) -> None:  # type: ignore[no-untyped-def]
    email = "browser-link@example.test"
    link = bridge.api("POST", "/api/v1/links",
                      json={"email": email, "user_type": "cooperative_member", "first_name": "Dana"})
    assert link.status_code == 201, link.text
    consent = bridge.api("GET", "/api/v1/consent-text").json()

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(link.json()["url"])
        assert "Hello Dana" in page.inner_text("main, body")
        submit = page.locator("#consent-submit")
        assert disabled(submit), "the submit button starts disabled"

        # Each box is reachable by its label text (accessible name), and the button stays disabled
        # until the last one is ticked; unticking one disables it again.
        for box in BOXES[:-1]:
            page.get_by_label(consent["boxes"][box]).check()
            assert disabled(submit), f"enabled with only some boxes ticked (after {box})"
        page.get_by_label(consent["boxes"][BOXES[-1]]).check()
        assert not disabled(submit)
        page.uncheck("#persona_retention")
        assert disabled(submit)
        # A forced click on the disabled button goes nowhere.
        visits_before, consent_url = len(persona_standin.visits), page.url
        submit.click(force=True)
        page.wait_for_timeout(300)
        assert page.url == consent_url and len(persona_standin.visits) == visits_before
        page.check("#persona_retention")
        screenshot(page, "bridge-consent-page.png")

        submit.click()
        page.wait_for_url(persona_standin.https_url + "/verify?**")
        assert len(persona_standin.visits) == visits_before + 1
        visit = persona_standin.visits[-1]
        template = bridge.template_id("cooperative_member")
        assert visit["inquiry-template-id"] == template
        assert page.inner_text("#template-id") == template
        reference = visit["reference-id"]
        assert reference.startswith("kyc_") and "example" not in reference, "the reference id is opaque"
        assert page.inner_text("#reference-id") == reference
        assert visit["redirect-uri"] == bridge.url + "/verify/done"
        # The bridge maps that reference id back to this person (and recorded the consent).
        export = bridge.api("GET", f"/api/v1/contacts/{email}/export").json()
        assert export["reference_id"] == reference
        assert [c["source"] for c in export["consents"]] == ["link"]
        assert export["consents"][0]["text_version"] == consent["version"]
    finally:
        context.close()
