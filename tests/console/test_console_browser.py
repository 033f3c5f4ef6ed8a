"""The web console in headless Chromium against a real server: sign-in, every main page at
desktop and phone width with an axe-core check, a hostile name shown as text, CSRF refusal,
security headers, keyboard navigation, the worklist download, and a rule change from a mistake
in the editor through a simulation, two people's approval and a decision pinned as a test."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.request

from conftest import AXE

from api.run_views import WORKLIST_COLUMNS

HOSTILE = "<script>alert(1)</script>"
PHONE = {"width": 390, "height": 844}


def sign_in(page, server, role: str, next_path: str = "") -> None:
    target = server["url"] + "/console/sign-in" + (f"?next={next_path}" if next_path else "")
    page.goto(target)
    page.get_by_label("API key").fill(server["keys"][role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def axe_violations(page) -> list[str]:
    """Serious and critical accessibility violations axe-core finds on the page."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def overflows(page) -> bool:
    """Whether the page is wider than the window (tables scroll inside their own box)."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")


def main_pages(server) -> dict[str, str]:
    return {
        "home": "/console/",
        "portfolio": "/console/portfolio",
        "runs": "/console/runs",
        "run": f"/console/runs/{server['run_id']}",
        "decisions": "/console/decisions",
        "customers": "/console/customers",
        "customer": "/console/customers/EVIL1",
    }


def test_pages_at_desktop_and_phone_width_pass_axe_and_show_hostile_text_as_text(
    browser, server, artifacts
):
    for width, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        # axe is injected as a script tag: this context lets it past the page's CSP, which
        # test_a_form_without_its_csrf_token… checks with the policy in force
        context = browser.new_context(viewport=viewport, bypass_csp=True)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
        sign_in(page, server, "admin")
        decision = None
        for name, path in main_pages(server).items():
            response = page.goto(server["url"] + path)
            assert response.status == 200, (path, response.status)
            page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
            assert not axe_violations(page), (path, axe_violations(page))
            assert not overflows(page), (path, width)
            if name == "decisions":
                decision = page.locator("tbody a").first.get_attribute("href")
        page.goto(server["url"] + decision)
        assert page.get_by_role("heading", name="Rules that fired").is_visible()
        assert not axe_violations(page)
        assert not overflows(page)
        page.goto(server["url"] + "/console/customers/EVIL1")
        assert page.get_by_role("heading", level=1).inner_text().startswith(HOSTILE)
        assert "<img src=x onerror=alert(2)>" in page.inner_text("main")
        assert page.locator("main script, main img").count() == 0
        assert not dialogs, dialogs
        context.close()


def test_sign_in_redirects_back_and_sign_out_ends_the_session(page, server):
    page.goto(server["url"] + "/console/decisions")
    assert page.url.endswith("/console/sign-in?next=/console/decisions")
    page.get_by_label("API key").fill("credo_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "That key is not valid, or it was revoked."
    sign_in(page, server, "auditor", "/console/decisions")
    assert page.url == server["url"] + "/console/decisions"
    cookie = next(c for c in page.context.cookies() if c["name"] == "credo_console")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert server["keys"]["auditor"] not in cookie["value"]
    page.get_by_role("button", name="Sign out").click()
    assert "/console/sign-in" in page.url
    page.goto(server["url"] + "/console/decisions")
    assert "/console/sign-in" in page.url
    # An approver's navigation shows what the role allows, the home page what others add.
    sign_in(page, server, "approver")
    nav = page.get_by_role("navigation", name="Sections").inner_text()
    assert "Decisions" not in nav
    assert "A key of role analyst or auditor adds Decisions" in page.inner_text("main")
    page.goto(server["url"] + "/console/decisions")
    assert page.get_by_role("heading", level=1).inner_text() == "Not for your role"


def test_a_form_without_its_csrf_token_is_refused_and_headers_are_set(page, server):
    sign_in(page, server, "auditor")
    response = page.goto(server["url"] + "/console/portfolio")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    page.evaluate("document.querySelector('form.who input[name=csrf_token]').value = 'forged'")
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("alert").inner_text().startswith("This form has expired")
    page.goto(server["url"] + "/console/portfolio")
    assert "/console/portfolio" in page.url  # still signed in: the forged sign-out did nothing
    # An inline script (what an injected tag would be) is blocked by the policy.
    blocked = page.evaluate(
        """() => new Promise(done => {
            document.addEventListener('securitypolicyviolation', () => done(true));
            const s = document.createElement('script'); s.textContent = 'window.ran = 1';
            document.body.appendChild(s); setTimeout(() => done(false), 500);
        })"""
    )
    assert blocked and page.evaluate("window.ran === undefined")


def test_keyboard_reaches_the_content_first_and_every_field_has_a_label(page, server):
    sign_in(page, server, "auditor")
    page.goto(server["url"] + "/console/decisions")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-customer"
    page.keyboard.type("EVIL1")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/decisions?customer=EVIL1*")
    unlabeled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"
    )
    assert unlabeled == []


def test_the_worklist_downloads_as_csv(page, server):
    sign_in(page, server, "auditor")
    page.goto(server["url"] + f"/console/runs/{server['run_id']}")
    page.get_by_label("Action").select_option("reminder")
    page.get_by_role("button", name="Filter").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = download.value.path().read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["action_id", "run_id", "customer_id", "type"]
    assert len(rows) > 1 and {r[3] for r in rows[1:]} == {"reminder"}


# A rule that changes what some customers of the browser tests' data get (EVIL1 among them:
# 61 days late, never reminded), and that the reminder rule set's own tests accept.
NEW_RULE = """[[rule]]
id = "RT-138"
name = "Two months late and never reminded: a friendly letter"
priority = 41
when = "days_past_due >= 60"
then = { tone = "friendly", channel = "letter", cadence_days = 7 }
reason = "Oldest undisputed invoice {days_past_due} days past due: the first reminder by letter"

"""


def desktop_and_phone(page, artifacts, name: str) -> None:
    """Screenshots at 1280 px and at phone width, each with no serious axe violation and
    nothing wider than the window."""
    for width, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
        assert not axe_violations(page), (name, width, axe_violations(page))
        assert not overflows(page), (name, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def signed_in_context(browser, server, role: str):
    # bypass_csp lets axe be injected (the policy itself is checked by the CSRF test above)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, bypass_csp=True, accept_downloads=True
    )
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, server, role)
    return context, page, dialogs


def wait_for_job(page, timeout: float = 90) -> None:
    """Follow the job page's "Check again" link until the job has ended."""
    deadline = time.monotonic() + timeout
    while page.get_by_role("link", name="Check again").count():
        assert time.monotonic() < deadline, page.inner_text("main")
        time.sleep(0.5)
        page.get_by_role("link", name="Check again").click()
        page.wait_for_load_state()


def test_a_rule_change_from_mistake_to_activation_by_two_people(browser, server, artifacts):
    """alice drafts a change with a typo, sees the problem beside the rule, fixes it, runs the
    tests, simulates it (the matrix, the money, the changed customers) and proposes; bob
    approves and activates; alice makes a decision a test case of a new draft and downloads
    the worklist; a decision's trace links its version."""
    context, page, dialogs = signed_in_context(browser, server, "analyst")
    page.goto(server["url"] + "/console/rulesets/reminder")
    desktop_and_phone(page, artifacts, "ruleset")
    page.get_by_role("link", name="Edit as a new draft").click()
    source = page.get_by_label("TOML of the rule set")
    original = source.input_value()
    changed = original.replace('[[rule]]\nid = "RT-140"', NEW_RULE + '[[rule]]\nid = "RT-140"', 1)
    assert changed != original
    source.fill(changed.replace("days_past_due", "days_pass_due", 1))
    page.get_by_label("Why this version (required)").fill("a letter when two months late")
    page.get_by_role("button", name="Store as a draft", exact=True).click()
    problem = page.locator("tr.has-problem").first
    assert "unknown fact 'days_pass_due'" in problem.inner_text()
    assert "days_past_due" in problem.inner_text()  # the suggestion
    page.screenshot(path=str(artifacts / "draft-problem.png"), full_page=True)
    desktop_and_phone(page, artifacts, "draft-editor")
    source = page.get_by_label("TOML of the rule set")
    source.fill(source.input_value().replace("days_pass_due", "days_past_due"))
    page.get_by_role("button", name="Store as a draft", exact=True).click()
    page.wait_for_url("**/console/rulesets/reminder?version=2")
    page.get_by_role("button", name="Run the tests").click()
    assert ", 0 failed" in page.get_by_role("heading", name="Test results").inner_text()

    # simulate the draft on the customers as of the data's date: a job, then its result
    page.get_by_label("As of").fill(server["as_of"])
    page.get_by_role("button", name="Simulate").click()
    page.wait_for_url("**/console/jobs/*")
    wait_for_job(page)
    assert "change outcome" in page.get_by_role("status").inner_text()
    matrix = page.locator("table.matrix", has=page.locator("caption", has_text="channel:"))
    email_row = matrix.locator("tr", has=page.locator("th", has_text="email"))
    assert email_row.locator("td.changed").count() == 1  # email → letter
    assert page.locator("svg .flow").count() >= 4  # a chart per field
    caption = page.locator("caption", has_text="money behind each cell of channel")
    money = page.locator("table", has=caption).locator("tr.changed", has_text="letter")
    assert money.count() >= 1 and "EUR" in money.first.inner_text()
    while not page.locator("tr", has_text="EVIL1").count():  # customers by id, pages of 25
        page.get_by_role("link", name="Next page").click()
    evil = page.locator("tr", has_text="EVIL1")
    assert HOSTILE in evil.inner_text()  # the name shown as text
    assert "two months late" not in evil.inner_text()  # reasons, not rule names
    assert "days past due: the first reminder by letter" in evil.inner_text()
    assert page.locator("main script, main img").count() == 0
    desktop_and_phone(page, artifacts, "simulation")
    page.goto(server["url"] + "/console/rulesets/reminder?version=2")
    page.get_by_role("button", name="Propose").click()
    assert page.get_by_role("status").inner_text() == "Version 2 proposed."
    assert page.get_by_role("button", name="Approve").count() == 0
    assert not dialogs, dialogs
    context.close()

    context, page, dialogs = signed_in_context(browser, server, "approver")
    page.goto(server["url"] + "/console/rulesets")
    page.get_by_role("link", name="v2 proposed").click()
    assert page.get_by_role("button", name="Simulate").count() == 0  # an analyst's move
    page.get_by_role("button", name="Approve").click()
    assert page.get_by_role("status").inner_text() == "Version 2 approved."
    page.get_by_role("button", name="Activate").click()
    assert page.get_by_role("status").inner_text() == "Version 2 activated."
    page.screenshot(path=str(artifacts / "ruleset-activated.png"), full_page=True)
    context.close()

    # alice pins a decision the new version decides alike as a [[test]] of a new draft
    context, page, dialogs = signed_in_context(browser, server, "analyst")
    page.goto(server["url"] + "/console/decisions?kind=reminder&outcome=tone%3Dnone")
    page.locator("tbody a").first.click()
    desktop_and_phone(page, artifacts, "decision")
    page.get_by_label("Name of the case").fill("pinned in the browser test")
    page.get_by_role("button", name="with this decision as a [[test]]").click()
    page.wait_for_url("**/console/rulesets/reminder?version=3*")
    assert page.get_by_role("status").inner_text() == "Version 3 drafted."
    cases = page.locator("table", has=page.locator("th", has_text="Expect"))
    assert cases.locator("tr", has_text="pinned in the browser test").count() == 1
    page.screenshot(path=str(artifacts / "test-case-draft.png"), full_page=True)
    # and downloads the run's worklist
    page.goto(server["url"] + f"/console/runs/{server['run_id']}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = download.value.path().read_bytes().decode("utf-8")
    assert text.split("\r\n", 1)[0] == ",".join(WORKLIST_COLUMNS)  # RFC 4180 line ends
    assert not dialogs, dialogs
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server, "admin")
    page.goto(server["url"] + "/console/decisions?kind=reminder")
    page.locator("tbody a").first.click()
    assert page.get_by_role("heading", name="Rules that fired").is_visible()
    page.get_by_role("link", name="reminder version 1").click()
    assert "reminder version 1, retired" in page.get_by_role("heading", level=1).inner_text()
    context.close()


def audit_nav(page):
    return page.get_by_role("navigation", name="Audit pages")


def test_an_auditor_replays_a_decision_verifies_the_chain_and_exports(browser, server, artifacts):
    """carol (auditor) opens a decision's trace, asks why not, replays it (equal) and reads its
    version's evidence; verifies the chain (OK, the head hash the API's anchor gives), reads the
    operator log and downloads a customer's decisions as CSV; names like scripts stay text."""
    from storage.decisions.shape import csv_header

    context, page, dialogs = signed_in_context(browser, server, "auditor")
    page.goto(server["url"] + "/console/decisions?kind=reminder")
    page.locator("tbody a").first.click()
    assert page.get_by_role("heading", name="In plain words").is_visible()
    page.get_by_role("link", name="Why not?").click()
    assert "did not apply" in page.locator("main table").inner_text()
    desktop_and_phone(page, artifacts, "why-not")
    page.go_back()
    page.get_by_role("button", name="Replay").click()
    assert page.get_by_role("status").inner_text().startswith("Equal: the outcome, reasons")
    desktop_and_phone(page, artifacts, "decision-replayed")
    page.get_by_role("link", name="exact text and approvals").first.click()
    assert "it is the exact text that made it" in page.get_by_role("status").inner_text()
    desktop_and_phone(page, artifacts, "decision-evidence")

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Audit").click()
    page.get_by_role("button", name="Verify").click()
    assert page.get_by_role("status").inner_text().startswith("OK: the chain holds.")
    request = urllib.request.Request(
        server["url"] + "/v1/audit/anchor",
        headers={"Authorization": f"Bearer {server['keys']['auditor']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        head = json.load(answer)
    assert page.locator("#head-hash").inner_text() == head["hash"]
    desktop_and_phone(page, artifacts, "audit-verify")
    audit_nav(page).get_by_role("link", name="Anchor").click()
    assert page.locator("#anchor-hash").inner_text() == head["hash"]
    desktop_and_phone(page, artifacts, "audit-anchor")
    audit_nav(page).get_by_role("link", name="Operator log").click()
    page.get_by_label("Kind").select_option("import")
    page.get_by_role("button", name="Filter").click()
    log = page.locator("main table").inner_text()
    assert "import.done" in log and f"/{HOSTILE}.jsonl" in log  # the file's path as text
    assert "run.finished" not in log
    desktop_and_phone(page, artifacts, "audit-log")
    audit_nav(page).get_by_role("link", name="Exports").click()
    page.get_by_label("Customer id").fill("EVIL1")
    page.get_by_role("button", name="Choose").click()
    assert f"EVIL1 ({HOSTILE})" in page.inner_text("main")
    desktop_and_phone(page, artifacts, "audit-export")
    page.get_by_label("Customer id").fill("")
    page.get_by_label("Kind").fill("reminder")
    page.get_by_role("button", name="Choose").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = download.value.path().read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(csv_header())
    assert len(rows) > 20 and {r[rows[0].index("kind")] for r in rows[1:]} == {"reminder"}
    assert page.locator("main script, main img").count() == 0
    assert not dialogs, dialogs
    context.close()
