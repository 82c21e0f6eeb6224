"""Admin use cases of a staged rollout: start a split, read the live figures, promote the candidate or stop.

`start` sends `share` of conversations to the candidate; the control is what serves now (the promoted version
of the candidate's name, or the base model). `promote` promotes the candidate through the registry exactly as
the adapters page does (and ends the rollout); `stop` ends it and leaves the control serving: the rollback of
a rollout. A promoted candidate is rolled back like any promotion (POST /v1/adapters/{name}/rollback).
"""

from __future__ import annotations

from typing import Any, Callable

from assistant.admin_service import AdminService
from assistant.auth import Principal, authorize
from assistant.chat_service import ChatService
from assistant.db import Database
from assistant.errors import ApiError
from assistant.rollout import RolloutState, readout
from assistant.settings import Settings
from finetune.registry import RegistryError, parse_ref


class RolloutService:
    def __init__(self, settings: Settings, db: Database, chat: Callable[[], ChatService | None], state: RolloutState):
        self.settings = settings
        self.db = db
        self.chat = chat
        self.state = state
        self.admin = AdminService(settings, db, chat)

    def start(self, principal: Principal, candidate: str, share: float) -> dict[str, Any]:
        authorize(principal, "admin")
        chat = self.chat()  # None from the CLI: a server loads every registry version when it starts
        control = self._control(candidate)
        if chat is not None:
            self._make_resident(chat, candidate)
        elif self.settings.generator.mode != "openai":
            self.admin.registry.get(candidate)  # at least a version that exists
        self._gate_allows(candidate)
        try:
            rollout = self.state.start(control, candidate, share, principal.name)
        except ValueError as exc:
            raise ApiError("rollout_conflict", str(exc), 409) from exc
        return {"rollout": rollout.to_dict(), "message": f"{share:.0%} of conversations answer with {candidate}, "
                                                         f"the rest with {control}"}

    def status(self, principal: Principal) -> dict[str, Any]:
        authorize(principal, "admin")
        rollout = self.state.active()
        figures = readout(self.db.variants.counts(rollout.id), self.settings.loop.rollout_level) if rollout else None
        return {"rollout": rollout.to_dict() if rollout else None, "readout": figures, "history": self.state.history()[-10:]}

    def promote(self, principal: Principal) -> dict[str, Any]:
        authorize(principal, "admin")
        rollout = self._active()
        try:
            name, version = parse_ref(rollout.candidate)
        except RegistryError:
            version = None
        if version is None:
            raise ApiError("not_in_registry", f"{rollout.candidate} is not a registry version (NAME@vN): promote it on "
                           "the serving side, then stop the rollout", 409)
        applied = self.admin.promote(principal, name, int(version[1:]))
        figures = readout(self.db.variants.counts(rollout.id), self.settings.loop.rollout_level)
        self.state.finish("promoted", figures)
        return {**applied, "rollout": rollout.to_dict(), "readout": figures}

    def stop(self, principal: Principal) -> dict[str, Any]:
        authorize(principal, "admin")
        rollout = self._active()
        figures = readout(self.db.variants.counts(rollout.id), self.settings.loop.rollout_level)
        self.state.finish("stopped", figures)
        return {"rollout": rollout.to_dict(), "readout": figures,
                "message": f"rollout stopped: every conversation answers with {rollout.control} again"}

    # --- helpers ------------------------------------------------------------------------------------
    def _gate_allows(self, candidate: str) -> None:
        """A registry version goes to real traffic only after the promotion gate passed it on the golden set(s)."""
        if self.settings.generator.mode == "openai":
            return  # a served model name has no registry record to hold a gate decision
        decisions = self.admin.registry.get(candidate).metadata.get("gate") or []
        if not decisions:
            raise ApiError("gate_missing", f"{candidate} has no promotion-gate decision: run `ragtune retrain` or "
                           "`ragtune finetune --promote` (or score it) first", 409)
        if not decisions[-1].get("promote"):
            raise ApiError("gate_refused", f"the promotion gate refused {candidate}: {decisions[-1].get('reason')}", 409)

    def _active(self):
        rollout = self.state.active()
        if rollout is None:
            raise ApiError("no_rollout", "no rollout is running", 409)
        return rollout

    def _control(self, candidate: str) -> str:
        if self.settings.generator.mode == "openai":
            return self.settings.generator.default_adapter or "base"
        try:
            name, _ = parse_ref(candidate)
            promoted = self.admin.registry.promoted(name)
        except RegistryError as exc:
            raise ApiError("adapter_not_found", str(exc), 404) from exc
        return promoted.ref if promoted else "base"

    def _make_resident(self, chat: ChatService, candidate: str) -> None:
        """The local runtime loads a version trained since start-up; an OpenAI-compatible server must serve it."""
        if candidate in chat.generator.adapters():
            return
        if self.settings.generator.mode == "openai":
            raise ApiError("adapter_not_found", f"the generator serves no model named {candidate!r} (known: "
                           f"{', '.join(chat.generator.adapters()) or 'none'})", 404)
        try:
            version = self.admin.registry.get(candidate)
        except RegistryError as exc:
            raise ApiError("adapter_not_found", str(exc), 404) from exc
        if "@" not in candidate:
            raise ApiError("invalid_request", "name the candidate version: NAME@vN", 400)
        self.admin._verify(version)
        chat.generator.load_adapter(version.ref, str(version.path))
