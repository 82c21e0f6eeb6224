"""Dependency audit: requirements.lock fully pinned, and known vulnerabilities of the locked versions.

    .venv/bin/python scripts/audit_deps.py                      # pins + vulnerabilities (OSV), prints a report
    .venv/bin/python scripts/audit_deps.py --osv-db all.zip     # offline: OSV's PyPI export (zip or unzipped dir)
    OSV_DB=/srv/osv/PyPI .venv/bin/python scripts/audit_deps.py --installed

Vulnerability data, first found wins: `--osv-db` / $OSV_DB (OSV's export of the PyPI ecosystem,
https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip, fetched by whoever maintains the CI
image); else OSV's query API when it answers (`--osv-url`); else no data: the vulnerability part is
skipped with exit code 4 and the reason printed. pip-audit is not used: on a network that reaches PyPI's
project pages but not its per-version JSON (this one), its PyPI service marks every package "not found
on PyPI" and still prints "No known vulnerabilities found" with exit 0, a false all-clear.

Known vulnerabilities are always printed; the exit code is 1 only for those without an entry in the
allow-list (scripts/audit_allowlist.yaml: id, package, reason, optional expires). Exit codes: 0 clean,
1 unpinned lines, version drift (--installed) or vulnerabilities not allowed, 2 usage error (a bad
allow-list), 4 pins fine but no vulnerability data reachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*(?P<version>[A-Za-z0-9.+!_-]+)\s*(;.*)?$")
_SETUP_PIN = re.compile(r"pip install[^\n]*?\s([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)")
PROBE_TIMEOUT_S = 5.0  # one query to the OSV API before relying on it


def canonical(name: str) -> str:
    """PEP 503 name: case and runs of -_. do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Finding:
    package: str
    version: str
    id: str
    aliases: list[str] = field(default_factory=list)
    summary: str = ""
    fixed: list[str] = field(default_factory=list)
    allowed_because: str = ""


# --- pins ------------------------------------------------------------------------------------------
def read_pins(lock: Path) -> tuple[dict[str, str], list[str]]:
    """({canonical name: version}, problems): every requirement line must be `name==version`."""
    pins: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("#") or line.startswith("--hash"):
            continue
        match = _PIN.match(line)
        if match is None:
            problems.append(f"{lock.name}:{number}: not pinned with '==': {raw.strip()}")
            continue
        name = canonical(match["name"])
        if name in pins and pins[name] != match["version"]:
            problems.append(f"{lock.name}:{number}: {name} pinned twice ({pins[name]} and {match['version']})")
        pins[name] = match["version"]
    return pins, problems


def setup_pins(setup_sh: Path) -> dict[str, str]:
    """Packages scripts/setup.sh installs outside the lock (`pip install --no-deps X==V`)."""
    if not setup_sh.is_file():
        return {}
    return {canonical(n): v for n, v in _SETUP_PIN.findall(setup_sh.read_text(encoding="utf-8"))}


def installed_drift(pins: dict[str, str]) -> list[str]:
    """Locked packages missing from, or at another version in, the running environment."""
    from importlib.metadata import PackageNotFoundError, version

    problems = []
    for name, wanted in sorted(pins.items()):
        try:
            found = version(name)
        except PackageNotFoundError:
            problems.append(f"{name}=={wanted} is locked but not installed")
            continue
        if found.split("+", 1)[0] != wanted.split("+", 1)[0]:  # torch's "+cpu" local label is not a different release
            problems.append(f"{name} is locked at {wanted} but {found} is installed")
    return problems


# --- OSV records ------------------------------------------------------------------------------------
def affects(record: dict, package: str, version: str) -> list[str] | None:
    """None if the OSV `record` does not affect package==version, else the versions that fix it."""
    current = _version(version)
    if record.get("withdrawn"):
        return None
    for affected in record.get("affected", []):
        pkg = affected.get("package", {})
        if pkg.get("ecosystem") != "PyPI" or canonical(pkg.get("name", "")) != package:
            continue
        fixed = [e["fixed"] for r in affected.get("ranges", []) for e in r.get("events", []) if "fixed" in e]
        if version in affected.get("versions", []):
            return fixed
        if current is not None and any(_in_range(r, current) for r in affected.get("ranges", [])
                                       if r.get("type") == "ECOSYSTEM"):
            return fixed
    return None


def _in_range(spec: dict, current: Version) -> bool:
    """OSV range semantics: affected from each `introduced` until the next `fixed` (excluded) or `last_affected`."""
    affected = False
    for event in sorted(spec.get("events", []), key=lambda e: _event_key(e)):
        (kind, value), = event.items()
        point = _version(value)
        if point is None:
            continue
        if kind == "introduced" and current >= point:
            affected = True
        elif kind == "fixed" and current >= point:
            affected = False
        elif kind == "last_affected" and current > point:
            affected = False
    return affected


def _version(text: str) -> Version | None:
    try:
        return Version("0" if text == "0" else text)
    except InvalidVersion:
        return None


def _event_key(event: dict) -> tuple:
    (kind, value), = event.items()
    return _version(value) or Version("0"), {"introduced": 1, "fixed": 0, "last_affected": 2}.get(kind, 3)


def load_osv_db(path: Path) -> dict[str, list[dict]]:
    """OSV records by canonical package name, from OSV's export (all.zip) or a directory of its JSON files."""
    if path.is_dir():
        texts = (p.read_text(encoding="utf-8") for p in sorted(path.rglob("*.json")))
    elif zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        texts = (archive.read(n).decode("utf-8") for n in archive.namelist() if n.endswith(".json"))
    else:
        raise ValueError(f"{path} is neither a directory nor a zip of OSV JSON records")
    by_package: dict[str, list[dict]] = {}
    for text in texts:
        record = json.loads(text)
        for affected in record.get("affected", []):
            if affected.get("package", {}).get("ecosystem") == "PyPI":
                by_package.setdefault(canonical(affected["package"]["name"]), []).append(record)
    return by_package


def scan_offline(pins: dict[str, str], db: dict[str, list[dict]]) -> list[Finding]:
    findings = []
    for name, version in sorted(pins.items()):
        for record in db.get(name, []):
            fixed = affects(record, name, version)
            if fixed is not None:
                findings.append(Finding(name, version, record["id"], record.get("aliases", []),
                                        record.get("summary", ""), fixed))
    return _dedupe(findings)


def scan_online(pins: dict[str, str], base_url: str, timeout_s: float) -> list[Finding]:
    """One batch query to OSV's API, then each reported record fetched for its summary and fixes."""
    names = sorted(pins)
    queries = [{"package": {"name": n, "ecosystem": "PyPI"}, "version": pins[n]} for n in names]
    answer = _fetch(f"{base_url}/v1/querybatch", timeout_s, {"queries": queries})
    findings = []
    for name, result in zip(names, answer.get("results", [])):
        for vuln in result.get("vulns", []):
            record = _fetch(f"{base_url}/v1/vulns/{vuln['id']}", timeout_s)
            fixed = affects(record, name, pins[name])
            findings.append(Finding(name, pins[name], record["id"], record.get("aliases", []),
                                    record.get("summary", ""), fixed or []))
    return _dedupe(findings)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, unique = set(), []
    for f in findings:
        if (f.package, f.id) not in seen:
            seen.add((f.package, f.id))
            unique.append(f)
    return unique


def _fetch(url: str, timeout_s: float, body: dict | None = None) -> dict:
    """GET, or POST `body` as JSON; the answer's JSON."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())


def osv_reachable(base_url: str) -> str | None:
    """None if OSV's API answers a query, else why not."""
    try:
        _fetch(f"{base_url}/v1/query", PROBE_TIMEOUT_S, {"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "0"})
        return None
    except (OSError, urllib.error.URLError, ValueError) as exc:
        return f"{base_url} unreachable ({getattr(exc, 'reason', exc)})"


# --- allow-list --------------------------------------------------------------------------------------
def read_allowlist(path: Path, today: dt.date) -> dict[tuple[str, str], str]:
    """{(canonical package, id): reason} of entries in force; ValueError for an entry without a reason."""
    if not path.is_file():
        return {}
    entries = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("allow") or []
    allowed = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("package"):
            raise ValueError(f"{path.name}: entry {number} needs 'id' and 'package'")
        if not str(entry.get("reason") or "").strip():
            raise ValueError(f"{path.name}: entry {number} ({entry['id']}) has no reason: say why it is accepted")
        expires = entry.get("expires")
        if expires and dt.date.fromisoformat(str(expires)) < today:
            continue  # an expired acceptance no longer hides the finding
        allowed[(canonical(entry["package"]), str(entry["id"]))] = str(entry["reason"]).strip()
    return allowed


def apply_allowlist(findings: list[Finding], allowed: dict[tuple[str, str], str]) -> None:
    for f in findings:
        for ident in (f.id, *f.aliases):
            if (f.package, ident) in allowed:
                f.allowed_because = allowed[(f.package, ident)]


# --- command ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--setup", type=Path, default=ROOT / "scripts" / "setup.sh",
                        help="also audit what this script pins outside the lock")
    parser.add_argument("--allowlist", type=Path, default=ROOT / "scripts" / "audit_allowlist.yaml")
    parser.add_argument("--osv-db", type=Path, default=os.environ.get("OSV_DB") or None)
    parser.add_argument("--osv-url", default=os.environ.get("OSV_API_URL", "https://api.osv.dev"))
    parser.add_argument("--timeout-s", type=float, default=30.0, help="per OSV API request, in seconds")
    parser.add_argument("--installed", action="store_true", help="also fail if the environment differs from the lock")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    args = parser.parse_args(argv)

    pins, problems = read_pins(args.lock)
    audited = {**pins, **setup_pins(args.setup)}
    if args.installed:
        problems += installed_drift(pins)
    try:
        allowed = read_allowlist(args.allowlist, dt.date.today())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    findings: list[Finding] = []
    source, skipped = "", ""
    if args.osv_db:
        source = f"OSV export {args.osv_db}"
        findings = scan_offline(audited, load_osv_db(args.osv_db))
    elif (why := osv_reachable(args.osv_url)) is None:
        source = f"OSV API {args.osv_url}"
        findings = scan_online(audited, args.osv_url, args.timeout_s)
    else:
        skipped = f"no vulnerability data: {why}, and no --osv-db / OSV_DB export given"
    apply_allowlist(findings, allowed)
    blocking = [f for f in findings if not f.allowed_because]

    report = {"lock": str(args.lock), "packages": len(audited), "pin_problems": problems, "source": source,
              "skipped": skipped, "findings": [vars(f) for f in findings], "blocking": len(blocking)}
    if args.json:
        print(json.dumps(report, indent=2))
    out = sys.stderr if args.json else sys.stdout
    print(f"{len(pins)} locked packages (+{len(audited) - len(pins)} pinned by setup.sh); "
          f"{len(problems)} pin problem(s)", file=out)
    for problem in problems:
        print(f"  PIN  {problem}", file=out)
    if skipped:
        print(f"SKIPPED vulnerability check: {skipped}", file=out)
    else:
        print(f"vulnerabilities ({source}): {len(findings)} known, {len(blocking)} not allow-listed", file=out)
    for f in findings:
        status = f"allowed: {f.allowed_because}" if f.allowed_because else "NOT ALLOWED"
        fix = f" (fixed in {', '.join(f.fixed)})" if f.fixed else ""
        print(f"  VULN {f.package}=={f.version} {f.id} {' '.join(f.aliases[:2])}{fix}: {f.summary[:100]} [{status}]",
              file=out)
    if problems or blocking:
        return 1
    return 4 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
