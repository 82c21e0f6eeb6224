"""Shared fixtures. Every test runs offline: no hub, no telemetry."""

from __future__ import annotations

import os

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "RAGAS_DO_NOT_TRACK": "true",
    "NEMO_GUARDRAILS_NO_USAGE_STATS": "1",
}.items():
    os.environ[_key] = _value
for _key in [k for k in os.environ if k.startswith("RAGTUNE_")]:
    del os.environ[_key]  # a developer's own settings must not leak into tests

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Before any test module's importorskip("openvino_genai"): `import openvino` counts a missing consent file as
# consent and writes ~/intel/ and posts an event unless openvino_telemetry is switched off first.
import assistant.runtime.openvino_export  # noqa: E402,F401
from assistant.settings import Settings, load_settings  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "data"
SAMPLES = PROJECT / "samples" / "kestrel"


@pytest.fixture
def settings(tmp_path) -> Settings:
    """The `test` profile (fake embedder) with a fresh home."""
    return load_settings(profile="test", overrides={"home": str(tmp_path / "home")})


def count_builds(monkeypatch) -> list[int]:
    """Record every full FAISS build (`VectorIndex.build`): its vector count, one entry per build."""
    from ingestion.vector_index import VectorIndex

    calls: list[int] = []
    real = VectorIndex.build.__func__

    def build(cls, ids, vectors, dim, settings):
        calls.append(len(ids))
        return real(cls, ids, vectors, dim, settings)

    monkeypatch.setattr(VectorIndex, "build", classmethod(build))
    return calls


def make_corpus(directory: Path, docs: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    return make_corpus(
        tmp_path / "docs",
        {
            "travel.md": "# Travel policy\n\n## Hotels\n\nHotel rates are capped at 180 EUR per night in Berlin "
            "and 220 EUR per night in London.\n\n## Flights\n\nEconomy class for flights under six hours; business "
            "class above six hours with manager approval.\n",
            "vpn.txt": "Connecting to the VPN\n\nInstall GlobalProtect, sign in with your badge number and approve "
            "the MFA push on your phone. The VPN portal is vpn.kestrel.example.\n",
            "printing.html": "<html><body><h1>Printing</h1><p>Printers on floor 3 use follow-me printing: release "
            "jobs with your badge.</p><table><tr><th>Floor</th><th>Printer</th></tr><tr><td>3</td><td>HP-3A</td></tr>"
            "<tr><td>4</td><td>Canon-4B</td></tr></table></body></html>",
        },
    )


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data set lives beside the project, not in a user's clone)")
    return path


# --- storage backends: SQLite (always) and a real PostgreSQL server (when its binaries are installed) ---------
STORAGE_BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the whole session (started in ~1 s), stopped at the end."""
    from tests.postgres_server import PostgresServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: `apt-get install postgresql` "
                    "(scripts/setup_test_server.sh does it where it can)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed (it is in requirements.lock: run `make setup`)")
    server = PostgresServer(binaries).start()
    yield server
    server.stop()


def database_url_for(backend: str, request, directory: Path) -> str:
    """A fresh, empty database of `backend`: a SQLite file in `directory`, or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{directory / 'ragtune.db'}"
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture(params=STORAGE_BACKENDS)
def database_url(request, tmp_path) -> str:
    """Per test: each storage backend's fresh database URL (parametrised: the test runs once per backend)."""
    return database_url_for(request.param, request, tmp_path)


@pytest.fixture(scope="module", params=STORAGE_BACKENDS)
def module_database_url(request, tmp_path_factory) -> str:
    """Per test module (for module-scoped API clients): each storage backend's fresh database URL."""
    return database_url_for(request.param, request, tmp_path_factory.mktemp("db"))
