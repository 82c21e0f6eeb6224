"""Assembles the HTTP server from one Settings object: the only place that wires the app together.

Models load after start-up on a background thread, so /healthz answers at once and /readyz says
when the generator and index are ready (the first start converts the GGUF model: a minute or so).
"""

from __future__ import annotations

import logging
import threading

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from assistant import assembly
from assistant.api import admin_routes, account_routes, ticket_routes
from assistant.api import chat_routes, conversation_routes, document_routes, health_routes, openai_routes
from assistant.api import loop_routes, ui_routes
from assistant.api.errors import HANDLERS
from assistant.api.metrics import Metrics
from assistant.api.services import Services, principal
from assistant.api.services import services as services_of
from assistant.audit import AuditLog
from assistant.conversations import ConversationService
from assistant.inference_queue import InferenceQueue
from assistant.jobs import JobRunner
from assistant.origins import OriginPolicy
from assistant.promotion_watch import PromotionWatcher
from assistant.rate_limit import RateLimiter
from assistant.shared_limits import DatabaseAdmission, DatabaseRateLimiter, worker_id
from assistant.settings import Settings
from ingestion.retriever import Retriever

log = logging.getLogger(__name__)

ROUTES = [
    health_routes.healthz, health_routes.readyz, health_routes.metrics,
    chat_routes.chat, chat_routes.search,
    openai_routes.chat_completions, openai_routes.models,
    document_routes.delete_document, document_routes.get_job,
    conversation_routes.list_conversations, conversation_routes.get_conversation,
    conversation_routes.delete_conversation, conversation_routes.feedback,
    account_routes.me, account_routes.collections, account_routes.document_file, account_routes.list_jobs,
    ticket_routes.draft,
    admin_routes.list_keys, admin_routes.create_key, admin_routes.revoke_key,
    admin_routes.list_adapters, admin_routes.promote_adapter, admin_routes.rollback_adapter,
    admin_routes.list_evals, admin_routes.scorecard,
    *loop_routes.ROUTES,
    *ui_routes.ROUTES,
]

API_KEY_SCHEMES = {
    "bearerKey": SecurityScheme(type="http", scheme="bearer", description="`Authorization: Bearer rt_...`"),
    "apiKeyHeader": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header",
                                   description="`X-API-Key: rt_...` (the same keys)"),
}


def build_services(settings: Settings) -> Services:
    """With `server.shared` (several workers), rate limits and generation admission live in the database, so
    every worker enforces the same per-key limit and one deployment-wide queue bound (assistant/shared_limits.py)."""
    server = settings.server
    db = assembly.database(settings)
    admission, limiter = None, RateLimiter(server.rate_limit_per_minute)
    slots = assembly.generation_slots(settings)
    if server.shared:
        capacity = server.workers * slots + server.max_queue
        admission = DatabaseAdmission(db, capacity, server.admission_ticket_s)
        limiter = DatabaseRateLimiter(db, server.rate_limit_per_minute)
    queue = InferenceQueue(slots, server.max_queue, admission)
    return Services(
        settings=settings,
        db=db,
        jobs=JobRunner(settings, db, lambda: assembly.ingest_job(settings), worker=worker_id()),
        queue=queue,
        limiter=limiter,
        metrics=Metrics(lambda: queue.depth),
        notes={"loading": "generator and index"},
    )


def load_models(svc: Services) -> None:
    """Generator + retriever: seconds once the model is converted; failures are shown by /readyz."""
    settings = svc.settings
    try:
        store = assembly.index_store(settings)
        retriever = Retriever(store, settings.retrieval)
        generator = assembly.generator(settings)
        chat = assembly.chat_service(settings, retriever, generator, svc.queue)
        audit = AuditLog(settings.home / "audit" / "guardrails.jsonl")
        svc.loop = assembly.loop_hooks(settings, svc.db, chat, svc.metrics.observe_drift)
        svc.loaded(chat, ConversationService(chat, retriever, store, svc.db, audit=audit, loop=svc.loop))
        log.warning("ragtune ready: model %s, adapters %s", generator.name, generator.adapters() or "none")
    except Exception as exc:  # noqa: BLE001 - the server stays up and says why it is not ready
        log.exception("loading the model or index failed")
        svc.notes = {"error": f"{type(exc).__name__}: {exc}"}


def upload_router(settings: Settings) -> Router:
    """The upload route under its own body limit, so an oversized upload is refused before it is read.

    upload_max_mb bounds the files; the multipart framing around them gets 64 KiB of slack (the handler
    checks the files' own total exactly). A router per app, because every app has its own settings.
    GET /v1/documents (no body) lives here too: one path must be registered in one place.
    """
    limit = int(settings.server.upload_max_mb * 1024 * 1024) + 64 * 1024
    handlers = [document_routes.upload, document_routes.list_documents]
    return Router(path="/", route_handlers=handlers, request_max_body_size=limit)


def origin_policy(settings: Settings, svc: Services) -> OriginPolicy:
    """CORS: `server.cors_origins` for every key, plus each key's own allowed_origins (see assistant.origins)."""
    return OriginPolicy(settings.server.cors_origins, svc.db.keys, settings.server.cors_max_age_s)


def worker_header(app):
    """Several workers on one port: every response (errors too) says which one answered (X-Ragtune-Worker:
    host:pid), for operators' logs and the multi-worker tests."""
    value = worker_id().encode()

    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-ragtune-worker", value)]}
            await send(message)

        await app(scope, receive, send_with_header)

    return middleware


def create_app(settings: Settings, *, services: Services | None = None, background_load: bool = True) -> Litestar:
    """The server for `settings`; `services` replaces the assembled ones (tests inject their own)."""
    svc = services or build_services(settings)
    watcher = None
    if settings.server.shared:  # (with an openai generator: re-points names at the refs the engine serves)
        watcher = PromotionWatcher(assembly.adapter_registry(settings), lambda: svc._chat,
                                   settings.generator.default_adapter, settings.server.shared_poll_s)

    def startup() -> None:
        svc.jobs.start()
        if watcher is not None:
            watcher.start()
        if svc.ready:
            return
        if background_load:
            threading.Thread(target=load_models, args=(svc,), name="load-models", daemon=True).start()
        else:
            load_models(svc)

    def shutdown() -> None:
        if watcher is not None:
            watcher.stop()
        svc.jobs.stop()
        svc.queue.close()
        if svc.ready:
            svc.chat.generator.close()
        svc.db.dispose()

    app = Litestar(
        route_handlers=[*ROUTES, upload_router(settings)],
        dependencies={"svc": Provide(services_of, sync_to_thread=False), "principal": Provide(principal)},
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        on_startup=[startup],
        on_shutdown=[shutdown],
        # Outermost first: metrics also count the requests the origin policy refuses.
        middleware=[*([worker_header] if settings.server.shared else []), svc.metrics.middleware,
                    origin_policy(settings, svc).middleware],
        request_max_body_size=settings.server.request_max_bytes,

        openapi_config=OpenAPIConfig(
            title="ragtune", version="0.1.0", path="/schema",
            description="Grounded, cited answers from your documents. Every route but /healthz and /readyz needs an "
            "API key: `Authorization: Bearer <key>` or `X-API-Key`.",
            # Declared for the whole document (either scheme will do); public routes lift it with
            # PublicOperation. tests/test_fuzz_schema.py checks that each operation declaring it answers 401 without.
            security=[{"bearerKey": []}, {"apiKeyHeader": []}],
            components=Components(security_schemes=API_KEY_SCHEMES),
        ),
        debug=False,
    )
    app.state.services = svc
    return app


SETTINGS_ENV = "RAGTUNE_SERVE_SETTINGS"  # `ragtune serve --workers N` hands each worker its settings as JSON


def app_from_environment() -> Litestar:
    """The app factory uvicorn's worker processes call (`ragtune serve --workers N`)."""
    import os

    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{SETTINGS_ENV} is not set: start workers with `ragtune serve --workers N`")
    return create_app(Settings.model_validate_json(raw))
