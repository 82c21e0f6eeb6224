"""Per-key CORS (assistant/origins.py): preflights, allowed and refused origins, chat-only origin keys, isolation."""

import json

import anyio
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from assistant.app import create_app
from assistant.db import Database, KeySpecError, hash_key
from assistant.origins import OriginPolicy
from tests.api_helpers import auth, build_home, json_events, settings_for

WIDGET = "https://tickets.example.com"
INTRANET = "https://intranet.example.com"  # server.cors_origins: any key from there
EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("cors"))


@pytest.fixture(scope="module")
def client(home):
    settings = settings_for(home, server={"rate_limit_per_minute": 10_000, "cors_origins": [INTRANET]})
    app = create_app(settings, background_load=False)
    with TestClient(app) as client:
        keys = app.state.services.db.keys
        widget, client.widget = keys.create("widget", "chat", ["default"], allowed_origins=[WIDGET])
        client.widget_id = widget.id
        client.plain = auth(keys.create("plain", "chat", all_collections=True)[1])
        client.admin = auth(keys.create("root", "admin")[1])
        yield client


def preflight(client, origin, path="/v1/chat"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "authorization, content-type"})


def ask(client, key, origin=None, **body):
    headers = {**(auth(key) if isinstance(key, str) else key), **({"Origin": origin} if origin else {})}
    return client.post("/v1/chat", headers=headers, json={"message": "hotel rate cap Berlin", **body})


@pytest.mark.parametrize("origin", [WIDGET, INTRANET])
def test_preflight_is_204_for_an_allowed_origin(client, origin):
    response = preflight(client, origin)
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == origin and "Origin" in response.headers["vary"]
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert allowed >= {"authorization", "x-api-key", "content-type"}
    assert "POST" in response.headers["access-control-allow-methods"]
    assert preflight(client, origin, "/v1/tickets/draft").status_code == 204


def test_preflight_is_refused_for_other_origins(client):
    for origin in (EVIL, "null", WIDGET + ".evil.example", "http://tickets.example.com"):
        response = preflight(client, origin)
        assert response.status_code == 403 and "access-control-allow-origin" not in response.headers, origin


def test_the_origin_key_works_from_its_origin(client):
    response = ask(client, client.widget, WIDGET)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == WIDGET and "Origin" in response.headers["vary"]
    streamed = ask(client, client.widget, WIDGET, stream=True)
    assert streamed.headers["access-control-allow-origin"] == WIDGET and json_events(streamed.text)[-1][0] == "final"
    draft = client.post("/v1/tickets/draft", headers={**auth(client.widget), "Origin": WIDGET},
                        json={"ticket": "What is the hotel rate cap in Berlin?"})
    assert draft.status_code == 200 and draft.headers["access-control-allow-origin"] == WIDGET


def test_another_origin_is_refused_before_anything_runs(client):
    before = client.get("/v1/conversations", headers=auth(client.widget)).json()["conversations"]
    response = ask(client, client.widget, EVIL)
    assert response.status_code == 403 and response.json()["error"]["code"] == "origin_forbidden"
    assert "access-control-allow-origin" not in response.headers
    assert client.get("/v1/conversations", headers=auth(client.widget)).json()["conversations"] == before


def test_a_key_without_that_origin_is_refused_from_it(client):
    response = ask(client, client.plain, WIDGET)
    assert response.status_code == 403 and response.json()["error"]["code"] == "origin_forbidden"
    assert ask(client, client.plain, INTRANET).headers["access-control-allow-origin"] == INTRANET  # server-wide


def test_requests_without_origin_or_from_the_server_itself_are_untouched(client):
    for origin in (None, "http://testserver.local"):  # the chat and admin pages call with their own origin
        response = ask(client, client.plain, origin)
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    public = client.get("/healthz", headers={"Origin": EVIL})  # only API paths are policed
    assert public.status_code == 200 and "access-control-allow-origin" not in public.headers
    assert client.get("/healthz", headers={"Origin": INTRANET}).headers["access-control-allow-origin"] == INTRANET


def test_origin_keys_are_chat_only(client, home):
    body = {"name": "w", "scopes": ["chat", "ingest"], "allowed_origins": [WIDGET]}
    response = client.post("/v1/keys", headers=client.admin, json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_key_spec"
    with pytest.raises(KeySpecError):
        client.app.state.services.db.keys.create("w", "admin", allowed_origins=[WIDGET])
    upload = client.post("/v1/documents", headers={**auth(client.widget), "Origin": WIDGET},
                         files={"files": ("a.md", b"# A\n\ntext\n", "text/markdown")})
    assert upload.status_code == 403 and upload.json()["error"]["code"] == "insufficient_scope"


def test_an_origin_key_sees_only_its_collections(client):
    headers = {**auth(client.widget), "Origin": WIDGET}
    names = [c["name"] for c in client.get("/v1/collections", headers=headers).json()["collections"]]
    assert names == ["default"]
    secret = next(d for d in client.get("/v1/documents", headers=client.admin).json()["documents"]
                  if d["collection"] == "restricted")
    assert client.get(f"/v1/documents/{secret['id']}/file", headers=headers).status_code == 404
    draft = client.post("/v1/tickets/draft", headers=headers, json={"ticket": "CEO salary?", "collections": ["restricted"]})
    assert draft.status_code == 403 and draft.json()["error"]["code"] == "collection_forbidden"
    answer = client.post("/v1/tickets/draft", headers=headers, json={"ticket": "What does the CEO earn a year?"}).json()
    assert all(c["collection"] == "default" for c in answer["citations"])


def test_a_revoked_origin_key_gets_a_readable_401_and_its_origin_closes(client):
    keys = client.app.state.services.db.keys
    record, key = keys.create("short-lived", "chat", ["default"], allowed_origins=["https://old.example"])
    assert preflight(client, "https://old.example").status_code == 204
    assert client.delete(f"/v1/keys/{record.id}", headers=client.admin).status_code == 200
    response = ask(client, key, "https://old.example")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["access-control-allow-origin"] == "https://old.example"  # the widget can say why
    assert preflight(client, "https://old.example").status_code == 403  # no active key allows it any more


def test_keys_made_before_the_migration_get_no_origins(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate("0001")
    with db.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO api_keys (id, name, key_hash, prefix, scopes, collections, all_collections, created_at) "
            "VALUES ('k1', 'old', :hash, 'rt_old', '[\"chat\"]', '[]', 1, '2026-01-01 00:00:00')"),
            {"hash": hash_key("rt_old-key")})
    db.migrate()
    record = db.keys.authenticate("rt_old-key")
    assert record is not None and record.allowed_origins == () and db.keys.origins() == set()


def test_a_handlers_own_allow_origin_is_replaced_not_doubled():
    """widget.js answers `Access-Control-Allow-Origin: *`; a server-wide origin must not get a second header."""
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"access-control-allow-origin", b"*"), (b"vary", b"Accept")]})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/widget.js", "method": "GET",
             "headers": [(b"origin", INTRANET.encode()), (b"host", b"api.example")]}
    anyio.run(OriginPolicy([INTRANET], None, 60).middleware(app), scope, None, send)
    headers = sent[0]["headers"]
    assert [v for k, v in headers if k == b"access-control-allow-origin"] == [INTRANET.encode()]
    assert (b"vary", b"Accept, Origin") in headers


def test_keys_create_takes_origins_on_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from assistant.cli import app as cli

    def run(*args):
        return CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), "--profile", "test", "keys", "create", *args])

    made = run("--name", "widget", "--collections", "hr", "--origin", WIDGET, "--origin", "http://localhost:5173", "--json")
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["allowed_origins"] == [WIDGET, "http://localhost:5173"]
    assert run("--name", "w", "--scopes", "chat,ingest", "--origin", WIDGET).exit_code == 2  # chat-only
    assert run("--name", "w", "--origin", "tickets.example.com").exit_code == 2  # not an origin
