"""The guardrails audit log: one JSON line per rail action, append-only, under HOME/audit/.

A line holds the time, request id, API key id, entry point, rail, action, score and reason. The
reason is the rail's own summary (e.g. the PII kinds found, an attack heuristic's name), never the
matched text, so the log holds no raw PII. A JSON-lines file rather than a database table: it is
written on the answer path without a transaction, read by log shippers as is, and rotated by them.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterable


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def record(self, events: Iterable[Any], request_id: str, key_id: str | None, entry: str) -> int:
        lines = [json.dumps({"time": round(time.time(), 3), "request_id": request_id, "key_id": key_id, "entry": entry,
                             "rail": e.rail, "action": e.action, "score": round(float(e.score), 4), "reason": e.reason})
                 for e in events]
        if not lines:
            return 0
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:  # one write per answer: lines stay whole
                handle.write("".join(line + "\n" for line in lines))
        return len(lines)

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()[-limit:]
        return [json.loads(line) for line in lines if line.strip()]
