"""Parse untrusted files in a separate worker process under a time and memory limit.

One long-lived worker (spawned, so the parent's torch/FAISS state is not forked) imports
`unstructured` once and parses files on request. The parent watches the clock and the
worker's resident memory; a file that overruns either gets the worker killed, a clear
error for that file, and a fresh worker for the next one. A crash of the parser can
therefore never take the ingest run (or the server) down with it.

The worker's TMPDIR is a private folder the pool removes when it closes: what the parsing
libraries write there (onnxruntime drops a `.ses` file at import, unstructured may spool) never
outlives the run, and callers can put that folder under the home directory.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from ingestion.parsing import OFFLINE_ENV, ParseError

_POLL_S = 0.05  # how often the parent checks time and memory while a file parses
_STARTUP_TIMEOUT_S = 180.0  # importing unstructured (and torch under it) on a slow disk


def _worker_main(conn) -> None:
    from ingestion.parsing import parse_path, preload, prepare_offline

    prepare_offline()
    conn.send(("ready", None))
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            # Imports happen before "started", so a file's time limit measures parsing only.
            preload(path)
            conn.send(("started", None))
            conn.send(("ok", parse_path(path)))
        except ParseError as exc:
            conn.send(("error", str(exc)))
        except MemoryError:
            conn.send(("error", "parser ran out of memory"))
        except Exception as exc:  # any library failure on a bad file is that file's error
            message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            conn.send(("error", f"cannot parse: {type(exc).__name__}: {message}".rstrip(": ")))


class ParserPool:
    """A single supervised parser worker; use as a context manager."""

    def __init__(self, timeout_s: float, memory_mb: int, temp_parent: str | Path | None = None):
        self.timeout_s = timeout_s
        self.memory_bytes = memory_mb * 1024 * 1024
        self.temp_parent = temp_parent  # where the worker's private TMPDIR is made; None = the system's
        self._temp: str | None = None
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None

    def __enter__(self) -> "ParserPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parse(self, path: str) -> dict[str, Any]:
        """Elements of `path`, or ParseError saying why not (timeout, memory, crash, bad file)."""
        self._ensure_worker()
        assert self._conn is not None and self._proc is not None
        self._conn.send(path)
        self._await_start()
        started = time.monotonic()
        while not self._conn.poll(_POLL_S):
            if not self._proc.is_alive():
                code = self._proc.exitcode
                self._discard_worker()
                raise ParseError(f"parser crashed (exit code {code})")
            if time.monotonic() - started > self.timeout_s:
                self._discard_worker()
                raise ParseError(f"parsing took longer than {self.timeout_s:g} s and was stopped")
            if self._rss() > self.memory_bytes:
                self._discard_worker()
                raise ParseError(f"parsing used more than {self.memory_bytes // 2**20} MiB of memory and was stopped")
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            self._discard_worker()
            raise ParseError("parser crashed while sending its result") from None
        if status == "error":
            raise ParseError(payload)
        return payload

    def _await_start(self) -> None:
        """Wait (generously) for the worker to import what the file needs and begin parsing."""
        if not self._conn.poll(_STARTUP_TIMEOUT_S):
            self._discard_worker()
            raise ParseError("the parser did not start (importing its libraries hung)")
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            self._discard_worker()
            raise ParseError("parser crashed while starting") from None
        if status != "started":
            raise ParseError(payload if status == "error" else f"unexpected parser reply {status!r}")

    def close(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(timeout=5)
            except (OSError, BrokenPipeError):
                pass
        self._discard_worker()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def _ensure_worker(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        parent, child = self._ctx.Pipe()
        if self._temp is None:
            if self.temp_parent is not None:
                Path(self.temp_parent).mkdir(parents=True, exist_ok=True)
            self._temp = tempfile.mkdtemp(prefix="ragtune-parser-", dir=self.temp_parent)
        env = {**OFFLINE_ENV, "TMPDIR": self._temp}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # inherited by the spawned worker before its imports
        try:
            self._proc = self._ctx.Process(target=_worker_main, args=(child,), daemon=True, name="ragtune-parser")
            self._proc.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child.close()
        self._conn = parent
        if not parent.poll(_STARTUP_TIMEOUT_S):
            self._discard_worker()
            raise RuntimeError("the parser worker did not start (importing unstructured failed or hung)")
        try:
            status, _ = parent.recv()
        except (EOFError, OSError):
            status = "died"
        if status != "ready":
            self._discard_worker()
            raise RuntimeError("the parser worker failed to start")

    def _rss(self) -> int:
        try:
            proc = psutil.Process(self._proc.pid)
            return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            return 0

    def _discard_worker(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            if self._proc.pid is not None:  # join() asserts on a process that never started
                self._proc.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._proc = None
        self._conn = None
