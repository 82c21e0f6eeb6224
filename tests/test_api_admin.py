"""Admin routes on the fake backend: keys, adapters (promotion and rollback on the running app), eval scorecards."""

import json

import pytest
from litestar.testing import TestClient

from assistant.app import create_app
from finetune.registry import AdapterRegistry
from tests.api_helpers import auth, build_home, settings_for

ADMIN_ROUTES = [
    ("GET", "/v1/keys", None), ("POST", "/v1/keys", {"name": "x", "scopes": ["chat"]}),
    ("DELETE", "/v1/keys/abc", None), ("GET", "/v1/adapters", None),
    ("POST", "/v1/adapters/assistant/promote", {"version": 1}), ("POST", "/v1/adapters/assistant/rollback", None),
    ("GET", "/v1/evals", None), ("GET", "/v1/evals/latest/scorecard", None),
]


def add_version(root, name, version, **metadata):
    """A registry version the fake generator can load (it only needs the directory)."""
    path = root / name / f"v{version}"
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    meta = {"name": name, "version": f"v{version}", "created_at": 1_790_000_000.0 + version,
            "training": {"best_val_loss": 1.5 / version, "steps": 10 * version, "train_losses": [2.0]},
            "dataset": {"train_examples": 40, "val_examples": 8}, "eval": {}, **metadata}
    (path / "metadata.json").write_text(json.dumps(meta))


def add_run(root, run_id, started, scorecard=True):
    path = root / run_id
    path.mkdir(parents=True)
    summary = {"variants": {"rag": {"token_f1": 0.41}, "rag+lora": {"token_f1": 0.47}},
               "run": {"started": started, "questions": 12, "golden": "g.jsonl", "judge": None}, "gates": []}
    (path / "summary.json").write_text(json.dumps(summary))
    if scorecard:
        (path / "scorecard.html").write_text(f"<!doctype html><title>{run_id}</title><h1>Scorecard {run_id}</h1>")


@pytest.fixture(scope="module")
def home(tmp_path_factory, module_database_url):  # a home per storage backend: the tests change its files
    home = build_home(tmp_path_factory.mktemp("admin"))
    adapters = home / "adapters"
    add_version(adapters, "assistant", 1)
    add_version(adapters, "assistant", 2, eval={"scorecard:r1:rag+lora": {"metrics": {"token_f1": 0.47}}})
    add_version(adapters, "helper", 1)  # never promoted before start-up
    add_version(adapters, "assistant", 3, integrity={"files": {"adapter_config.json": {"size": 2, "sha256": "0" * 64}}})
    AdapterRegistry(adapters).promote("assistant@v1")
    add_run(home / "evals", "20261101-100000", "2026-11-01T10:00:00+00:00")
    add_run(home / "evals", "20261102-100000", "2026-11-02T10:00:00+00:00", scorecard=False)
    (home / "evals" / "not-a-run").mkdir()
    return home


@pytest.fixture(scope="module")
def client(home, module_database_url):  # on SQLite and on PostgreSQL
    app = create_app(settings_for(home, module_database_url, server={"rate_limit_per_minute": 10_000}),
                     background_load=False)
    with TestClient(app) as client:
        db = app.state.services.db
        client.admin = auth(db.keys.create("root", "admin")[1])
        client.chat = auth(db.keys.create("agent", "chat,ingest", all_collections=True)[1])
        yield client


@pytest.mark.parametrize("method,path,body", ADMIN_ROUTES)
def test_admin_routes_need_the_admin_scope(client, method, path, body):
    response = client.request(method, path, json=body, headers=client.chat)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope", response.text
    assert client.request(method, path, json=body).status_code == 401  # no key at all


def test_create_list_and_revoke_a_key_takes_effect_at_once(client):
    created = client.post("/v1/keys", headers=client.admin, json={"name": "widget", "scopes": ["chat"],
                                                                   "collections": ["default"],
                                                                   "allowed_origins": ["https://Tickets.example.com"]})
    assert created.status_code == 201, created.text
    body = created.json()
    key, plaintext = body["key"], body["api_key"]
    assert plaintext.startswith("rt_") and key["prefix"] == plaintext[:11]
    assert key["allowed_origins"] == ["https://tickets.example.com"] and key["all_collections"] is False
    assert set(key) == {"id", "name", "prefix", "scopes", "collections", "all_collections", "allowed_origins",
                        "created_at", "last_used_at", "revoked_at"}
    assert client.get("/v1/me", headers=auth(plaintext)).json()["name"] == "widget"

    listed = client.get("/v1/keys", headers=client.admin).json()["keys"]
    assert [k for k in listed if k["id"] == key["id"]] and plaintext not in json.dumps(listed)

    revoked = client.delete(f"/v1/keys/{key['id']}", headers=client.admin)
    assert revoked.status_code == 200 and revoked.json()["key"]["revoked_at"]
    refused = client.get("/v1/me", headers=auth(plaintext))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert client.delete(f"/v1/keys/{key['id']}", headers=client.admin).status_code == 200  # idempotent
    missing = client.delete("/v1/keys/nosuchkey", headers=client.admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "key_not_found"


def test_a_key_without_collections_reads_all_like_the_cli(client):
    key = client.post("/v1/keys", headers=client.admin, json={"name": "all", "scopes": ["chat"]}).json()["key"]
    assert key["all_collections"] is True and key["collections"] == []


@pytest.mark.parametrize("body,code", [
    ({"name": "w", "scopes": ["chat", "ingest"], "allowed_origins": ["https://t.example"]}, "invalid_key_spec"),
    ({"name": "w", "scopes": ["chat"], "allowed_origins": ["https://t.example/path"]}, "invalid_key_spec"),
    ({"name": "w", "scopes": ["chat"], "allowed_origins": ["*"]}, "invalid_key_spec"),
    ({"name": "w", "scopes": ["admin"], "collections": ["default"]}, "invalid_key_spec"),
    ({"name": "w", "scopes": ["chat"], "collections": ["default"], "all_collections": True}, "invalid_key_spec"),
    ({"name": "w", "scopes": ["root"]}, "invalid_request"),
    ({"name": "", "scopes": ["chat"]}, "invalid_request"),
    ({"name": "w", "scopes": []}, "invalid_request"),
    ({"name": "w", "scopes": ["chat"], "owner": "me"}, "invalid_request"),
])
def test_invalid_key_specs_are_400(client, body, code):
    response = client.post("/v1/keys", headers=client.admin, json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == code, response.text


def answer_adapter(client, **extra):
    body = client.post("/v1/chat", headers=client.chat, json={"message": "hotel rate cap Berlin", **extra}).json()
    return body["answer"]["adapter"], body["answer"]["text"]


def test_adapters_listed_promoted_and_rolled_back_on_the_running_server(client, home):
    listed = {a["ref"]: a for a in client.get("/v1/adapters", headers=client.admin).json()["adapters"]}
    assert set(listed) == {"assistant@v1", "assistant@v2", "assistant@v3", "helper@v1"}
    v2 = listed["assistant@v2"]
    assert (v2["name"], v2["version"], v2["promoted"]) == ("assistant", 2, False) and listed["assistant@v1"]["promoted"]
    assert v2["scorecards"] == {"scorecard:r1:rag+lora": {"metrics": {"token_f1": 0.47}}}
    assert v2["metrics"]["best_val_loss"] == 0.75 and v2["metrics"]["train_examples"] == 40
    assert v2["created_at"].startswith("2026-")
    assert answer_adapter(client)[0] == "assistant"  # the promoted v1, loaded at start-up

    promoted = client.post("/v1/adapters/assistant/promote", headers=client.admin, json={"version": 2})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["adapter"]["ref"] == "assistant@v2" and promoted.json()["applied"] is True
    adapter, text = answer_adapter(client)
    assert adapter == "assistant@v2" and text.startswith("(assistant@v2) ")  # the next chat, no restart
    assert answer_adapter(client, adapter="assistant")[0] == "assistant@v2"
    assert AdapterRegistry(home / "adapters").promoted("assistant").version == "v2"  # what a restart reads

    rolled = client.post("/v1/adapters/assistant/rollback", headers=client.admin)
    assert rolled.status_code == 200 and rolled.json()["adapter"]["ref"] == "assistant@v1"
    assert answer_adapter(client)[0] == "assistant@v1"
    again = client.post("/v1/adapters/assistant/rollback", headers=client.admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "no_earlier_version"


def test_a_corrupt_version_is_never_promoted(client, home):
    before = AdapterRegistry(home / "adapters").promoted("assistant").version
    response = client.post("/v1/adapters/assistant/promote", headers=client.admin, json={"version": 3})
    assert response.status_code == 409 and response.json()["error"]["code"] == "adapter_corrupt", response.text
    assert AdapterRegistry(home / "adapters").promoted("assistant").version == before


def test_a_name_first_promoted_while_running_becomes_selectable(client):
    assert client.post("/v1/chat", headers=client.chat, json={"message": "hi", "adapter": "helper"}).status_code == 404
    assert client.post("/v1/adapters/helper/promote", headers=client.admin, json={"version": 1}).status_code == 200
    assert answer_adapter(client, adapter="helper")[0] == "helper@v1"


@pytest.mark.parametrize("path,body,status,code", [
    ("/v1/adapters/assistant/promote", {"version": 9}, 404, "adapter_not_found"),
    ("/v1/adapters/nobody/promote", {"version": 1}, 404, "adapter_not_found"),
    ("/v1/adapters/bad%20name%21/promote", {"version": 1}, 404, "adapter_not_found"),
    ("/v1/adapters/assistant/promote", {"version": 0}, 400, "invalid_request"),
    ("/v1/adapters/assistant/promote", {}, 400, "invalid_request"),
    ("/v1/adapters/nobody/rollback", None, 404, "adapter_not_found"),
])
def test_bad_promotions_are_4xx(client, path, body, status, code):
    response = client.post(path, headers=client.admin, json=body)
    assert response.status_code == status and response.json()["error"]["code"] == code, response.text


def test_eval_runs_newest_first_and_their_scorecards(client):
    runs = client.get("/v1/evals", headers=client.admin).json()["runs"]
    assert [r["id"] for r in runs] == ["20261102-100000", "20261101-100000"]  # not-a-run is skipped
    assert runs[0]["variants"] == ["rag", "rag+lora"] and runs[0]["summary"]["rag+lora"]["token_f1"] == 0.47
    assert runs[0]["created_at"] == "2026-11-02T10:00:00+00:00" and runs[0]["has_scorecard"] is False

    page = client.get("/v1/evals/20261101-100000/scorecard", headers=client.admin)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Scorecard 20261101-100000" in page.text and "sandbox" in page.headers["content-security-policy"]
    latest = client.get("/v1/evals/latest/scorecard", headers=client.admin)  # the newest has no scorecard yet
    assert latest.status_code == 404 and latest.json()["error"]["code"] == "scorecard_unavailable"
    for bad in ("nope", "not-a-run", "..hidden", "a%20b"):
        response = client.get(f"/v1/evals/{bad}/scorecard", headers=client.admin)
        assert response.status_code == 404 and response.json()["error"]["code"] == "eval_run_not_found", bad


def test_routes_are_in_the_schema_with_summaries(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    for method, path in [("get", "/v1/me"), ("get", "/v1/collections"), ("get", "/v1/documents/{document_id}/file"),
                         ("get", "/v1/jobs"), ("post", "/v1/tickets/draft"), ("get", "/v1/keys"), ("post", "/v1/keys"),
                         ("delete", "/v1/keys/{key_id}"), ("get", "/v1/adapters"),
                         ("post", "/v1/adapters/{name}/promote"), ("post", "/v1/adapters/{name}/rollback"),
                         ("get", "/v1/evals"), ("get", "/v1/evals/{run_id}/scorecard")]:
        assert paths[path][method]["summary"], (method, path)
