"""Background jobs (ingestion of uploads): queued -> running -> done | failed, with their report.

Reads are owner-scoped like conversations (another key's job id looks unknown; `admin=True`
lifts that). Status changes come from the worker, not from a key, so they take only the id.
Transitions are checked: a job finishes once, and a finished job never runs again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from assistant.db.models import Job, utcnow
from assistant.db.records import JOB_STATUSES, JobRecord

if TYPE_CHECKING:
    from assistant.db.database import Database

# Which status each one may move to. queued -> failed covers cancelled and interrupted jobs.
_NEXT = {"queued": {"running", "failed"}, "running": {"done", "failed"}, "done": set(), "failed": set()}


class JobStateError(ValueError):
    """A status change the job's current status does not allow (e.g. finishing it twice)."""


class JobStore:
    def __init__(self, database: Database):
        self.db = database

    def create(self, key_id: str, collection: str, inputs: Mapping[str, Any], kind: str = "ingest") -> JobRecord:
        row = Job(key_id=key_id, kind=kind, status="queued", collection=collection, inputs=dict(inputs),
                  created_at=utcnow())
        with self.db.session() as session:
            session.add(row)
        return _record(row)

    def get(self, job_id: str, key_id: str, admin: bool = False) -> JobRecord | None:
        with self.db.session() as session:
            row = session.get(Job, job_id)
            if row is None or (row.key_id != key_id and not admin):
                return None
            return _record(row)

    def list(
        self, key_id: str, limit: int = 50, offset: int = 0, status: str | None = None, all_keys: bool = False
    ) -> list[JobRecord]:
        """Newest first. `all_keys` (admins only) lists every key's jobs."""
        query = select(Job).order_by(Job.created_at.desc(), Job.id)
        if not all_keys:
            query = query.where(Job.key_id == key_id)
        if status is not None:
            query = query.where(Job.status == _checked(status))
        with self.db.session() as session:
            return [_record(r) for r in session.scalars(query.limit(max(0, limit)).offset(max(0, offset)))]

    def update(
        self, job_id: str, status: str, report: Mapping[str, Any] | None = None, error: str | None = None
    ) -> JobRecord | None:
        """Move a job to `status`, stamping started_at/finished_at. None: no such job.

        Raises JobStateError for a transition `_NEXT` forbids.
        """
        status = _checked(status)
        now = utcnow()
        values: dict[str, Any] = {"status": status, ("started_at" if status == "running" else "finished_at"): now}
        if report is not None:
            values["report"] = dict(report)
        if error is not None:
            values["error"] = error
        came_from = [s for s, allowed in _NEXT.items() if status in allowed]
        with self.db.session() as session:
            # One conditional UPDATE, so two workers racing to start the same job cannot both win.
            changed = session.execute(
                update(Job).where(Job.id == job_id, Job.status.in_(came_from)).values(**values)
            ).rowcount
            row = session.get(Job, job_id, populate_existing=True)
            if row is None:
                return None
            if not changed:
                raise JobStateError(f"job {job_id} is {row.status}; it cannot become {status}")
            return _record(row)

    def claim(self, job_id: str, owner: str, lease_s: float) -> JobRecord | None:
        """Start a queued job under `owner`'s lease (`lease_s` seconds); None when another worker has it already.

        One conditional UPDATE: of several workers trying at once, exactly one moves it queued -> running."""
        now = utcnow()
        with self.db.session() as session:
            changed = session.execute(
                update(Job).where(Job.id == job_id, Job.status == "queued")
                .values(status="running", started_at=now, lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_s))
            ).rowcount
            if not changed:
                return None
            return _record(session.get(Job, job_id, populate_existing=True))

    def renew(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Extend the lease of a job `owner` runs; False when it is no longer running under that owner."""
        with self.db.session() as session:
            return bool(session.execute(
                update(Job).where(Job.id == job_id, Job.status == "running", Job.lease_owner == owner)
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            ).rowcount)

    def queued(self) -> list[JobRecord]:
        """Every key's queued jobs, oldest first: what a worker picks up (after a restart too)."""
        query = select(Job).where(Job.status == "queued").order_by(Job.created_at, Job.id)
        with self.db.session() as session:
            return [_record(r) for r in session.scalars(query)]

    def fail_running(self, reason: str = "interrupted: the server stopped while the job ran") -> int:
        """Mark jobs left `running` by a stopped process as failed: those without a lease, or whose lease lapsed
        (its worker died). A job another live worker runs keeps renewing its lease and is left alone."""
        now = utcnow()
        lapsed = or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)
        with self.db.session() as session:
            result = session.execute(
                update(Job).where(Job.status == "running", lapsed).values(status="failed", error=reason, finished_at=now)
            )
            return int(result.rowcount or 0)


def _checked(status: str) -> str:
    if status not in JOB_STATUSES:
        raise ValueError(f"job status must be one of {', '.join(JOB_STATUSES)}, not {status!r}")
    return status


def _record(row: Job) -> JobRecord:
    return JobRecord(
        id=row.id,
        key_id=row.key_id,
        kind=row.kind,
        status=row.status,
        collection=row.collection,
        inputs=row.inputs,
        report=row.report,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )
