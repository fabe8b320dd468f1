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

from conftest import wait_until
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
        "inq_browseradmin03": ("cooperative_member", ["created", "completed", "needs_review"], now - timedelta(hours=40)),  # past the test bridge's enhanced target (36 h)
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
        assert page.locator(".kycb-funnel-step[data-step=approved] .kycb-funnel-count").inner_text() == str(
            bridge.api("GET", "/api/v1/stats").json()["funnel"]["approved"])
        screenshot(page, "wp-admin-verifications.png")

        page.get_by_role("link", name="Inquiries", exact=True).click()
        for inquiry_id, (_, statuses, _) in seeded.items():
            row = page.locator(f"tr.kycb-row[data-inquiry-id={inquiry_id}]")
            assert row.get_attribute("data-status") == statuses[-1]
            assert f"{inquiry_id}@example.test" in row.inner_text()
            link = row.get_by_role("link", name=inquiry_id)
            assert link.get_attribute("href") == f"https://app.withpersona.com/dashboard/inquiries/{inquiry_id}"
        page.select_option("#kycb-filter-status", "declined")
        page.locator("#kycb-filter").click()
        page.wait_for_load_state()
        statuses = page.locator("tr.kycb-row").evaluate_all("rows => rows.map(r => r.dataset.status)")
        assert statuses and set(statuses) == {"declined"}
        assert page.locator("tr.kycb-row[data-inquiry-id=inq_browseradmin02]").count() == 1

        page.get_by_role("link", name="Review queue").click()
        overdue = page.locator("tr.kycb-row[data-inquiry-id=inq_browseradmin03]")
        assert "kycb-overdue" in (overdue.get_attribute("class") or "")
        assert "overdue" in overdue.inner_text()

        page.goto(wordpress.url + "/wp-admin/users.php")
        assert page.locator("thead th#kycb_kyc").inner_text() == "KYC"
        cells = page.locator("td.column-kycb_kyc .kycb-status")
        assert cells.count() == page.locator("tbody#the-list tr").count() > 1
        screenshot(page, "wp-users-kyc-column.png")
    finally:
        context.close()
    assert not wordpress.plugin_log_problems(log_from)


def person_jobs(bridge, email: str) -> list[dict]:  # type: ignore[no-untyped-def]
    answer = bridge.api("GET", f"/api/v1/contacts/{email}")
    assert answer.status_code == 200, answer.text
    return answer.json()["jobs"]


def click_row_action(page, inquiry_id: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Row actions show on hover, as in WordPress's own lists."""
    row = page.locator(f"tr.kycb-row[data-inquiry-id={inquiry_id}]")
    row.hover()
    row.get_by_role("link", name=name).click()
    page.wait_for_load_state()


def test_admin_review_queue_scales_and_each_action_reaches_the_bridge(wordpress, browser, bridge) -> None:  # type: ignore[no-untyped-def]
    """Three hundred people: the review queue and the inquiry list are paged (screen option for
    rows per page), overdue cases come first; re-sync, retry, resend link, export and erase go
    from a click to their effect at the bridge, each ending in a notice."""
    log_from = wordpress.log_offset()
    now = datetime.now(timezone.utc)
    types = ("investor", "customer", "vendor", "cooperative_member", "contributor")
    walks = (["created", "completed", "approved"], ["created", "completed", "needs_review"], ["created", "pending"],
             ["created", "completed", "declined"], ["created", "completed", "needs_review"])
    for n in range(300):
        walk = walks[n % len(walks)]
        # Review cases waited between 1 and 60 hours: about half of them past the 24-hour target.
        hours = 1 + (n * 7) % 60 if walk[-1] == "needs_review" else 2
        bridge.seed(inquiry_id=f"inq_scale{n:04d}", user_type=types[n % len(types)], email=f"scale{n:04d}@example.test",
                    first_name=f"Person{n:04d}", statuses=walk, started=now - timedelta(hours=hours))
    queue = bridge.api("GET", "/api/v1/inquiries?status=needs_review&per_page=1").json()
    assert queue["total"] >= 120

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = log_in(context, wordpress, "admin")
        page.goto(wordpress.url + "/wp-admin/admin.php?page=kyc-verifications&tab=queue")
        rows = page.locator("tr.kycb-row")
        assert rows.count() == 20  # the default rows per page
        assert page.locator(".tablenav.top .displaying-num").inner_text() == f"{queue['total']} items"
        assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.status)")) == {"needs_review"}
        assert "kycb-overdue" in (rows.first.get_attribute("class") or "")
        waited = [float(text.split(" h")[0].replace(",", "")) for text in
                  page.locator("td.column-waiting").all_inner_texts()]
        assert waited == sorted(waited, reverse=True) and waited[0] > 24
        assert page.evaluate("document.documentElement.scrollHeight") < 2600  # was 3,590 px for 61 rows
        screenshot(page, "wp-admin-review-queue.png")

        # Screen options: 50 rows per page, kept for this user.
        page.get_by_role("button", name="Screen Options").click()
        page.fill("#kycb_inquiries_per_page", "50")
        page.locator("#screen-options-apply").click()
        page.wait_for_load_state()
        assert page.locator("tr.kycb-row").count() == 50
        page.locator(".tablenav.top .next-page").click()
        page.wait_for_load_state()
        assert "paged=2" in page.url and page.locator("tr.kycb-row").count() == min(50, queue["total"] - 50)

        # The inquiry list: filter, search by name, sort by name.
        page.goto(wordpress.url + "/wp-admin/admin.php?page=kyc-verifications&tab=inquiries")
        page.select_option("#kycb-filter-status", "approved")
        page.select_option("#kycb-filter-type", "investor")
        page.locator("#kycb-filter").click()
        page.wait_for_load_state()
        approved = page.locator("tr.kycb-row")
        assert approved.count() > 0 and set(approved.evaluate_all("r => r.map(x => x.dataset.status)")) == {"approved"}
        page.goto(wordpress.url + "/wp-admin/admin.php?page=kyc-verifications&tab=inquiries&s=person0042")
        assert page.locator("tr.kycb-row").count() == 1
        assert "scale0042@example.test" in page.locator("tr.kycb-row").inner_text()
        page.goto(wordpress.url + "/wp-admin/admin.php?page=kyc-verifications&tab=inquiries&s=person00")
        page.locator("th#name a").click()
        page.wait_for_load_state()
        names = page.locator("td.column-name .kycb-person").all_inner_texts()
        assert names == sorted(names) and len(names) == 50
        screenshot(page, "wp-admin-inquiries.png")

        # Resend a verification link: the bridge queues the kyc.link_requested event for n8n.
        target, target_email = "inq_scale0000", "scale0000@example.test"
        page.goto(wordpress.url + "/wp-admin/admin.php?page=kyc-verifications&tab=inquiries&s=" + target_email)
        click_row_action(page, target, "Resend link")
        assert "A new verification link for scale0000@example.test is on its way" in page.locator(".kycb-notice").inner_text()
        assert "kyc.link_requested" in [j["event_type"] for j in person_jobs(bridge, target_email)]

        # Re-sync to the CRM: one more crm.sync job for the inquiry, run by the bridge's worker.
        def syncs():  # type: ignore[no-untyped-def]
            return [j for j in person_jobs(bridge, target_email) if j["kind"] == "crm.sync"]

        before = len(syncs())
        click_row_action(page, target, "Re-sync to CRM")
        assert "CRM sync of inq_scale0000" in page.locator(".kycb-notice").inner_text()
        wait_until(lambda: len(syncs()) == before + 1 and syncs()[0]["state"] in ("done", "skipped"), "the re-sync to run", seconds=20.0)

        # A sync that failed for good: the row offers a retry, which the worker then runs.
        import sqlite3

        with sqlite3.connect(bridge.db_path) as db:
            db.execute("UPDATE kyc_jobs SET state = 'dead', attempts = max_attempts, "
                       "last_error = 'FluentCRM answered HTTP 500' WHERE inquiry_id = ? AND kind = 'crm.sync'", (target,))
        page.reload()
        assert page.locator(f"tr.kycb-row[data-inquiry-id={target}] .kycb-sync--dead").count() == 1
        click_row_action(page, target, "Retry failed jobs")
        assert "queued again" in page.locator(".kycb-notice").inner_text()
        wait_until(lambda: all(j["state"] != "dead" for j in syncs()), "the retried jobs to leave the dead letters", seconds=20.0)

        # The person's view: history, consents, jobs; export and erase from there.
        row = page.locator(f"tr.kycb-row[data-inquiry-id={target}]")
        row.hover()
        row.get_by_role("link", name="Details").click()
        page.wait_for_load_state()
        view = page.locator(".kycb-person-view")
        assert view.get_attribute("data-email") == target_email
        assert page.locator(".kycb-history code", has_text="inquiry.approved").count() == 1
        assert page.locator(".kycb-jobs tr.kycb-job").count() >= 3
        screenshot(page, "wp-admin-person.png")

        page.get_by_role("button", name="Export personal data").click()
        page.wait_for_load_state()
        link = page.locator(".kycb-notice a.kycb-export-link")
        exported = page.request.get(link.get_attribute("href"))
        assert exported.status == 200 and exported.body()[:2] == b"PK"  # a zip file
        screenshot(page, "wp-admin-person-exported.png")

        page.get_by_label("Yes, erase this person").check()
        page.get_by_role("button", name="Erase personal data").click()
        page.wait_for_load_state()
        assert "is erased" in page.locator(".kycb-notice").inner_text()
        assert bridge.api("GET", f"/api/v1/contacts/{target_email}").status_code == 404
        screenshot(page, "wp-admin-person-erased.png")

        # Retry all, from the overview.
        page.goto(wordpress.url + "/wp-admin/admin.php?page=kyc-verifications")
        page.get_by_role("button", name="Retry all failed jobs").click()
        page.wait_for_load_state()
        assert "queued again" in page.locator(".kycb-notice").inner_text()
        screenshot(page, "wp-admin-overview.png")

        # The settings: either token, and the shop section (products, page, hold, registration roles).
        page.goto(wordpress.url + "/wp-admin/options-general.php?page=kyc-bridge")
        assert page.get_by_role("heading", name="Shop: purchase, then verification").is_visible()
        page.fill("#kycb_shop_products", "501 = investor\nnot a line")
        page.locator("#submit").click()
        page.wait_for_load_state()
        assert "ignored: not a line" in page.locator("#setting-error-kycb_shop_products").inner_text()
        assert page.input_value("#kycb_shop_products") == "501 = investor"
        screenshot(page, "wp-settings.png")
    finally:
        context.close()
    assert not wordpress.plugin_log_problems(log_from)


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two computed `rgb(…)`/`rgba(…)` colours."""
    import re

    def luminance(css: str) -> float:
        r, g, b = (int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
        return sum(w * (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
                   for w, c in zip((0.2126, 0.7152, 0.0722), (r, g, b)))

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_polish_gate_layout_dialog_buttons_and_status_label(wordpress, browser, bridge) -> None:  # type: ignore[no-untyped-def]
    """Issue 17, item 7: unlocked gate content sits in the theme's layout like the locked state;
    the dialog's two buttons are the theme's buttons, the disabled one with AA contrast; a failed
    start keeps the bold status label."""
    log_from = wordpress.log_offset()
    carol = wordpress.info["users"]["carol"]
    bridge.seed(inquiry_id="inq_browserpolish01", user_type="investor", email=carol["email"],
                statuses=["created", "completed", "approved"])
    wordpress.set_options()  # drops cached answers
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = log_in(context, wordpress, "carol")
        page.goto(wordpress.info["pages"]["kyc-members"])
        gate = page.locator(".kycb-gate.kycb-gate--open")
        assert gate.locator(".secret").inner_text() == "Investor documents"
        title = page.locator("h1").first.bounding_box()
        box = gate.bounding_box()
        assert title and box and abs(box["x"] - title["x"]) < 2, (box, title)  # not at the far left edge
        screenshot(page, "wp-gate-open.png")
        context.close()

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = log_in(context, wordpress, "bob")
        page.goto(wordpress.info["pages"]["kyc-verify"])
        label = page.locator(".kycb-status-label")
        before = label.inner_text()
        assert before
        page.get_by_role("button", name="Verify identity").click()
        dialog = page.get_by_role("dialog")
        submit = dialog.get_by_role("button", name="Continue to verification")
        cancel = dialog.get_by_role("button", name="Cancel")
        for button in (submit, cancel):
            assert "wp-element-button" in (button.get_attribute("class") or "")
        style = "b => { const s = getComputedStyle(b); return [s.color, s.backgroundColor, s.fontSize, s.paddingTop, s.opacity, s.fontFamily]; }"
        color, background, size, padding, opacity, family = submit.evaluate(style)
        assert disabled(submit) and opacity == "1" and contrast(color, background) >= 4.5, (color, background)
        cancel_style = cancel.evaluate(style)
        assert contrast(cancel_style[0], "rgb(255, 255, 255)") >= 4.5
        assert (cancel_style[2], cancel_style[3], cancel_style[5]) == (size, padding, family)  # the same button
        screenshot(page, "wp-consent-buttons.png")

        # A start that fails (the bridge says no): the error shows, the status label stays.
        page.route("**/kyc-bridge/v1/sessions", lambda route: route.fulfill(
            status=502, content_type="application/json", body='{"message": "The bridge is unreachable."}'))
        for name in BOXES:
            dialog.locator(f"input[name={name}]").check()
        enabled = submit.evaluate(style)
        assert contrast(enabled[0], enabled[1]) >= 4.5
        submit.click()
        dialog.locator(".kycb-error").wait_for(state="visible")
        assert dialog.locator(".kycb-error").inner_text() == "The bridge is unreachable."
        assert label.inner_text() == before
        # Persona's client cannot load: the message says so, the label stays.
        page.unroute("**/kyc-bridge/v1/sessions")
        page.route("**/persona-standin.js", lambda route: route.abort())
        submit.click()
        page.wait_for_function("document.querySelector('.kycb-status-message').textContent.includes('could not be loaded')")
        assert label.inner_text() == before
        screenshot(page, "wp-start-failed-label-kept.png")
    finally:
        context.close()
    assert not wordpress.plugin_log_problems(log_from)


def test_self_service_status_and_withdrawal_on_the_page_and_the_profile(wordpress, browser, bridge) -> None:  # type: ignore[no-untyped-def]
    """Issue 17, item 4: a person sees their KYC state ([kyc_status], profile) and withdraws consent;
    the bridge records it and queues the CRM sync that removes the KYC tags."""
    log_from = wordpress.log_offset()
    carol = wordpress.info["users"]["carol"]
    bridge.seed(inquiry_id="inq_browserself01", user_type="customer", email=carol["email"],
                statuses=["created", "completed", "approved"])
    wordpress.set_options()  # drops cached answers
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = log_in(context, wordpress, "carol")
        page.goto(wordpress.url + "/wp-admin/profile.php")
        section = page.locator(".kycb-self")
        assert section.locator(".kycb-status").get_attribute("data-status") == "approved"
        assert section.locator(".kycb-status-label").inner_text() == "Verified"
        screenshot(page, "wp-profile-kyc.png")

        page.goto(wordpress.info["pages"]["kyc-my-status"])
        assert page.locator(".kycb-self .kycb-status-label").inner_text() == "Verified"
        button = page.get_by_role("button", name="Withdraw consent")
        button.click()  # without the tick: the browser's required check keeps the form here
        assert not bridge.api("GET", f"/api/v1/contacts/{carol['email']}/kyc").json()["consent_withdrawn"]
        page.get_by_label("Yes, I withdraw my consent.").check()
        button.click()
        page.wait_for_load_state()
        assert page.locator(".kycb-self-notice").inner_text() == "Your consent is withdrawn."
        assert "You have withdrawn your consent" in page.locator(".kycb-withdrawn").inner_text()
        assert page.get_by_role("button", name="Withdraw consent").count() == 0
        screenshot(page, "wp-self-service-withdrawn.png")
        assert bridge.api("GET", f"/api/v1/contacts/{carol['email']}/kyc").json()["consent_withdrawn"] is True
        jobs = bridge.api("GET", f"/api/v1/contacts/{carol['email']}").json()["jobs"]
        assert any(j["kind"] == "crm.sync" for j in jobs)

        # The profile says the same, and offers no second withdrawal.
        page.goto(wordpress.url + "/wp-admin/profile.php")
        assert page.locator(".kycb-self .kycb-withdrawn").count() == 1
        assert page.locator("#kycb-withdraw-form").count() == 1  # outside the profile form
        assert page.evaluate("!document.querySelector('#your-profile #kycb-withdraw-form')")
        context.close()

        # From the profile page: the controls belong to the form outside the profile form.
        bob = wordpress.info["users"]["bob"]
        bridge.seed(inquiry_id="inq_browserself02", user_type="vendor", email=bob["email"],
                    statuses=["created", "completed", "needs_review"])
        wordpress.set_options()
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = log_in(context, wordpress, "bob")
        page.goto(wordpress.url + "/wp-admin/profile.php")
        assert page.locator(".kycb-self .kycb-status-label").inner_text() == "Checking"
        page.get_by_label("Yes, I withdraw my consent.").check()
        page.get_by_role("button", name="Withdraw consent").click()
        page.wait_for_load_state()
        assert "profile.php" in page.url
        assert page.locator(".kycb-notice p").inner_text() == "Your consent is withdrawn."
        assert bridge.api("GET", f"/api/v1/contacts/{bob['email']}/kyc").json()["consent_withdrawn"] is True
        screenshot(page, "wp-profile-withdrawn.png")
    finally:
        context.close()
    assert not wordpress.plugin_log_problems(log_from)
