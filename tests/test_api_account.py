"""/v1/me, /v1/collections, /v1/documents/{id}/file and /v1/jobs on the fake backend: shapes, scopes, isolation."""

import time

import pytest
from litestar.testing import TestClient

from assistant.api.account_routes import _inline
from assistant.app import create_app
from tests.api_helpers import auth, build_home, settings_for


@pytest.fixture(scope="module")
def home(tmp_path_factory, module_database_url):  # a home per storage backend: the tests change its files
    return build_home(tmp_path_factory.mktemp("account"))


@pytest.fixture(scope="module")
def client(home, module_database_url):  # on SQLite and on PostgreSQL
    app = create_app(settings_for(home, module_database_url, server={"rate_limit_per_minute": 10_000}),
                     background_load=False)
    with TestClient(app) as client:
        db = app.state.services.db
        client.admin = auth(db.keys.create("root", "admin")[1])
        client.reader = auth(db.keys.create("reader", "chat", ["default", "hr"])[1])  # hr has no document yet
        client.writer = auth(db.keys.create("writer", "chat,ingest", ["default"])[1])
        client.other_writer = auth(db.keys.create("other", "ingest", ["default"])[1])
        client.ingest_only = auth(db.keys.create("loader", "ingest", ["restricted"])[1])
        yield client


def documents(client, headers=None):
    return {(d["collection"], d["name"]): d for d in client.get("/v1/documents", headers=headers or client.admin).json()["documents"]}


def test_me_describes_the_calling_key(client):
    me = client.get("/v1/me", headers=client.reader).json()
    assert me["name"] == "reader" and me["scopes"] == ["chat"] and me["collections"] == ["default", "hr"]
    assert me["all_collections"] is False and me["is_admin"] is False and len(me["key_id"]) == 12
    admin = client.get("/v1/me", headers=client.admin).json()
    assert admin["scopes"] == ["chat", "ingest", "eval", "admin"] and admin["is_admin"] and admin["all_collections"]
    assert client.get("/v1/me", headers=client.ingest_only).status_code == 200  # any valid key
    assert client.get("/v1/me").status_code == 401


def test_collections_list_only_what_the_key_may_read(client):
    mine = client.get("/v1/collections", headers=client.reader).json()["collections"]
    assert mine == [{"name": "default", "documents": 2}, {"name": "hr", "documents": 0}]
    everything = client.get("/v1/collections", headers=client.admin).json()["collections"]
    assert everything == [{"name": "default", "documents": 2}, {"name": "restricted", "documents": 1}]
    refused = client.get("/v1/collections", headers=client.ingest_only)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"


def test_the_original_of_an_ingested_file_is_served_while_unchanged(client, home):
    doc = documents(client)[("default", "travel.md")]
    response = client.get(f"/v1/documents/{doc['id']}/file", headers=client.reader)
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"# Travel policy") and len(response.content) == doc["size_bytes"]
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"].startswith('inline; filename="travel.md"')
    assert response.headers["x-content-type-options"] == "nosniff"


def test_documents_of_other_collections_look_missing(client):
    secret = documents(client)[("restricted", "secret.md")]
    for headers in (client.reader, client.writer):
        response = client.get(f"/v1/documents/{secret['id']}/file", headers=headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "document_not_found"
    assert client.get("/v1/documents/999999/file", headers=client.admin).json()["error"]["code"] == "document_not_found"
    assert client.get(f"/v1/documents/{secret['id']}/file", headers=client.admin).status_code == 200


def wait_for(client, job_id, headers):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_uploads_are_kept_and_served_jobs_listed_per_key(client, home):
    content = "# Parking\n\nThe garage opens at 6:00. Visitors park on level -2.\n".encode()
    name = "parking.md"
    upload = client.post("/v1/documents", headers=client.writer, files={"files": (name, content, "text/markdown")},
                         data={"collection": "default"})
    assert upload.status_code == 202, upload.text
    assert wait_for(client, upload.json()["job_id"], client.writer)["status"] == "done"
    stored = documents(client)[("default", name)]
    response = client.get(f"/v1/documents/{stored['id']}/file", headers=client.reader)
    assert response.status_code == 200 and response.content == content

    jobs = client.get("/v1/jobs", headers=client.writer).json()["jobs"]
    assert [j["id"] for j in jobs] == [upload.json()["job_id"]]
    assert set(jobs[0]) >= {"id", "status", "collection", "inputs", "report", "created_at", "finished_at"}
    assert client.get("/v1/jobs", headers=client.other_writer).json()["jobs"] == []  # another key's job is invisible
    assert upload.json()["job_id"] in [j["id"] for j in client.get("/v1/jobs", headers=client.admin).json()["jobs"]]
    assert client.get("/v1/jobs", headers=client.reader).status_code == 403  # chat-only key

    (home / "documents" / "default" / name).write_bytes(content + b"edited\n")  # changed since ingestion
    gone = client.get(f"/v1/documents/{stored['id']}/file", headers=client.reader)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "file_unavailable"


def test_content_disposition_never_carries_quotes_or_raw_unicode():
    header = _inline('rapport "final" ü\r\n.pdf')
    assert header == "inline; filename=\"rapport _final_ ___.pdf\"; filename*=UTF-8''rapport%20%22final%22%20%C3%BC%0D%0A.pdf"
    header.encode("latin-1")  # a valid header value
