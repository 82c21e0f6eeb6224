"""The web UI: the chat page (/), the admin page (/admin), the embeddable widget (/widget.js) and the pages'
modules (/ui/{path}), served as files from `frontend/` (plain ES modules, no build step).

No key is needed to fetch them: the pages ask for one and send it with every API call. HTML pages go out
under a strict Content-Security-Policy (only this server's own scripts, styles and connections; no inline
script, no third-party host), so model output that slipped past the renderer still could not run.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get

from assistant.errors import ApiError
from frontend import ROOT as FRONTEND

_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
# frame-src blob: lets the admin page show a fetched scorecard in a sandboxed frame; blob: images and
# connections stay same-origin by construction.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; frame-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidate: a deploy must not leave old modules beside a new page
}
# The admin page shows evaluation scorecards (self-contained HTML with inline <style>, fetched with the key)
# in a sandboxed frame without scripts; such a frame inherits the page's policy, so this page alone allows
# inline styles. Scripts stay 'self' only; the page writes server data as text, never as markup.
_ADMIN_HEADERS = {**_PAGE_HEADERS, "Content-Security-Policy": CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")}
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
# A plain <script src> from any host page: readable cross-origin, also under Cross-Origin-Embedder-Policy.
_WIDGET_HEADERS = {**_ASSET_HEADERS, "Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin"}


def _file(relative: str) -> tuple[bytes, str]:
    """The bytes and content type of a file under frontend/; 404 for anything outside it or of another type."""
    root = FRONTEND.resolve()
    path = (root / relative.lstrip("/")).resolve()
    kind = _TYPES.get(path.suffix)
    if kind is None or not path.is_relative_to(root) or not path.is_file():
        raise ApiError("not_found", f"no UI file {relative!r}", 404)
    return path.read_bytes(), kind


def _page(relative: str, headers: dict[str, str] = _PAGE_HEADERS) -> Response:
    content, kind = _file(relative)
    return Response(content, media_type=kind, headers=headers)


@get("/", include_in_schema=False, sync_to_thread=False)
def chat_page() -> Response:
    return _page("chat/index.html")


@get("/admin", include_in_schema=False, sync_to_thread=False)
def admin_page() -> Response:
    return _page("admin/index.html", _ADMIN_HEADERS)


@get("/widget.js", include_in_schema=False, sync_to_thread=False)
def widget_script() -> Response:
    content, kind = _file("widget/widget.js")
    return Response(content, media_type=kind, headers=_WIDGET_HEADERS)


@get("/ui/{path:path}", include_in_schema=False, sync_to_thread=False)
def ui_file(path: Path) -> Response:
    content, kind = _file(str(path))
    headers = _PAGE_HEADERS if kind == "text/html" else _ASSET_HEADERS
    return Response(content, media_type=kind, headers=headers)


ROUTES = [chat_page, admin_page, widget_script, ui_file]
