"""The admin page in a real browser: admin-only sign-in, upload -> ingestion job -> document listed -> deleted,
API keys created (plaintext shown once) and revoked, adapters listed with scorecards, promoted and rolled back,
the latest evaluation scorecard shown; axe-core on the page; a phone-width screenshot."""

from __future__ import annotations

import json

import httpx
import pytest

from assistant import assembly
from tests.browser_support import Stack, axe_violations, chromium, shot, sign_in, watched_page

pytestmark = pytest.mark.timeout(300)

# A finished evaluation run as `ragtune eval` leaves it in <home>/evals/ (summary.json + scorecard.html); the
# admin page only lists and shows it, so a small hand-written one stands in for a real run here.
SUMMARY = {"run": {"started": "2026-11-30T09:00:00+00:00", "questions": 12, "golden": ["golden.jsonl"]},
           "variants": {"rag": {"token_f1": 0.41, "citation_rate": 0.9}, "rag+lora": {"token_f1": 0.47, "citation_rate": 0.95}}}
SCORECARD = ("<!doctype html><html><head><title>Scorecard</title><style>h1 { color: rgb(0, 90, 0); }</style></head>"
             "<body><h1>Scorecard: golden.jsonl</h1><p>rag+lora token F1 0.47</p></body></html>")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-admin")
    with Stack(root, server={"rate_limit_per_minute": 10_000}) as running:
        run = running.settings.evals_dir / "2026-11-30-v2"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps(SUMMARY))
        (run / "scorecard.html").write_text(SCORECARD)
        yield running


@pytest.fixture(scope="module")
def browser(stack):
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    with watched_page(browser, 1280, 900) as watched:  # dialogs: the confirmations of delete and revoke
        yield watched


def admin_sign_in(page, stack) -> None:
    sign_in(page, f"{stack.url}/admin", stack.admin_key)
    page.get_by_text("Signed in as ops admin").wait_for(state="attached")  # (hidden on a phone)


def test_only_admin_keys_sign_in(page, stack):
    sign_in(page, f"{stack.url}/admin", stack.chat_key)
    alert = page.locator("#signin-alert")
    alert.wait_for()
    assert "no admin scope" in alert.inner_text()
    assert violations_of(page, "admin sign-in") == []
    shot(page, "admin-01-not-admin")


def violations_of(page, step):
    found = axe_violations(page)
    return [dict(v, step=step) for v in found]


def test_upload_watch_the_job_list_and_delete_a_document(page, stack, tmp_path):
    admin_sign_in(page, stack)
    page.locator("#documents-table tbody tr").first.wait_for()
    assert violations_of(page, "admin page") == []
    shot(page, "admin-02-signed-in")
    upload = tmp_path / "vpn-guide.txt"
    upload.write_text("Connecting to the VPN\n\nInstall GlobalProtect and sign in with your badge number.\n")
    page.get_by_label("Files").set_input_files(str(upload))
    page.get_by_label("Collection", exact=True).fill("it")
    page.get_by_role("button", name="Upload").click()
    page.locator("#upload-status").get_by_text("Upload received").wait_for()
    shot(page, "admin-03-job-running")
    page.locator("#jobs-table .badge-done").first.wait_for(timeout=60_000)
    page.locator("#upload-status").get_by_text("done").wait_for()
    row = page.locator("#documents-table tbody tr", has_text="vpn-guide.txt")
    row.wait_for()
    assert "it" in row.inner_text()
    assert "1 added" in page.locator("#jobs-table tbody tr").first.inner_text()
    shot(page, "admin-04-document-listed")
    documents = stack.app.state.services.conversations.documents
    assert any(d["name"] == "vpn-guide.txt" for d in documents(admin_principal(stack), "it"))

    page.get_by_label("Show collection").select_option("it")
    row.get_by_role("button", name="Delete vpn-guide.txt from it").click()
    page.locator("#documents-status").get_by_text("Deleted vpn-guide.txt").wait_for()
    assert page.locator("#documents-table tbody tr", has_text="vpn-guide.txt").count() == 0
    assert not any(d["name"] == "vpn-guide.txt" for d in documents(admin_principal(stack), None))
    shot(page, "admin-05-document-deleted")


def admin_principal(stack):
    from assistant.auth import authenticate

    return authenticate(stack.app.state.services.db.keys, {"authorization": f"Bearer {stack.admin_key}"})


def test_create_a_widget_key_then_revoke_it(page, stack):
    admin_sign_in(page, stack)
    page.get_by_label("Name").fill("helpdesk widget")
    page.get_by_label("Collections").fill("default")
    page.get_by_label("Allowed origins (widget)").fill("https://tickets.example.com")
    page.get_by_role("button", name="Create key").click()
    value = page.get_by_label("New API key")
    value.wait_for()
    key = value.input_value()
    assert key.startswith("rt_")
    assert page.evaluate("document.activeElement.id") == "new-key-value"
    row = page.locator("#keys-table tbody tr", has_text="helpdesk widget")
    row.wait_for()
    assert "https://tickets.example.com" in row.inner_text() and "active" in row.inner_text()
    shot(page, "admin-06-key-created")
    me = httpx.get(f"{stack.url}/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["scopes"] == ["chat"] and me.json()["collections"] == ["default"]

    row.get_by_role("button", name="Revoke the key helpdesk widget").click()
    page.locator("#keys-table tbody tr", has_text="helpdesk widget").get_by_text("revoked").wait_for()
    assert httpx.get(f"{stack.url}/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    shot(page, "admin-07-key-revoked")

    # A chat-only rule the server enforces shows as an error, not a silent failure.
    page.get_by_label("Name").fill("too powerful")
    page.locator("input[name=scope][value=ingest]").check()
    page.get_by_label("Allowed origins (widget)").fill("https://tickets.example.com")
    page.get_by_role("button", name="Create key").click()
    alert = page.locator("#admin-alert")
    alert.wait_for()
    assert "chat" in alert.inner_text().lower()
    shot(page, "admin-08-key-refused")


def test_adapters_promote_and_roll_back_and_the_latest_scorecard(page, stack):
    admin_sign_in(page, stack)
    table = page.locator("#adapters-table")
    v2 = table.locator("tbody tr", has_text="assistant@v2")
    v2.wait_for()
    assert "promoted" in table.locator("tbody tr", has_text="assistant@v1").inner_text()
    assert "token_f1 0.470" in v2.inner_text()
    v2.get_by_role("button", name="Promote assistant@v2").click()
    page.locator("#adapters-status").get_by_text("assistant@v2").wait_for()
    table.locator("tbody tr", has_text="assistant@v2").get_by_text("promoted").wait_for()
    registry = assembly.adapter_registry(stack.settings)
    assert registry.promoted("assistant").version == "v2"
    shot(page, "admin-09-promoted")
    table.get_by_role("button", name="Roll back assistant to its previous version").click()
    table.locator("tbody tr", has_text="assistant@v1").get_by_text("promoted").wait_for()
    assert registry.promoted("assistant").version == "v1"

    evals = page.locator("#evals-table")
    assert "2026-11-30-v2" in evals.inner_text() and "token_f1 0.470" in evals.inner_text()
    page.get_by_role("button", name="View the latest scorecard").click()
    frame = page.frame_locator("#scorecard-frame")
    frame.get_by_text("Scorecard: golden.jsonl").wait_for()
    # Its own inline styles apply inside the sandboxed frame (its charts and tables depend on them).
    assert frame.locator("h1").evaluate("h => getComputedStyle(h).color") == "rgb(0, 90, 0)"
    page.locator("#scorecard-frame").scroll_into_view_if_needed()
    shot(page, "admin-10-scorecard")
    assert violations_of(page, "admin page with a scorecard") == []


def test_phone_width(browser, stack):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    admin_sign_in(page, stack)
    page.locator("#keys-table tbody tr").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "admin-11-phone")
    context.close()


def test_review_accept_and_the_rollout_and_drift_sections(page, stack):
    db = stack.app.state.services.db
    item = db.reviews.add("thumbs_down", None, "How many vacation days do I get?", "I can't find that in the documents.",
                          comment="it is in the handbook", sources=[{"document": "handbook.md", "page": None}])
    admin_sign_in(page, stack)
    row = page.locator("#reviews-table tbody tr", has_text="How many vacation days")
    row.wait_for()
    assert "it is in the handbook" in row.inner_text() and "open" in row.inner_text()
    row.get_by_label("Reference answer").fill("25 days a year.")
    row.get_by_label("Also a training row").check()
    row.get_by_label("Why").fill("handbook section 4")
    shot(page, "admin-12-review")
    row.get_by_role("button", name="Accept").click()
    page.locator("#reviews-status").get_by_text("Accepted").wait_for()
    golden = db.reviews.golden()
    assert [(g.reference, g.training, g.why, g.added_by) for g in golden] == [("25 days a year.", True, "handbook section 4", "ops admin")]
    assert db.reviews.get(item.id).status == "accepted"
    page.locator("#rollout-summary").get_by_text("No rollout running").wait_for()
    page.locator("#drift-summary").wait_for()
    assert violations_of(page, "admin page, review and rollout") == []
