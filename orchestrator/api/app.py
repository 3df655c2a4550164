"""The FastAPI application: routes, the error contract, request limits and the console.

Errors: every error answers ``{"detail": message, "hint": ..., "error": kind}`` with a 4xx
for anything the caller can fix (400 bad usage, 401 no valid token, 403 role, 404 unknown,
409 not yet possible, 413 body too large, 422 invalid body or spec naming each field) and
503 when the Ray cluster cannot be reached. An unexpected exception is a 500 that names no
internals (the server's log has the traceback).

Cross-origin: state-changing requests that carry an ``Origin`` other than the server's own
are refused (403) before any route runs, and no CORS header is ever sent, so a page on
another origin can neither forge a change nor read an answer. Tokens travel only in the
``Authorization`` header (no cookies), which another origin cannot make a browser send.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator import __version__
from orchestrator.api.errors import ERROR_RESPONSES, TEXT_RESPONSE
from orchestrator.config import Settings
from orchestrator.errors import (
    ClusterError,
    EndpointError,
    NotFoundError,
    OrchestratorError,
    SpecError,
    UsageError,
)
from orchestrator.registry import Registry

log = logging.getLogger("orch.api")
CONSOLE_DIR = Path(__file__).parent / "console"
MAX_BODY_BYTES = 1 << 20  # a job spec or a predict request; model files never travel here
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


def error_body(status: int, detail: str, error: str, hint: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "error": error}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status)


def refused(status: int, detail: str, error: str) -> JSONResponse:
    """An answer of the guard itself (no route ran), with the security headers."""
    response = error_body(status, detail, error)
    for key, value in SECURITY_HEADERS:
        response.headers[key.decode()] = value.decode()
    return response


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or str(loc[0] if loc else "request")


class Guard:
    """ASGI middleware: refuses oversized bodies (413) and cross-origin changes (403), and
    adds the security headers to every answer."""

    def __init__(
        self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, origins: tuple[str, ...] = ()
    ) -> None:
        self.app, self.max_body, self.origins = app, max_body, frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] in UNSAFE_METHODS:
            origin = headers.get("origin")
            if origin and origin != own_origin(scope, headers) and origin not in self.origins:
                await refused(
                    403, f"cross-origin request from {origin} refused", "CrossOriginError"
                )(scope, receive, send)
                return

        def too_large(size: str = "") -> JSONResponse:
            limit = f"over the {self.max_body}-byte limit"
            return refused(413, f"request body{size} is {limit}", "PayloadTooLarge")

        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await too_large(f" of {length} bytes")(scope, receive, send)
            return
        if length is None and scope["method"] in UNSAFE_METHODS:
            # no Content-Length (chunked): read the body here, up to the limit, and replay it
            body, more = b"", True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_body:
                    await too_large()(scope, receive, send)
                    return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            receive = replay

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RedactTokens(logging.Filter):
    """Blanks anything shaped like one of our tokens in a log record (a token pasted into a
    URL by mistake would otherwise reach the access log)."""

    PATTERN = re.compile(r"orch_[A-Za-z0-9_\-]{8,}")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.PATTERN.sub("orch_[redacted]", record.msg)
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                self.PATTERN.sub("orch_[redacted]", a) if isinstance(a, str) else a for a in args
            )
        return True


REDACT = RedactTokens()


def redact_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "orch.api"):
        logger = logging.getLogger(name)
        if REDACT not in logger.filters:
            logger.addFilter(REDACT)


STATUS_OF: list[tuple[type[OrchestratorError], int]] = [
    (NotFoundError, 404),
    (UsageError, 400),
    (ClusterError, 503),
]


def status_of(exc: OrchestratorError) -> int:
    """The HTTP status of one of our errors (409: not possible in the current state)."""
    if isinstance(exc, EndpointError):
        # what the endpoint said of the request, passed on, but never as the API's own
        # 401/403 (a missing endpoint key is not a bad API token): those become 400
        if not 400 <= exc.status < 500:
            return 502
        return 400 if exc.status in (401, 403) else exc.status
    return next((status for kind, status in STATUS_OF if isinstance(exc, kind)), 409)


def own_origin(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host", "")
    return f"{scope.get('scheme', 'http')}://{host}"


def create_app(settings: Settings, registry: Registry | None = None) -> FastAPI:
    from orchestrator.api.metrics import Relay, metrics_route
    from orchestrator.api.routes import admin, endpoints, jobs
    from orchestrator.api.routes import registry as registry_routes

    app = FastAPI(
        title="orch",
        version=__version__,
        summary="Job orchestration for Hugging Face NLP training on Ray",
        docs_url=None,  # Swagger UI loads from a CDN: nothing is fetched from the internet
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    redact_logs()
    app.state.settings = settings
    app.state.registry = registry or Registry(settings.resolved_registry_url)
    app.state.metrics_relay = Relay()
    for module in (jobs, registry_routes, endpoints, admin):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.add_api_route(
        "/metrics",
        metrics_route,
        methods=["GET"],
        tags=["admin"],
        summary="Prometheus metrics",
        responses={**ERROR_RESPONSES, **TEXT_RESPONSE},
    )

    @app.exception_handler(OrchestratorError)
    async def _ours(_: Request, exc: OrchestratorError) -> JSONResponse:
        status = status_of(exc)
        return error_body(status, exc.message, type(exc).__name__, exc.hint)

    @app.exception_handler(SpecError)
    async def _spec(_: Request, exc: SpecError) -> JSONResponse:
        body = {"detail": str(exc), "error": "SpecError", "problems": exc.problems}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        body = {
            "detail": "invalid request: " + "; ".join(problems),
            "error": "RequestValidationError",
            "problems": problems,
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_body(exc.status_code, str(exc.detail), "HTTPError")
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_body(500, "internal error (the server's log has the details)", "Internal")

    if CONSOLE_DIR.is_dir():
        app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.add_middleware(Guard, origins=tuple(settings.server_origins))
    return app
