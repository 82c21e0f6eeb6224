"""Shared set-up for the real-browser tests: Debian's Chromium driven by Playwright against the app on loopback.

The app runs the fake model (tokens paced by `fake_delay_s`, so streaming is visible) over a small ingested
home with a registry of two fake adapter versions. Chromium comes from `apt-get install chromium`
(scripts/setup_browser.sh); Playwright's own browser download is never used. Without Chromium or Playwright
the tests skip with the reason. Screenshots of each step go to tests/artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from assistant import assembly
from assistant.app import create_app
from tests.api_helpers import DOCS, LiveServer, settings_for
from tests.conftest import make_corpus

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "browser"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
# A plain-text document (kept verbatim by the parser) whose first sentence is markup: the fake model answers
# with exactly that sentence, so the page must show it as text and never run it. (`<script>` and `javascript:` links
# are not here: the chunk rail neutralises those in documents as active content; the Markdown renderer test covers
# them as model output.)
MARKUP = {"release-notes.txt": "Release train: the release train ships every Friday "
          "<img src=x onerror=\"window.__pwned=1\"> **at noon** <b onclick=\"window.__pwned=2\">"
          "[details](ftp://release.example/notes)</b>.\n\nRollbacks need the on-call lead.\n"}


def playwright_or_skip():
    """The sync Playwright entry point, or a skip that says what is missing and how to get it."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/setup_browser.sh (apt-get install chromium) as root")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements.lock)")
    return sync_playwright


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium for a test module."""
    sync_playwright = playwright_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def watched_page(browser: Any, width: int, height: int, clipboard_origin: str | None = None) -> Iterator[Any]:
    """A page in a fresh context whose JavaScript errors, and CSP refusals logged on its console, fail the test;
    confirmation dialogs are accepted. `clipboard_origin`: grant clipboard access there (the agent's Copy)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    if clipboard_origin:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=clipboard_origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and "Content Security Policy" in msg.text and errors.append(msg.text))
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()
    assert not errors, f"errors on the page: {errors}"


def publish_adapter(registry, name: str, scores: dict[str, float]) -> None:
    """A registry version the fake generator can serve (it only needs a directory) with recorded scores."""
    staging = registry.staging_dir(name)
    (staging / "adapter_config.json").write_text("{}")
    registry.publish(name, staging, {"training": {"best_val_loss": 1.0}, "eval": {"rag+lora": scores}})


class Stack:
    """The app on a free loopback port, with an admin key and a chat key, over an ingested home."""

    def __init__(self, root: Path, fake_delay_s: float = 0.04, **overrides: Any):
        home = root / "home"
        # Units of at most 16 characters: with `checked` release the page still shows an answer grow piece by piece.
        overrides["guardrails"] = {"stream_unit_max_chars": 16, **overrides.get("guardrails", {})}
        settings = settings_for(home, generator={"fake_delay_s": fake_delay_s}, **overrides)
        job = assembly.ingest_job(settings)
        assert job.run([make_corpus(root / "docs", {**DOCS, **MARKUP})]).exit_code() == 0
        registry = assembly.adapter_registry(settings)
        publish_adapter(registry, "assistant", {"token_f1": 0.41})
        publish_adapter(registry, "assistant", {"token_f1": 0.47})
        registry.promote("assistant@v1")
        self.settings = settings
        self.app = create_app(settings, background_load=False)
        self.server = LiveServer(self.app)
        self.url = self.server.url
        self.admin_key = ""
        self.chat_key = ""

    def __enter__(self) -> Stack:
        self.server.__enter__()
        keys = self.app.state.services.db.keys
        self.admin_key = keys.create("ops admin", "admin")[1]
        self.chat_key = keys.create("employee", "chat", all_collections=True)[1]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)

    def create_key(self, name: str, scopes: str, **extra: Any) -> tuple[str, str]:
        """(id, key) made through the admin API (POST /v1/keys), as an administrator would."""
        import httpx

        body = {"name": name, "scopes": scopes.split(","), **extra}
        response = httpx.post(f"{self.url}/v1/keys", json=body, headers={"Authorization": f"Bearer {self.admin_key}"})
        assert response.status_code == 201, response.text
        data = response.json()
        return data["key"]["id"], data["api_key"]


class HostPage:
    """Another loopback origin (a ticket tool). `files` ({path: (content type, text)}) and `headers` may be set
    after start: the page needs a key that names this origin, known only once the port is."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, str]] = {}
        self.headers: dict[str, str] = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                path = self.path.split("?")[0]
                kind, text = site.files.get(path, ("text/plain", "not found"))
                body = text.encode()
                self.send_response(200 if path in site.files else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in site.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # "localhost" rather than 127.0.0.1: a different origin from the API's even on the same machine.
        self.origin = f"http://localhost:{port}"
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostPage:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def shot(page: Any, name: str) -> Path:
    """Save a screenshot of the step (look at them: tests/artifacts/browser/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core run inside the page (offline: the script ships in a PyPI package); violations of `impacts`.

    The script is evaluated, not added as a <script> tag, so the page's strict CSP stays as it is.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    result = page.evaluate("async () => JSON.stringify(await axe.run(document, {resultTypes: ['violations']}))")
    violations = json.loads(result)["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in violations if v["impact"] in impacts
    ]


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url)
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
