"""`ragtune keys create|list|revoke`: JSON on stdout, the key shown once, revocation takes effect."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from assistant.cli import app
from assistant.db import Database

runner = CliRunner()


def _run(home, *args):
    return runner.invoke(app, ["--home", str(home), "--profile", "test", "keys", *args])


def test_create_list_revoke(tmp_path):
    home = tmp_path / "home"
    created = _run(home, "create", "--name", "web", "--scopes", "chat,ingest", "--collections", "hr,it", "--json")
    assert created.exit_code == 0, created.stderr
    shown = json.loads(created.stdout)
    key, key_id = shown["key"], shown["id"]
    assert key.startswith("rt_") and shown["scopes"] == ["chat", "ingest"] and shown["collections"] == ["hr", "it"]
    assert not shown["all_collections"]

    listed = _run(home, "list", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [key_id] and rows[0]["prefix"] == key[: len(rows[0]["prefix"])]
    assert key not in listed.stdout and key not in listed.stderr  # never shown again
    assert key not in _run(home, "list").stderr

    db = Database(f"sqlite:///{home / 'ragtune.db'}")
    assert db.keys.authenticate(key).id == key_id
    revoked = _run(home, "revoke", key_id, "--json")
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["revoked_at"]
    assert db.keys.authenticate(key) is None
    assert json.loads(_run(home, "list", "--json", "--active").stdout) == []


def test_without_json_the_key_goes_to_a_panel_that_says_it_is_shown_once(tmp_path):
    result = _run(tmp_path, "create", "--name", "ops", "--scopes", "admin")
    assert result.exit_code == 0 and result.stdout == ""
    assert "rt_" in result.stderr and "only time" in result.stderr


def test_bad_scopes_and_unknown_ids_exit_2_with_a_message(tmp_path):
    bad = _run(tmp_path, "create", "--name", "x", "--scopes", "chat,root", "--json")
    assert bad.exit_code == 2 and "unknown scope(s) root" in bad.stderr and bad.stdout == ""
    restricted_admin = _run(tmp_path, "create", "--name", "x", "--scopes", "admin", "--collections", "hr")
    assert restricted_admin.exit_code == 2 and "admin" in restricted_admin.stderr
    missing = _run(tmp_path, "revoke", "nope")
    assert missing.exit_code == 2 and "no API key with id 'nope'" in missing.stderr
