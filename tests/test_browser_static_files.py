"""What the browser fetches, without a browser: the pages and modules are served with their content types and
a strict CSP, every module a page or another module imports exists, nothing points at another host, and
nothing outside frontend/ can be read through /ui/."""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from assistant.api.ui_routes import FRONTEND
from assistant.app import create_app
from assistant.settings import load_settings

IMPORT = re.compile(r"""(?:^|\n)\s*import\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)""")
ATTRIBUTE = re.compile(r"""\s(?:src|href)="([^"]*)\"""")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = load_settings(profile="test", overrides={"home": str(tmp_path_factory.mktemp("ui") / "home")})
    with TestClient(create_app(settings, background_load=False)) as client:  # no key: the UI needs none
        yield client


def csp(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {part.split()[0]: part for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize("path", ["/", "/admin"])
def test_pages_are_served_under_a_strict_content_security_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = csp(response)
    assert policy["default-src"] == "default-src 'self'"
    assert policy["script-src"] == "script-src 'self'"  # no inline script, no eval, no other host
    assert policy["connect-src"] == "connect-src 'self'" and policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["object-src"] == "object-src 'none'" and policy["base-uri"] == "base-uri 'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    # Only the admin page loosens styles, for scorecards in a sandboxed frame.
    assert ("'unsafe-inline'" in policy["style-src"]) == (path == "/admin")


def test_the_widget_loads_from_any_page(client):
    response = client.get("/widget.js", headers={"Origin": "https://tickets.example.com"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "attachShadow" in response.text and "window.Ragtune" in response.text


def modules_of(text: str, base: str) -> list[str]:
    """The /ui/... paths a module imports, resolved against its own path."""
    found = []
    for match in IMPORT.finditer(text):
        spec = match.group(1) or match.group(2)
        assert spec.startswith(("./", "../")), f"{base}: import of {spec!r} (only relative modules of this server)"
        parts = base.split("/")[:-1]
        for piece in spec.split("/"):
            if piece == "..":
                parts.pop()
            elif piece != ".":
                parts.append(piece)
        found.append("/".join(parts))
    return found


@pytest.mark.parametrize("page", ["/", "/admin"])
def test_every_file_a_page_needs_is_served_from_this_server(client, page):
    html = client.get(page).text
    pending = []
    for url in ATTRIBUTE.findall(html):
        assert url.startswith(("/", "#", "data:")) and not url.startswith("//"), f"{page}: {url!r} is another host"
        if url.startswith("/ui/"):
            pending.append(url)
    seen = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code == 200, f"{page} needs {path}: {response.status_code}"
        if path.endswith(".js"):
            assert response.headers["content-type"].startswith("text/javascript")
            pending.extend(modules_of(response.text, path))
        elif path.endswith(".css"):
            assert response.headers["content-type"].startswith("text/css")
    assert any(p.endswith("app.js") for p in seen) and len(seen) >= 8


def test_no_file_refers_to_another_host():
    for path in FRONTEND.rglob("*"):
        if path.suffix not in (".js", ".css", ".html"):
            continue
        # Comments and placeholder examples ("https://tickets.example.com") are words, not requests.
        code = re.sub(r"/\*.*?\*/|^\s*//.*$|placeholder=\"[^\"]*\"", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
        hosts = [u for u in re.findall(r"https?://[^\s\"'`)]+", code) if not u.startswith("http://www.w3.org/")]
        assert not hosts, f"{path.relative_to(FRONTEND)} refers to {hosts}"


@pytest.mark.parametrize("path", [
    "/ui/../assistant/app.py", "/ui/%2e%2e/README.md", "/ui/chat/%2e%2e/%2e%2e/README.md", "/ui/..%2fREADME.md",
    "/ui/chat/missing.js", "/ui/chat", "/ui/shared/api.py", "/ui/%2fetc/passwd",
])
def test_nothing_outside_frontend_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404, (path, response.status_code, response.text[:200])
    assert response.json()["error"]["code"] == "not_found"


def test_ui_routes_stay_out_of_the_api_schema(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert not any(p == "/" or p.startswith(("/ui", "/admin", "/widget")) for p in paths)


def test_a_servable_file_beside_frontend_stays_unreachable(client, tmp_path, monkeypatch):
    from assistant.api import ui_routes

    site = tmp_path / "site"
    (site / "chat").mkdir(parents=True)
    (site / "chat" / "ok.js").write_text("export const ok = 1;")
    (tmp_path / "secret.js").write_text("export const secret = 'nope';")
    monkeypatch.setattr(ui_routes, "FRONTEND", site)
    assert client.get("/ui/chat/ok.js").status_code == 200
    for path in ["/ui/../secret.js", "/ui/%2e%2e/secret.js", "/ui/chat/%2e%2e/%2e%2e/secret.js", "/ui/..%2fsecret.js",
                 "/ui/chat/..%2f..%2fsecret.js", f"/ui/{tmp_path}/secret.js", f"/ui//{tmp_path}/secret.js"]:
        response = client.get(path)
        assert response.status_code == 404 and "nope" not in response.text, path
