"""Schema fuzzing: schemathesis against the app's own OpenAPI schema, in-process (ASGI), every operation.

Three passes over all operations, with the fake backends (a two-collection home from tests/api_helpers):
- valid data with an admin key: no 5xx, status codes, content types, bodies and headers as documented, and every
  operation that declares the API-key scheme refuses the same request without a key or with a wrong one;
- invalid data (schemathesis' negative mode) with an admin key: no 5xx, every error documented and shaped as declared;
- valid data without any key: 401 with the error body from every operation that declares the scheme.

Bounded: FUZZ_EXAMPLES cases per operation and pass (derandomized, so CI sees the same cases every run; set
RAGTUNE_FUZZ_EXAMPLES for a longer local run); about a minute on 2 cores.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.python import asgi

from assistant.app import create_app
from tests.api_helpers import build_home, settings_for

FUZZ_EXAMPLES = int(os.environ.get("RAGTUNE_FUZZ_EXAMPLES", "25"))
PUBLIC = {"GET /healthz", "GET /readyz"}  # the only operations that may answer without a key
# schemathesis also sends made-up credentials for the declared schemes: malformed or unknown, both refused
NO_KEY_CODES = {"missing_api_key", "invalid_api_key", "invalid_authorization", "conflicting_credentials"}

# Operations whose modules do not document some of the statuses they answer yet (they should declare them with
# assistant.api.schemas.error_responses). Only conformance of these statuses is waived: a 5xx, or an operation
# that answers without a key, still fails; and a waiver for a status the schema now documents with the error
# body fails too, so that it gets removed.
_KEYED = {401, 403, 429}
UNDOCUMENTED: dict[str, set[int]] = {}  # operation label -> statuses it answers but does not document yet

load_all_checks()
CONFORMANCE = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance", "response_headers_conformance"]


def checks(*names: str) -> list[Callable]:
    return [CHECKS.get_one(name) for name in names]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture
def fuzzed(home):
    """(app, admin key, schema): a fresh app per test, rate limit lifted since one key sends every case.

    schemathesis runs the app's lifespan itself, from the first request to the end of the test (its pytest
    plugin ends it then); a TestClient's second lifespan would start the job worker twice.
    """
    app = create_app(settings_for(home, server={"rate_limit_per_minute": 1_000_000}), background_load=False)
    _, key = app.state.services.db.keys.create(f"fuzz-admin-{uuid.uuid4().hex[:8]}", "admin", all_collections=True)
    yield app, key, schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    asgi.shutdown_lifespans()  # also when the plugin is disabled (-p no:schemathesis)


def operations(schema) -> list:
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 15, [op.label for op in ops]
    return ops


def declares_key(schema, operation) -> bool:
    security = operation.definition.raw.get("security", schema.raw_schema.get("security"))
    return bool(security)


def fuzz(operation, mode: GenerationMode, send: Callable) -> tuple[int, str | None]:
    """Run up to FUZZ_EXAMPLES cases through `send`; (cases run, the failure found or None)."""
    ran = 0

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        nonlocal ran
        ran += 1
        send(case)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.NEGATIVE:
            return ran, None  # nothing to make invalid (no parameters, no body)
        raise
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - a failure of this operation, reported below
        return ran, f"{operation.label}: {exc}"
    return ran, None


def fuzz_all(schema, mode: GenerationMode, send: Callable) -> None:
    failures, started, counts = [], time.monotonic(), {}
    for operation in operations(schema):
        ran, failure = fuzz(operation, mode, lambda case, op=operation: send(op, case))
        counts[operation.label] = ran
        if failure:
            failures.append(failure)
    print(f"{mode.value}: {sum(counts.values())} cases over {len(counts)} operations in "
          f"{time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures)
    if mode is GenerationMode.POSITIVE:
        assert all(counts.values()), counts  # every operation was exercised


def test_the_schema_declares_the_api_key_and_only_health_is_public(fuzzed):
    _, _, schema = fuzzed
    schemes = schema.raw_schema["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {"type": "http", "scheme": "bearer", "description": schemes["bearerKey"]["description"]}
    assert schemes["apiKeyHeader"]["in"] == "header" and schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert schema.raw_schema["security"] == [{"bearerKey": []}, {"apiKeyHeader": []}]
    public = {op.label for op in operations(schema) if not declares_key(schema, op)}
    assert public == PUBLIC


def validate(op, case, response, headers: dict[str, str] | None, *extra: str) -> None:
    """schemathesis' checks on one response; conformance is skipped only for a waived status."""
    waived = response.status_code in UNDOCUMENTED.get(op.label, set()) and response.status_code < 500
    names = ["not_a_server_error"] if waived else CONFORMANCE
    case.validate_response(response, checks=checks(*names, *extra), headers=headers,
                           transport_kwargs={"headers": dict(headers)} if headers else None)


def test_waivers_are_still_needed(fuzzed):
    _, _, schema = fuzzed
    by_label = {op.label: op for op in operations(schema)}
    for label, statuses in UNDOCUMENTED.items():
        assert label in by_label, f"{label} no longer exists: remove its waiver"
        responses = by_label[label].definition.raw.get("responses", {})
        documented = {s for s in statuses if "ErrorBody" in str(responses.get(str(s), {}))}
        assert not documented, f"{label} now documents {sorted(documented)}: remove them from UNDOCUMENTED"


def test_valid_requests_with_an_admin_key_conform_and_auth_is_enforced(fuzzed):
    app, key, schema = fuzzed
    headers = {"Authorization": f"Bearer {key}", "X-API-Key": key}  # both schemes, one key: either is accepted
    # ignored_auth re-sends each accepted request without the key and with a wrong one: both must be refused.
    fuzz_all(schema, GenerationMode.POSITIVE,
             lambda op, case: validate(op, case, case.call(headers=headers), headers, "ignored_auth"))


def test_invalid_requests_are_documented_4xx_never_5xx(fuzzed):
    app, key, schema = fuzzed
    headers = {"Authorization": f"Bearer {key}", "X-API-Key": key}
    fuzz_all(schema, GenerationMode.NEGATIVE, lambda op, case: validate(op, case, case.call(headers=headers), headers))


def test_without_a_key_every_keyed_operation_is_401(fuzzed):
    _, _, schema = fuzzed

    def send(op, case):
        response = case.call()
        validate(op, case, response, None)
        if declares_key(schema, op):
            assert response.status_code == 401, f"{op.label} answered {response.status_code} without a key"
            assert response.json()["error"]["code"] in NO_KEY_CODES, response.text
        else:
            assert response.status_code in (200, 503), f"{op.label}: {response.status_code}"

    fuzz_all(schema, GenerationMode.POSITIVE, send)
