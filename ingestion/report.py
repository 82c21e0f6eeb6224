"""What an ingest run did, per file and in total, with the exit code it implies."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["added", "updated", "unchanged", "skipped", "failed", "removed"]

# Exit codes of `ragtune ingest` (documented in its --help and the README).
EXIT_OK = 0  # every file ingested or unchanged
EXIT_PARTIAL = 3  # some files failed, the others were ingested
EXIT_FAILED = 4  # nothing could be ingested


@dataclass
class FileResult:
    path: str
    status: Status
    reason: str = ""
    chunks: int = 0
    pages: int | None = None
    seconds: float = 0.0


@dataclass
class IngestReport:
    collection: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    run_dir: str = ""

    def add(self, result: FileResult) -> FileResult:
        self.files.append(result)
        return result

    def counts(self) -> dict[str, int]:
        counted = Counter(f.status for f in self.files)
        return {s: counted.get(s, 0) for s in ("added", "updated", "unchanged", "removed", "skipped", "failed")}

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files if f.status in ("added", "updated"))

    @property
    def pages(self) -> int:
        return sum(f.pages or 0 for f in self.files if f.status in ("added", "updated"))

    @property
    def changed(self) -> bool:
        counts = self.counts()
        return bool(counts["added"] or counts["updated"] or counts["removed"])

    def exit_code(self) -> int:
        counts = self.counts()
        if not counts["failed"]:
            return EXIT_OK
        succeeded = counts["added"] + counts["updated"] + counts["unchanged"]
        return EXIT_PARTIAL if succeeded else EXIT_FAILED

    def to_dict(self) -> dict:
        return {
            "collection": self.collection,
            "counts": self.counts(),
            "chunks": self.chunks,
            "pages": self.pages,
            "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code(),
            "run_dir": self.run_dir,
            "files": [asdict(f) for f in self.files],
        }
