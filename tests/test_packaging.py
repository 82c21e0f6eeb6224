"""The wheel carries what a non-editable install needs: every module, the frontend files the server serves, the
guardrail weights, profiles, recipes and migrations (an editable install reads them from the source tree, so only
a real wheel shows what is missing)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("assistant", "ingestion", "finetune", "guardrails", "eval", "frontend")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    """Built from a copy of the tracked files: an in-tree build would reuse a stale build/ directory."""
    tree, out = tmp_path_factory.mktemp("tree"), tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, timeout=300, capture_output=True)
    (wheel,) = out.glob("ragtune-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def tracked_files(package: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", package], cwd=ROOT, capture_output=True, text=True, check=True)
    return listed.stdout.splitlines()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_tracked_file_of_a_package_is_in_the_wheel(wheel_names, package):
    files = tracked_files(package)
    assert files, package
    missing = [f for f in files if f not in wheel_names]
    assert missing == [], f"not in the wheel (pyproject [tool.setuptools.package-data]): {missing}"


def test_the_server_finds_the_frontend_through_the_package():
    from assistant.api import ui_routes
    import frontend

    assert ui_routes.FRONTEND == frontend.ROOT and (frontend.ROOT / "chat" / "index.html").is_file()
