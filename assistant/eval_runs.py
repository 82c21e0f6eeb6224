"""Evaluation runs on disk, for the admin page: `<home>/evals/<run>/` as `ragtune eval` writes them by default.

A run is a directory holding summary.json (and, once finished, scorecard.html). Runs written elsewhere with
`ragtune eval --out DIR` are not listed: the server reads only its own home.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from assistant.auth import Principal, authorize
from assistant.errors import ApiError, not_found

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a directory name, never a path
MAX_RUNS = 100  # listed, newest first


class EvalRuns:
    def __init__(self, root: Path):
        self.root = root

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        """{id, created_at, variants, summary: {variant: {metric: value}}, ...} newest first."""
        authorize(principal, "admin")
        return [self._describe(path, summary) for path, summary in self._runs()[:MAX_RUNS]]

    def scorecard(self, principal: Principal, run_id: str) -> str:
        """The run's scorecard.html; `latest` is the newest run."""
        authorize(principal, "admin")
        if run_id == "latest":
            runs = self._runs()
            if not runs:
                raise ApiError("eval_run_not_found", "no evaluation run yet (run `ragtune eval`)", 404)
            path = runs[0][0]
        elif _RUN_ID.match(run_id) and (self.root / run_id / "summary.json").is_file():
            path = self.root / run_id
        else:
            raise not_found("eval_run", run_id)
        html = path / "scorecard.html"
        if not html.is_file():
            raise ApiError("scorecard_unavailable", f"evaluation run {path.name} has no scorecard.html", 404)
        return html.read_text(encoding="utf-8")

    def _runs(self) -> list[tuple[Path, dict[str, Any]]]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            summary = _summary(path) if _RUN_ID.match(path.name) and path.is_dir() else None
            if summary is not None:
                found.append((path, summary))
        # ISO-8601 UTC start times sort as text; a run without one sorts by its summary's modification time.
        return sorted(found, key=lambda run: (_started(run[1]) or "", (run[0] / "summary.json").stat().st_mtime),
                      reverse=True)

    @staticmethod
    def _describe(path: Path, summary: dict[str, Any]) -> dict[str, Any]:
        run = summary.get("run") or {}
        variants = summary.get("variants") or {}
        return {
            "id": path.name,
            "created_at": _started(summary),
            "variants": list(variants),
            "summary": variants,
            "questions": run.get("questions"),
            "golden": run.get("golden"),
            "judge": run.get("judge"),
            "gates_passed": all(g.get("passed") for g in summary.get("gates") or []),
            "has_scorecard": (path / "scorecard.html").is_file(),
        }


def _summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not a run, or one still being written
    return data if isinstance(data, dict) else None


def _started(summary: dict[str, Any]) -> str | None:
    started = (summary.get("run") or {}).get("started")
    return started if isinstance(started, str) else None
