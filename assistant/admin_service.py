"""Admin use cases behind the admin page: API keys, and adapter versions with promotion and rollback.

Every method needs the `admin` scope. A promotion or rollback is written to the registry (what a restart
reads) and applied to the running chat service at once: the version is made resident if it was trained
after start-up, and requests for the adapter's name, and the default adapter, answer with it from the next
request on. With an OpenAI-compatible generator the engine loads the adapters: a version it does not serve
under its ref (NAME@vN, `ragtune adapters serve-config`) is refused with 409 `adapter_not_served` before the
registry changes; one it serves is applied by pointing the name at that ref, with no restart of either process.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from assistant.auth import Principal, authorize
from assistant.chat_service import ChatService
from assistant.db import Database, KeySpecError
from assistant.errors import ApiError, not_found
from assistant.settings import Settings
from finetune.registry import AdapterRegistry, AdapterVersion, RegistryError

_TRAINING_METRICS = ("best_val_loss", "best_epoch", "epochs_completed", "steps", "stopped_early", "seconds", "tokens_per_s")


class AdminService:
    def __init__(self, settings: Settings, db: Database, chat: Callable[[], ChatService]):
        self.settings = settings
        self.db = db
        self.chat = chat  # the running chat service; raises 503 not_ready while the model loads
        self.registry = AdapterRegistry(settings.adapters_dir)

    # --- keys -----------------------------------------------------------------------------------
    def keys(self, principal: Principal) -> list[dict[str, Any]]:
        authorize(principal, "admin")
        return [r.to_dict() for r in self.db.keys.list()]

    def create_key(self, principal: Principal, name: str, scopes: list[str], collections: list[str] | None,
                   all_collections: bool | None, allowed_origins: list[str] | None) -> tuple[dict[str, Any], str]:
        """The new key's record and its plaintext (shown once). Like `ragtune keys create`, a key without
        collections reads every collection unless all_collections is false."""
        authorize(principal, "admin")
        every = collections is None if all_collections is None else all_collections
        try:
            record, plaintext = self.db.keys.create(name, scopes, collections, all_collections=every,
                                                    allowed_origins=allowed_origins)
        except KeySpecError as exc:
            raise ApiError("invalid_key_spec", str(exc), 400) from exc
        return record.to_dict(), plaintext

    def revoke_key(self, principal: Principal, key_id: str) -> dict[str, Any]:
        """Revoked at once: the key's next request is a 401. Revoking twice returns the same record."""
        authorize(principal, "admin")
        record = self.db.keys.revoke(key_id)
        if record is None:
            raise not_found("key", key_id)
        return record.to_dict()

    # --- adapters -------------------------------------------------------------------------------
    def adapters(self, principal: Principal) -> list[dict[str, Any]]:
        authorize(principal, "admin")
        return [self._describe(v) for v in self.registry.list()]

    def promote(self, principal: Principal, name: str, version: int) -> dict[str, Any]:
        authorize(principal, "admin")
        chat = self._running_chat()  # 503 while loading, before anything changes
        try:
            wanted = self.registry.get(f"{name}@v{version}")
        except RegistryError as exc:
            raise ApiError("adapter_not_found", str(exc), 404) from exc
        self._verify(wanted)  # a corrupt version is never promoted
        self._servable(chat, wanted)
        return self._applied(chat, self.registry.promote(wanted.ref))

    def rollback(self, principal: Principal, name: str) -> dict[str, Any]:
        authorize(principal, "admin")
        chat = self._running_chat()
        try:
            known = bool(self.registry.versions(name))
        except RegistryError:  # not even a valid name
            known = False
        if not known:
            raise ApiError("adapter_not_found", f"no adapter named {name!r}", 404)
        current = self.registry.promoted(name)
        try:
            restored = self.registry.rollback(name)
        except RegistryError as exc:
            raise ApiError("no_earlier_version", str(exc), 409) from exc
        try:
            self._verify(restored)
            self._servable(chat, restored)
        except ApiError:
            if current is not None:
                self.registry.promote(current.ref)  # undo: the history is as it was
            raise
        return self._applied(chat, restored)

    # --- helpers --------------------------------------------------------------------------------
    def _verify(self, version: AdapterVersion) -> None:
        """The files' SHA-256 against those recorded at publish (versions from before hashes were kept pass)."""
        try:
            self.registry.verify(version)
        except RegistryError as exc:
            raise ApiError("adapter_corrupt", str(exc), 409) from exc

    def _servable(self, chat: ChatService, version: AdapterVersion) -> None:
        """With an OpenAI-compatible generator, the engine must already serve the version (it loads adapters
        from its own config)."""
        if self.settings.generator.mode == "openai" and version.ref not in chat.generator.adapters():
            raise ApiError("adapter_not_served", f"the generation server does not serve {version.ref}: run "
                           "`ragtune adapters serve-config` and restart the engine, then promote again", 409)

    def _running_chat(self) -> ChatService:
        return self.chat()

    def _applied(self, chat: ChatService, version: AdapterVersion) -> dict[str, Any]:
        chat.use_version(version.name, version.ref, str(version.path), self.settings.generator.default_adapter)
        return {"adapter": self._describe(version), "applied": True, "restart_required": False,
                "message": f"{version.ref} answers requests for {version.name!r} from now on"}

    def _describe(self, v: AdapterVersion) -> dict[str, Any]:
        meta = v.metadata
        training = meta.get("training") or {}
        dataset = meta.get("dataset") or {}
        metrics = {k: training[k] for k in _TRAINING_METRICS if k in training}
        metrics.update({k: dataset[k] for k in ("train_examples", "val_examples") if k in dataset})
        return {
            "ref": v.ref,
            "name": v.name,
            "version": int(v.version[1:]),
            "promoted": v.promoted,
            "created_at": _iso(meta.get("created_at")),
            "metrics": metrics,
            "scorecards": meta.get("eval") or {},
            "base_model": meta.get("base_model"),
        }


def _iso(moment: Any) -> str | None:
    """metadata.json keeps time.time() seconds; clients get ISO-8601 UTC like every other timestamp."""
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, timezone.utc).isoformat()
    return moment if isinstance(moment, str) else None
