"""The server side of bench/soak.py: `ragtune serve` in its own process, and its RSS sampled from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import _common as common
import httpx


def server_env(real: bool, home: Path, max_queue: int, fake_delay_s: float, max_new_tokens: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")}
    env.update({
        "RAGTUNE_HOME": str(home), "RAGTUNE_PROFILE": "default" if real else "test",
        "RAGTUNE_SERVER__MAX_QUEUE": str(max_queue), "RAGTUNE_SERVER__RATE_LIMIT_PER_MINUTE": "1000000",
        "RAGTUNE_GENERATOR__MAX_NEW_TOKENS": str(max_new_tokens),
        "PYTHONPATH": str(common.PROJECT),
    })
    if real:
        env["RAGTUNE_GENERATOR__CACHE_DIR"] = str(common.CACHE_ROOT / "models")
    else:
        env["RAGTUNE_GENERATOR__FAKE_DELAY_S"] = str(fake_delay_s)
    return env


class Server:
    """`ragtune serve` in its own process group on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "assistant.cli", "serve", "--port", str(self.port), "--workers", str(workers)],
                cwd=common.PROJECT,
                env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout_s: float = 600) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited ({self.proc.returncode}); see {self.log}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"server not ready after {timeout_s} s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class RssSampler(threading.Thread):
    """(seconds since start, server RSS MiB, RSS MiB of server + child processes) every `every_s`."""

    def __init__(self, pid: int, every_s: float):
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._halt.is_set():
            main = rss_mib(self.pid)
            self.samples.append((round(time.monotonic() - started, 1), main,
                                 main + sum(rss_mib(c) for c in children(self.pid))))
            self._halt.wait(self.every_s)

    def stop(self) -> list[tuple[float, float, float]]:
        self._halt.set()
        self.join()
        return self.samples


