"""One field of every row of a JSONL file, for the verbs that take a file of inputs (`search --file`,
`guard check --file`): blank lines are skipped, and a bad row is a ValueError naming its line."""

from __future__ import annotations

import json
from pathlib import Path


def read_field(path: Path, field: str) -> list[str]:
    values = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                values.append(str(json.loads(line)[field]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f'{path}:{number}: expected a JSON object with a "{field}" field ({exc})') from exc
    return values
