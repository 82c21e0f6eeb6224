"""The adapter registry: `<home>/adapters/<name>/<version>/` holding LoRA weights and metadata.json.

Each name keeps a small `registry.json` with the promoted version and the promotion history
(so `rollback` can step back). Versions are published by renaming a finished staging directory
into place, so a crash mid-training never leaves a half-written version that looks real.
Publishing records the SHA-256 of the files peft reads (metadata `integrity`); `verify` checks them
before a version is loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import integrity

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^v(\d+)$")


class RegistryError(ValueError):
    """A registry operation that cannot be done; the message is for users."""


@dataclass
class AdapterVersion:
    name: str
    version: str  # "v1", "v2", ...
    path: Path
    metadata: dict[str, Any]
    promoted: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise RegistryError(f"invalid adapter name {name!r}: letters, digits, '_', '.', '-' (max 64)")
    return name


def parse_ref(ref: str) -> tuple[str, str | None]:
    """"name" or "name@v3" -> (name, version or None)."""
    name, _, version = ref.partition("@")
    check_name(name)
    if version and not _VERSION.match(version):
        raise RegistryError(f"invalid adapter version {version!r} (expected v1, v2, ...)")
    return name, version or None


class AdapterRegistry:
    def __init__(self, root: Path):
        self.root = root

    # --- reading --------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name) and self.versions(p.name))

    def versions(self, name: str) -> list[AdapterVersion]:
        folder = self.root / check_name(name)
        if not folder.is_dir():
            return []
        promoted = self._state(name).get("promoted")
        found = []
        for path in folder.iterdir():
            if _VERSION.match(path.name) and (path / "metadata.json").is_file():
                meta = json.loads((path / "metadata.json").read_text())
                found.append(AdapterVersion(name, path.name, path, meta, promoted == path.name))
        return sorted(found, key=lambda v: int(v.version[1:]))

    def list(self) -> list[AdapterVersion]:
        return [v for name in self.names() for v in self.versions(name)]

    def get(self, ref: str) -> AdapterVersion:
        """"name@v3" is that version; "name" is the promoted version, else the newest."""
        name, version = parse_ref(ref)
        versions = self.versions(name)
        if not versions:
            raise RegistryError(f"no adapter named {name!r} (known: {', '.join(self.names()) or 'none'})")
        if version is None:
            promoted = [v for v in versions if v.promoted]
            return promoted[0] if promoted else versions[-1]
        for v in versions:
            if v.version == version:
                return v
        raise RegistryError(f"adapter {name!r} has no version {version} (has {', '.join(v.version for v in versions)})")

    def promoted(self, name: str) -> AdapterVersion | None:
        return next((v for v in self.versions(name) if v.promoted), None)

    def promotion_history(self, name: str) -> list[AdapterVersion]:
        """The versions promoted so far that still exist, the current one last."""
        by_version = {v.version: v for v in self.versions(name)}
        return [by_version[h] for h in self._state(check_name(name)).get("history", []) if h in by_version]

    def verify(self, version: AdapterVersion) -> bool:
        """Check a version's files against the hashes recorded at publish (RegistryError naming the file if not).

        False: the version predates hash records and is unverified."""
        try:
            return integrity.verify_adapter(version.path, version.metadata, f"adapter {version.ref}")
        except integrity.IntegrityError as exc:
            raise RegistryError(f"refusing to load {exc}") from None

    # --- writing --------------------------------------------------------------------------
    def staging_dir(self, name: str) -> Path:
        """A fresh directory to train into; `publish` turns it into the next version."""
        path = self.root / check_name(name) / f".staging-{os.getpid()}-{int(time.time() * 1000)}"
        path.mkdir(parents=True)
        return path

    def publish(self, name: str, staging: Path, metadata: dict[str, Any]) -> AdapterVersion:
        if not (staging / "adapter_config.json").is_file():
            raise RegistryError(f"{staging} holds no adapter_config.json")
        try:
            record = integrity.adapter_record(staging)
        except integrity.IntegrityError as exc:
            raise RegistryError(str(exc)) from None
        existing = [int(v.version[1:]) for v in self.versions(name)]
        version = f"v{max(existing, default=0) + 1}"
        metadata = {**metadata, "name": name, "version": version, "created_at": metadata.get("created_at", time.time()),
                    "integrity": record}
        _atomic_json(staging / "metadata.json", metadata)
        target = self.root / name / version
        staging.rename(target)  # same filesystem: atomic
        return AdapterVersion(name, version, target, metadata)

    def update_metadata(self, ref: str, **fields: Any) -> AdapterVersion:
        """Merge fields (e.g. evaluation scores) into a version's metadata.json."""
        v = self.get(ref)
        v.metadata.update(fields)
        _atomic_json(v.path / "metadata.json", v.metadata)
        return v

    def promote(self, ref: str) -> AdapterVersion:
        v = self.get(ref)
        state = self._state(v.name)
        history = [h for h in state.get("history", []) if h != v.version] + [v.version]
        self._save_state(v.name, {"promoted": v.version, "history": history})
        v.promoted = True
        return v

    def rollback(self, name: str) -> AdapterVersion:
        """Promote the version promoted before the current one."""
        state = self._state(check_name(name))
        history = [h for h in state.get("history", []) if (self.root / name / h).is_dir()]
        if len(history) < 2:
            raise RegistryError(f"adapter {name!r} has no earlier promoted version to roll back to")
        history.pop()
        self._save_state(name, {"promoted": history[-1], "history": history})
        return self.get(f"{name}@{history[-1]}")

    def delete(self, ref: str, force: bool = False) -> AdapterVersion:
        name, version = parse_ref(ref)
        if version is None:
            raise RegistryError("say which version to delete: NAME@vN")
        v = self.get(ref)
        if v.promoted and not force:
            raise RegistryError(f"{v.ref} is promoted; promote another version first (or --force)")
        shutil.rmtree(v.path)
        state = self._state(name)
        history = [h for h in state.get("history", []) if h != version]
        self._save_state(name, {"promoted": history[-1] if history else None, "history": history})
        return v

    # --- state file -----------------------------------------------------------------------
    def _state(self, name: str) -> dict[str, Any]:
        path = self.root / name / "registry.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _save_state(self, name: str, state: dict[str, Any]) -> None:
        _atomic_json(self.root / name / "registry.json", state)


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
