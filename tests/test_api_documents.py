"""Uploads become background ingestion jobs; names never become paths; deletes update the index."""

import time

import pytest
from litestar.testing import TestClient

from assistant.app import create_app
from assistant.errors import ApiError
from assistant.jobs import safe_filename
from tests.api_helpers import auth, build_home, settings_for

EXT = [".md", ".txt", ".pdf"]


@pytest.mark.parametrize("name", ["../../etc/passwd.md", "..\\..\\x.md", "/abs/path/ok.md", "dir/./ok.md"])
def test_uploaded_names_keep_only_a_sanitised_base_name(name):
    base = safe_filename(name, EXT)
    assert "/" not in base and "\\" not in base and not base.startswith(".")


@pytest.mark.parametrize("name,code", [("", "invalid_filename"), ("a\x00.md", "invalid_filename"), ("..", "invalid_filename"),
                                       ("x" * 200 + ".md", "invalid_filename"), ("run.exe", "unsupported_media_type")])
def test_unusable_names_are_refused(name, code):
    with pytest.raises(ApiError) as error:
        safe_filename(name, EXT)
    assert error.value.code == code


def wait_job(client, job_id, headers, timeout_s=240):  # generous: a busy CI host parses slowly
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_upload_ingests_in_the_background_then_list_search_and_delete(tmp_path, database_url):
    home = build_home(tmp_path)  # jobs are stored on SQLite and on PostgreSQL (parametrised)
    app = create_app(settings_for(home, database_url, server={"upload_max_mb": 0.01}), background_load=False)
    with TestClient(app) as client:
        keys = app.state.services.db.keys
        _, writer = keys.create("writer", "chat,ingest", collections=["team"])
        _, other = keys.create("other", "chat,ingest", collections=["default"])
        h = auth(writer)
        files = [("files", ("../../badge.md", b"# Badges\n\nLost badges are replaced at reception for 15 EUR.", "text/markdown")),
                 ("files", ("empty.txt", b"", "text/plain"))]
        response = client.post("/v1/documents", files=files, data={"collection": "team"}, headers=h)
        assert response.status_code == 202, response.text
        job = wait_job(client, response.json()["job_id"], h)
        assert job["status"] == "done" and job["inputs"]["files"] == ["badge.md", "empty.txt"]
        outcomes = {f["path"].rsplit("/", 1)[-1]: f["status"] for f in job["report"]["files"]}
        assert outcomes == {"badge.md": "added", "empty.txt": "failed"}  # one bad file does not sink the batch
        assert client.get(f"/v1/jobs/{job['id']}", headers=auth(other)).status_code == 404  # not your job
        listed = client.get("/v1/documents", params={"collection": "team"}, headers=h)
        assert listed.status_code == 200, listed.text
        docs = listed.json()["documents"]
        assert [d["name"] for d in docs] == ["badge.md"]
        hits = client.post("/v1/search", json={"query": "lost badge replacement", "collections": ["team"]}, headers=h)
        assert hits.json()["results"][0]["document"] == "badge.md"
        # another key cannot delete it, nor upload into a collection it may not use
        assert client.delete(f"/v1/documents/{docs[0]['id']}", headers=auth(other)).status_code == 404
        assert client.post("/v1/documents", files=files[:1], data={"collection": "team"},
                           headers=auth(other)).status_code == 403
        assert client.delete(f"/v1/documents/{docs[0]['id']}", headers=h).status_code == 204
        assert client.get("/v1/documents", params={"collection": "team"}, headers=h).json()["documents"] == []
        gone = client.post("/v1/search", json={"query": "lost badge", "collections": ["team"]}, headers=h)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_collection"  # no documents left
        big = [("files", ("big.md", b"# Big\n\n" + b"word " * 5000, "text/markdown"))]
        too_big = client.post("/v1/documents", files=big, data={"collection": "team"}, headers=h)
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
        # far over the limit: refused by the body limit while reading, before any multipart parsing
        huge = [("files", ("huge.md", b"# Huge\n\n" + b"word " * 40_000, "text/markdown"))]
        refused = client.post("/v1/documents", files=huge, data={"collection": "team"}, headers=h)
        assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"
        assert not list((home / "uploads").glob("*/huge.md"))
        assert not (home / "badge.md").exists() and not (home.parent / "badge.md").exists()
