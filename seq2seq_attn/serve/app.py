"""The HTTP server (FastAPI): ``POST /translate``, ``POST /classify``, ``GET /health`` and the OpenAPI page
``/docs``. Concurrent requests are batched by :class:`~.batching.MicroBatcher`; every refused request gets a
4xx JSON body ``{"error": "...", "details": [...]}`` that says what is wrong, and no input stops the server.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .batching import MicroBatcher
from .engines import ClassificationEngine, InputError, TranslationEngine
from .schemas import ClassifyRequest, ClassifyResponse, ErrorResponse, TranslateRequest, TranslateResponse

EXAMPLES = {"translation": '{"sentences": ["Ein Mann fährt Fahrrad ."]}',
            "classification": '{"texts": ["A fine film."]}'}


def _error(status: int, message: str, details: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "details": details or []}, status_code=status)


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc[1:]) if loc and loc[0] == "body" else ".".join(map(str, loc))


def validation_message(errors: list[dict], task: str) -> tuple[str, list[str]]:
    """One line (and a line per field) for pydantic's errors: JSON syntax, a missing body, wrong types."""
    details = [f"{_field(tuple(e['loc'])) or 'body'}: {e['msg']}" for e in errors]
    for e in errors:
        if e.get("type") == "json_invalid":
            return f"request body is not valid JSON: {e.get('ctx', {}).get('error', e['msg'])}", details
        if e.get("type") == "missing" and tuple(e["loc"]) == ("body",):
            return f"request body is empty: send a JSON object such as {EXAMPLES[task]}", details
    return f"invalid request: {details[0]}", details


def _install_error_handlers(app: FastAPI, task: str, max_body: int) -> None:
    @app.middleware("http")
    async def utf8_body(request: Request, call_next):
        if request.method == "POST":
            declared = request.headers.get("content-length", "0")
            if declared.isdigit() and int(declared) > max_body:
                return _error(413, f"request body of {declared} bytes is over the limit of {max_body}")
            body = await request.body()
            if len(body) > max_body:
                return _error(413, f"request body of {len(body)} bytes is over the limit of {max_body}")
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                return _error(400, f"request body is not valid UTF-8: byte 0x{body[e.start]:02x} at offset {e.start}")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = validation_message(list(exc.errors()), task)
        return _error(422, message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(InputError)
    async def refused(request: Request, exc: InputError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:  # a bug, not the client's input
        return _error(500, f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def create_app(engine: TranslationEngine | ClassificationEngine, max_batch: int = 64, max_wait_ms: float = 5.0,
               batching: bool = True) -> FastAPI:
    """The FastAPI app serving ``engine``; the batcher starts and stops with the app (its lifespan)."""
    batcher = MicroBatcher(engine.compute, max_batch, max_wait_ms, batching)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    errors: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 404, 413, 422)}
    app = FastAPI(title="seq2seq_attn server", lifespan=lifespan, responses=errors,
                  description=f"Serves a {engine.task} run. Requests arriving together are computed in one batch.")
    app.state.batcher, app.state.engine = batcher, engine
    # Bytes a request within the limits can need (4 bytes a character in UTF-8, escapes and options besides).
    max_body = engine.limits.max_items * (4 * engine.limits.max_chars + 64) + 65536
    _install_error_handlers(app, engine.task, max_body)

    async def run(key: Any, items: list) -> list:
        try:
            return await batcher.submit(key, items)
        except InputError:
            raise
        except ValueError as e:  # the model refused this input, e.g. longer than its positions
            raise InputError(str(e).splitlines()[0] if str(e) else type(e).__name__) from e

    def wrong_task(path: str) -> None:
        other = "/translate" if engine.task == "translation" else "/classify"
        raise InputError(f"this server runs a {engine.task} run: POST {other} instead of {path}", 404)

    @app.get("/health")
    async def health() -> dict:
        """Liveness, the run served and the batching counters."""
        s = batcher.stats
        return {"status": "ok", **engine.describe(),
                "batching": {"enabled": batcher.enabled, "max_batch": batcher.max_batch,
                             "max_wait_ms": batcher.max_wait * 1000, "calls": s.calls, "requests": s.requests,
                             "items": s.items, "largest_call_requests": s.largest_call_requests, "errors": s.errors}}

    @app.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True)
    async def translate(req: TranslateRequest) -> dict:
        """Translate sentences (beam search; n-best, attention matrices and word alignments on request)."""
        if not isinstance(engine, TranslationEngine):
            wrong_task("/translate")
        engine.limits.check_texts(req.sentences, "sentences")
        key = engine.key(req.beam, req.alpha, req.n_best)
        items = [(s, req.attention, req.alignments) for s in req.sentences]
        return {"translations": await run(key, items)}

    @app.post("/classify", response_model=ClassifyResponse, response_model_exclude_none=True)
    async def classify(req: ClassifyRequest) -> dict:
        """Classify documents: label, probabilities and (on request) each token's attention weight."""
        if not isinstance(engine, ClassificationEngine):
            wrong_task("/classify")
        engine.limits.check_texts(req.texts, "texts")
        return {"results": await run(None, [(t, req.token_weights) for t in req.texts])}

    return app
