"""The WordPress plugin in a real browser: Debian's Chromium (Playwright for Python) against the
real test WordPress (tests/wp/site.py) and a real bridge.

- A member logs in, opens the page with [kyc_verify type="investor"], opens the consent modal
  (dialog, Esc, focus trap), cannot submit until all three boxes are ticked, and reaches Persona's
  embedded flow (the local stand-in of Persona's JS client) with the right template and reference
  id; after "completion" the page says we are checking, and later states come from the bridge.
- The hosted flow: the block page redirects to the hosted-flow stand-in with the right ids.
- An admin opens "KYC Verifications" and finds the rows and chart of inquiries seeded through the
  bridge's webhook endpoint.
Screenshots go to artifacts/.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta, timezone

from wp.services import BOXES, disabled, screenshot

pytest_plugins = ["wp.fixtures"]


def log_in(context, site, login: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    # After its scripts have run: once in CI the form went out with an empty password field.
    page.goto(site.url + "/wp-login.php", wait_until="networkidle")
    password = site.info["users"][login]["pass"]
    page.fill("#user_login", login)
    page.fill("#user_pass", password)
    assert page.input_value("#user_pass") == password
    page.click("#wp-submit")
    page.wait_for_load_state()
    assert "wp-login.php" not in page.url, page.inner_text("body")[:500]
    return page


def only_local_requests(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Hosts the page asked for (must all be loopback: no CDN, no Persona)."""
    hosts: list[str] = []
    page.on("request", lambda request: hosts.append(urllib.parse.urlsplit(request.url).hostname or ""))
    return hosts


def test_member_consents_and_reaches_embedded_persona(wordpress, browser, bridge, persona_standin) -> None:  # type: ignore[no-untyped-def]
    log_from = wordpress.log_offset()
    user = wordpress.info["users"]["alice"]
    consent = bridge.api("GET", "/api/v1/consent-text").json()
    context = browser.new_context()
    try:
        page = log_in(context, wordpress, "alice")
        hosts = only_local_requests(page)
        page.goto(wordpress.info["pages"]["kyc-verify"])
        widget = page.locator(".kycb-verify")
        assert widget.get_attribute("data-status") == "not_started"
        assert "You have not verified your identity yet." in widget.inner_text()

        opener = page.get_by_role("button", name="Verify identity")
        opener.click()
        dialog = page.get_by_role("dialog", name="Your consent to identity verification")
        assert dialog.is_visible()
        assert page.evaluate("document.activeElement.name") == BOXES[0], "focus moves into the dialog"
        submit = dialog.get_by_role("button", name="Continue to verification")
        assert disabled(submit)

        # Esc closes and gives focus back to the button; the dialog keeps focus inside while open.
        page.keyboard.press("Escape")
        assert not dialog.is_visible()
        assert page.evaluate("document.activeElement.classList.contains('kycb-open')")
        opener.click()
        for _ in range(8):
            page.keyboard.press("Tab")
            assert page.evaluate("!!document.activeElement.closest('[role=dialog]')"), "focus left the dialog"

        for box in BOXES[:-1]:
            dialog.get_by_label(consent["boxes"][box]).check()
            assert disabled(submit), f"submit enabled after only {box}"
        screenshot(page, "wp-consent-modal.png")
        submit.click(force=True)  # goes nowhere with a box unticked
        page.wait_for_timeout(300)
        assert dialog.is_visible() and page.locator("#persona-standin").count() == 0
        dialog.get_by_label(consent["boxes"][BOXES[-1]]).check()
        assert not disabled(submit)

        fetches_before = len(persona_standin.script_fetches)
        submit.click()
        standin = page.locator("#persona-standin")
        standin.wait_for()
        assert len(persona_standin.script_fetches) == fetches_before + 1, "the Persona client came from the stand-in"
        export = bridge.api("GET", f"/api/v1/contacts/{user['email']}/export").json()
        reference = export["reference_id"]
        assert page.inner_text("#standin-template-id") == bridge.template_id("investor")
        assert page.inner_text("#standin-reference-id") == reference
        assert page.inner_text("#standin-environment-id") == "env_wptest123"
        recorded = page.evaluate("window.__personaStandIn")
        assert recorded["templateId"] == bridge.template_id("investor") and recorded["referenceId"] == reference
        assert recorded["fields"].get("emailAddress") == user["email"]  # camelCase for the JS client
        assert export["wp_user_id"] == user["id"]
        screenshot(page, "wp-persona-step.png")

        # Persona says complete: the page says we are checking ...
        page.click("#standin-complete")
        assert "We are checking your documents" in widget.inner_text()
        # ... and what it shows next comes from the bridge, once the webhooks have arrived.
        start = datetime.now(timezone.utc) - timedelta(minutes=5)
        for i, status in enumerate(("created", "pending", "completed", "needs_review")):
            bridge.send_event(inquiry_id="inq_browseralice1", status=status, user_type="investor",
                              reference_id=reference, created_at=start + timedelta(seconds=i))
        page.wait_for_function("document.querySelector('.kycb-verify').dataset.status === 'needs_review'",
                               timeout=20_000)
        page.reload()
        assert page.locator(".kycb-verify").get_attribute("data-status") == "needs_review"
        assert page.get_by_role("button", name="Verify identity").count() == 0

        # Approved at the bridge: the investor gate opens (after the short cache).
        page.goto(wordpress.info["pages"]["kyc-members"])
        assert page.locator(".secret").count() == 0
        bridge.send_event(inquiry_id="inq_browseralice1", status="approved", user_type="investor",
                          reference_id=reference, created_at=start + timedelta(seconds=10))
        wordpress.set_options()  # drops the plugin's cached answers
        page.reload()
        assert page.inner_text(".secret") == "Investor documents"
        assert set(hosts) <= {"127.0.0.1"}, f"the page reached beyond this machine: {sorted(set(hosts))}"
    finally:
        context.close()
    assert not wordpress.plugin_log_problems(log_from)


def test_block_with_hosted_flow_redirects_to_persona(wordpress, browser, bridge, persona_standin) -> None:  # type: ignore[no-untyped-def]
    log_from = wordpress.log_offset()
    wordpress.set_options(flow="hosted")
    context = browser.new_context()
    try:
        page = log_in(context, wordpress, "bob")
        page.goto(wordpress.info["pages"]["kyc-verify-block"])
        page.get_by_role("button", name="Verify identity").click()
        dialog = page.get_by_role("dialog")
        submit = dialog.get_by_role("button", name="Continue to verification")
        for box in BOXES:
            assert disabled(submit)
            dialog.locator(f"input[name={box}]").check()
        visits_before = len(persona_standin.visits)
        submit.click()
        page.wait_for_url(persona_standin.https_url + "/verify?**")
        assert len(persona_standin.visits) == visits_before + 1
        visit = persona_standin.visits[-1]
        reference = bridge.api("GET", "/api/v1/contacts/bob@example.test/export").json()["reference_id"]
        assert visit["inquiry-template-id"] == bridge.template_id("customer")
        assert visit["reference-id"] == reference
        assert visit["environment-id"] == "env_wptest123"
        assert page.inner_text("#reference-id") == reference
    finally:
        context.close()
        wordpress.set_options(flow="embedded")
    assert not wordpress.plugin_log_problems(log_from)


def test_admin_page_shows_seeded_inquiries_with_chart(wordpress, browser, bridge) -> None:  # type: ignore[no-untyped-def]
    log_from = wordpress.log_offset()
    now = datetime.now(timezone.utc)
    seeded = {
        "inq_browseradmin01": ("investor", ["created", "completed", "approved"], now - timedelta(hours=3)),
        "inq_browseradmin02": ("vendor", ["created", "completed", "declined"], now - timedelta(hours=2)),
        "inq_browseradmin03": ("cooperative_member", ["created", "completed", "needs_review"], now - timedelta(hours=30)),
        "inq_browseradmin04": ("customer", ["created", "pending"], now - timedelta(hours=1)),
    }
    for inquiry_id, (user_type, statuses, started) in seeded.items():
        bridge.seed(inquiry_id=inquiry_id, user_type=user_type, email=f"{inquiry_id}@example.test",
                    statuses=statuses, started=started)
    counts = bridge.api("GET", "/api/v1/stats").json()["counts"]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = log_in(context, wordpress, "admin")
        page.goto(wordpress.url + "/wp-admin/admin.php?page=kyc-verifications")
        assert page.get_by_role("heading", name="KYC Verifications").is_visible()
        chart = page.locator("svg.kycb-chart")
        assert chart.is_visible()
        for status, count in counts.items():
            bar = chart.locator(f"g.kycb-bar[data-status={status}]")
            assert bar.get_attribute("data-count") == str(count)
            assert int(bar.locator("rect").get_attribute("width")) > 0
        for inquiry_id, (_, statuses, _) in seeded.items():
            row = page.locator(f"tr.kycb-row[data-inquiry-id={inquiry_id}]")
            assert row.get_attribute("data-status") == statuses[-1]
            assert f"{inquiry_id}@example.test" in row.inner_text()
            link = row.get_by_role("link", name=inquiry_id)
            assert link.get_attribute("href") == f"https://app.withpersona.com/dashboard/inquiries/{inquiry_id}"
        overdue = page.locator("tr.kycb-queue-row[data-inquiry-id=inq_browseradmin03]")
        assert "kycb-overdue" in (overdue.get_attribute("class") or "")
        assert "overdue" in overdue.inner_text()
        assert page.locator(".kycb-funnel-step[data-step=approved] .kycb-funnel-count").inner_text() == str(
            counts.get("approved", 0))
        screenshot(page, "wp-admin-verifications.png")

        page.select_option("#kycb-filter-status", "declined")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_load_state()
        statuses = page.locator("tr.kycb-row").evaluate_all("rows => rows.map(r => r.dataset.status)")
        assert statuses and set(statuses) == {"declined"}
        assert page.locator("tr.kycb-row[data-inquiry-id=inq_browseradmin02]").count() == 1

        page.goto(wordpress.url + "/wp-admin/users.php")
        assert page.locator("thead th#kycb_kyc").inner_text() == "KYC"
        cells = page.locator("td.column-kycb_kyc .kycb-status")
        assert cells.count() == page.locator("tbody#the-list tr").count() > 1
        screenshot(page, "wp-users-kyc-column.png")
    finally:
        context.close()
    assert not wordpress.plugin_log_problems(log_from)
