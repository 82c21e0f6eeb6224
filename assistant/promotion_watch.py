"""Adapter promotions made through another API worker (or `ragtune adapters promote`), applied in this one.

A promotion is written to the registry in the shared home (`adapters/<name>/registry.json`) and applied at once
by the worker that served it; every other worker polls the registry every `server.shared_poll_s` seconds and
points the adapter's name at the newly promoted version (made resident if it was trained after start-up), the
same `ChatService.use_version` a promotion through the admin API calls. A version whose files fail their
recorded SHA-256 is not applied (the admin API refuses to promote it; a hand-edited registry is logged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from assistant.chat_service import ChatService
from finetune.registry import AdapterRegistry, RegistryError

log = logging.getLogger(__name__)


class PromotionWatcher:
    def __init__(self, registry: AdapterRegistry, chat: Callable[[], ChatService | None], default_adapter: str,
                 poll_s: float):
        self.registry = registry
        self.chat = chat  # the running chat service, or None while the model loads
        self.default_adapter = default_adapter
        self.poll_s = poll_s
        self._refused: set[str] = set()  # versions that did not verify or load: logged once, not retried
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> list[str]:
        """Apply every promotion this worker has not applied yet; returns the refs applied now."""
        chat = self.chat()
        if chat is None:
            return []
        applied = []
        for name in self.registry.names():
            try:
                version = self.registry.promoted(name)
            except (RegistryError, ValueError, OSError):  # a registry.json being replaced: next poll
                continue
            previous = chat.aliases.get(name)
            if version is None or version.ref in self._refused or previous == version.ref:
                continue  # (at start-up aliases are empty: the first poll re-points each name at its resident
                # promoted version, which loads nothing)
            try:
                self.registry.verify(version)
                chat.use_version(name, version.ref, str(version.path), self.default_adapter)
            except Exception as exc:  # noqa: BLE001 - a bad version must not stop the others or the worker
                self._refused.add(version.ref)
                log.error("adapter %s promoted by another worker was not applied: %s", version.ref, exc)
                continue
            if previous is not None:  # the first poll after start-up only confirms what assembly loaded
                log.warning("adapter %s now answers for %r (promoted through another worker)", version.ref, name)
            applied.append(version.ref)
        return applied

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="promotion-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watcher outlives one bad poll
                log.warning("checking the adapter registry for promotions failed", exc_info=True)
