"""The prediction server: a FastAPI app built per process by :func:`create_app`.

The predict path is kept lean: the request is checked and its body read with a size cap and
parsed by ``orjson`` (``_request``), records are checked against precomputed per-feature type
checks (``_model``; no per-request pydantic model), and they are scored by the micro-batcher
(``_batcher``), each request with the model object it saw when it arrived. Hot reload swaps
that object; requests in flight keep theirs. Every refusal, including an unknown route or
method, answers in one error shape (``_request.InputError``); ``/openapi.json`` documents
each of them (``_openapi``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException

from ._batcher import Batcher
from ._metrics import Metrics, SharedMetrics
from ._model import LoadedModel, load_version
from ._request import (HeaderLimit, InputError, check_json_content_type, error_doc,
                       error_response, json_response, parse_json, read_body, request_id)
from ._settings import BODY_BYTES_PER_ROW, OPTIONS_ENV

__all__ = ["OPTIONS_ENV", "Server", "create_app"]


class MetricsMiddleware:
    """Counts every HTTP response by path and status, and times it (plain ASGI)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def _send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            self.metrics.request(scope["path"], status[0], time.perf_counter() - start)


class Server:
    """What one server process holds: the spec's context, the model, the log writer."""

    def __init__(self, options: dict) -> None:
        from specloop import make_context

        from ._logs import RequestLogger
        from ._settings import serve_settings

        self.ctx = make_context(options["project"], options.get("overrides", []))
        self.name = self.ctx.model_name
        self.settings = serve_settings(self.ctx.spec)
        self.alias = options.get("alias")
        self.pinned = options.get("version")
        self.runtime = options.get("runtime") or "sklearn"
        self.metrics = Metrics()
        self.shared = SharedMetrics(options["metrics_dir"], self.metrics) \
            if options.get("metrics_dir") else None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="specloop-predict")
        self.batcher = Batcher(self.executor, max(self.settings.max_rows, 1))
        self.logger = RequestLogger(self.ctx.store, self.name, self.settings.log) \
            if self.settings.log.enabled else None
        self._lock = asyncio.Lock()
        reg = self.ctx.registry
        record = reg.get(self.name, self.pinned) if self.pinned is not None else \
            reg.resolve(self.name, self.alias)
        self.model: LoadedModel | None = load_version(
            self.ctx, record, self.alias, self.settings.fast_path,
            self.runtime) if record is not None else None
        self._limit_threads()  # after the model's native libraries are loaded
        self.ctx.close()  # reopened by the thread that polls the registry

    def _limit_threads(self) -> None:
        from threadpoolctl import threadpool_limits

        self._threads = threadpool_limits(limits=self.ctx.spec.project.threads or 1)

    async def refresh(self) -> bool:
        """Re-read the alias; load and swap in the version it points at, if it moved."""
        if self.pinned is not None:
            return False
        async with self._lock:
            reg = self.ctx.registry
            version = reg.aliases(self.name).get(self.alias)
            if version is None or (self.model is not None and version == self.model.version):
                return False
            record = reg.get(self.name, version)
            loop = asyncio.get_running_loop()
            try:
                loaded = await loop.run_in_executor(None, load_version, self.ctx, record,
                                                    self.alias, self.settings.fast_path,
                                                    self.runtime)
            except Exception:
                self.metrics.reload_errors += 1
                raise
            self.model = loaded  # one reference swap; requests in flight keep theirs
            self.metrics.reloads += 1
            return True

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep serving the version we have; counted in /metrics
                pass

    async def share(self) -> None:
        """Every second, publish this worker's counters for the others' ``/metrics``."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self.shared.write(self.logger)
            except OSError:  # the folder went away with the server; nothing to share
                pass

    def render_metrics(self) -> str:
        if self.shared is not None:
            return self.shared.render(self.model, self.logger)
        return self.metrics.render(self.model, self.logger)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        if self.logger is not None:
            self.logger.start()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self.follow())] if self.pinned is None else []
        if self.shared is not None:
            tasks.append(loop.create_task(self.share()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            if self.logger is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.logger.close)
            if self.shared is not None:
                try:
                    self.shared.write(self.logger)  # final counts survive this worker
                except OSError:
                    pass
            self.executor.shutdown(wait=True)
            self.ctx.close()


def create_app(options: dict | None = None) -> FastAPI:
    """Build the app of one server process.

    Args:
        options: ``{"project", "overrides", "alias", "version", "metrics_dir"}``; when
            ``None``, read from ``SPECLOOP_SERVE_OPTIONS`` (JSON), which is how
            ``uvicorn --factory`` workers get them.

    Returns:
        The FastAPI app.
    """
    if options is None:
        options = json.loads(os.environ[OPTIONS_ENV])
    server = Server(options)
    which = f"version {server.pinned}" if server.pinned is not None else repr(server.alias)
    app = FastAPI(title=f"specloop: {server.name}", lifespan=server.lifespan, version="1",
                  description=f"Predictions from the registry's {which} of {server.name}. "
                              "The request schema is generated from the model's signature.")
    app.state.server = server
    app.add_middleware(HeaderLimit)
    app.add_middleware(MetricsMiddleware, metrics=server.metrics)  # outermost: counts 431s
    app.add_exception_handler(HTTPException, _route_error)
    settings = server.settings
    limit = settings.body_limit
    setting = "plugins.serve.max_body_bytes" + (
        "" if settings.max_body_bytes is not None
        else f"; by default max_rows × {BODY_BYTES_PER_ROW}")

    @app.post("/predict", summary="Predict for one record or a list of records")
    async def predict(request: Request) -> Response:
        """Body: one record (a JSON object of features) or a non-empty list of them.

        Returns the predictions, per-class probabilities for classifiers, and the model
        version that produced them.
        """
        started = time.time()
        model = server.model
        try:
            rid = request_id(request.headers)
            check_json_content_type(request.headers)
            body = await read_body(request, limit, setting)
            if model is None:
                return _not_ready()
            rows = model.contract.rows(parse_json(body), settings.max_rows)
        except InputError as exc:
            return error_response(exc)
        try:
            preds, probas = await server.batcher.submit(model, rows)
        except (ValueError, TypeError, OverflowError) as exc:
            text = f"{type(exc).__name__}: {exc}"
            return error_response(InputError(
                422, "the model could not score this input: " + text[:300],
                kind="model_refused"))
        rid = rid or os.urandom(8).hex()
        out = {"model": model.name, "version": model.version, "predictions": preds,
               "request_id": rid}
        if probas is not None:
            out["probabilities"] = probas
        server.metrics.predictions(preds, probas is not None)
        if server.logger is not None:
            server.logger.log(started, rid, model.version, rows, preds, probas)
        return json_response(200, out, {"x-model-version": str(model.version)})

    @app.get("/health", summary="Liveness")
    async def health() -> Response:
        return json_response(200, {"status": "ok"})

    @app.get("/ready", summary="Readiness: a model is loaded")
    async def ready() -> Response:
        model = server.model
        if model is None:
            return json_response(503, {"ready": False, "reason": f"{server.alias!r} points at "
                                                                 "no version yet"})
        return json_response(200, {"ready": True, "version": model.version})

    @app.get("/metadata", summary="Version, alias, signature and metrics of the served model")
    async def metadata() -> Response:
        model = server.model
        if model is None:
            return _not_ready()
        return json_response(200, model.metadata())

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return PlainTextResponse(server.render_metrics(), media_type="text/plain; version=0.0.4")

    if settings.token:
        from ._admin import add_admin_routes

        add_admin_routes(app, server, settings.token)

    from ._openapi import build_openapi

    app.openapi = lambda: build_openapi(app, server)  # type: ignore[method-assign]
    return app


def _not_ready() -> Response:
    return json_response(503, error_doc(503, "no model is loaded yet; see /ready", "not_ready"))


async def _route_error(request: Request, exc: Exception) -> Response:
    """An unknown path (404) or method (405), in the server's error shape."""
    assert isinstance(exc, HTTPException)
    path = request.url.path if len(request.url.path) <= 100 else request.url.path[:100] + "…"
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        msg, kind = f"no route {path!r}; the routes are listed at /docs", "not_found"
    elif exc.status_code == 405:
        msg = f"method {request.method} is not allowed on {path!r}; use " + \
            headers.get("Allow", headers.get("allow", "another method"))
        kind = "method_not_allowed"
    else:
        msg, kind = str(exc.detail).lower(), "http_error"
    return json_response(exc.status_code, error_doc(exc.status_code, msg, kind, "path"),
                         headers or None)
