"""Server-Sent Events from handlers that can also answer JSON."""

from __future__ import annotations

from typing import Any

from litestar.response import ServerSentEvent


class EventStream(ServerSentEvent):
    """A ServerSentEvent whose text/event-stream type survives a handler declared as JSON.

    Litestar lets the handler's media type override the response's own (JSON for our chat routes,
    which answer JSON unless `stream` is set), so the SSE content type is pinned here.
    """

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = "text/event-stream"
        return super().to_asgi_response(*args, **kwargs)
