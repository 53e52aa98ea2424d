"""The prediction server: a FastAPI app built per process by :func:`create_app`.

The predict path is kept lean: the body is read with a size cap and parsed with ``orjson``,
records are checked against precomputed per-feature type checks (no per-request pydantic
model), a few rows on a compiled fast path are scored on the event loop, and everything else
runs on one worker thread fed by a micro-batcher: requests that arrive while the model is
busy are scored together in the next call, each with the model object it saw when it
arrived. Hot reload swaps that object; requests in flight keep theirs.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, Response

from ._metrics import Metrics, SharedMetrics
from ._model import InputError, LoadedModel, load_version

OPTIONS_ENV = "SPECLOOP_SERVE_OPTIONS"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


try:  # orjson (in the serve extra) parses and writes JSON several times faster
    import orjson

    def _dumps(doc: Any) -> bytes:
        return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)

    def _loads(body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # json's message names the problem (e.g. NaN)
            return json.loads(body, parse_constant=_reject_constant)
except ImportError:  # pragma: no cover - the serve extra installs it
    def _dumps(doc: Any) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()

    def _loads(body: bytes) -> Any:
        return json.loads(body, parse_constant=_reject_constant)


def _json(status: int, doc: Any, headers: dict | None = None) -> Response:
    return Response(_dumps(doc), status_code=status, media_type="application/json",
                    headers=headers)


class Batcher:
    """Scores queued requests on one thread, several requests per model call when busy."""

    def __init__(self, executor: ThreadPoolExecutor, max_rows: int) -> None:
        self.executor = executor
        self.max_rows = max_rows
        self.pending: list[tuple[LoadedModel, list, asyncio.Future]] = []
        self.busy = False

    async def submit(self, model: LoadedModel, rows: list) -> tuple[list, list | None]:
        if not self.busy and model.cheap(len(rows)):
            # a compiled call on a few rows takes tens of microseconds: less than handing
            # it to the worker thread and back, so it runs here
            return model.predict(rows)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.append((model, rows, fut))
        if not self.busy:
            self.busy = True
            loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                model = self.pending[0][0]
                take, n = [], 0
                while self.pending and self.pending[0][0] is model and (
                        not take or n + len(self.pending[0][1]) <= self.max_rows):
                    item = self.pending.pop(0)
                    take.append(item)
                    n += len(item[1])
                rows = take[0][1] if len(take) == 1 else [r for _, rs, _ in take for r in rs]
                try:
                    preds, probas = await loop.run_in_executor(self.executor, model.predict, rows)
                except Exception as exc:
                    if len(take) == 1:
                        _settle(take[0][2], exc=exc)
                        continue
                    for _, rs, fut in take:  # score one by one so only the bad request fails
                        try:
                            _settle(fut, await loop.run_in_executor(self.executor,
                                                                    model.predict, rs))
                        except Exception as exc2:
                            _settle(fut, exc=exc2)
                    continue
                off = 0
                for _, rs, fut in take:
                    k = len(rs)
                    _settle(fut, (preds[off:off + k],
                                  probas[off:off + k] if probas is not None else None))
                    off += k
        finally:
            self.busy = False


def _settle(fut: asyncio.Future, result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():  # the client went away
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


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
            self.ctx, record, self.alias, self.settings.fast_path) if record is not None else None
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
                                                    self.alias, self.settings.fast_path)
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


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InputError(400, "the Content-Length header is not a number")
        if int(length) > limit:
            raise InputError(413, f"the body has {length} bytes; the limit is {limit} "
                                  "(plugins.serve.max_body_bytes)", kind="too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(413, f"the body exceeds {limit} bytes "
                                  "(plugins.serve.max_body_bytes)", kind="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(options: dict | None = None) -> FastAPI:
    """Build the app; with no ``options``, read them from ``SPECLOOP_SERVE_OPTIONS`` (JSON),
    which is how ``uvicorn --factory`` workers get them."""
    if options is None:
        options = json.loads(os.environ[OPTIONS_ENV])
    server = Server(options)
    which = f"version {server.pinned}" if server.pinned is not None else repr(server.alias)
    app = FastAPI(title=f"specloop: {server.name}", lifespan=server.lifespan, version="1",
                  description=f"Predictions from the registry's {which} of {server.name}. "
                              "The request schema is generated from the model's signature.")
    app.state.server = server
    app.add_middleware(MetricsMiddleware, metrics=server.metrics)
    settings = server.settings

    @app.post("/predict", summary="Predict for one record or a list of records")
    async def predict(request: Request) -> Response:
        """Body: one record (a JSON object of features) or a non-empty list of them.

        Returns the predictions, per-class probabilities for classifiers, and the model
        version that produced them.
        """
        started = time.time()
        model = server.model
        try:
            body = await _read_body(request, settings.max_body_bytes)
            if model is None:
                return _json(503, {"error": "no model is loaded yet"})
            try:
                data = _loads(body)
            except ValueError as exc:
                raise InputError(400, f"the body is not valid JSON: {exc}",
                                 kind="json_invalid") from None
            rows = model.contract.rows(data, settings.max_rows)
        except InputError as exc:
            return _json(exc.status, exc.body())
        try:
            preds, probas = await server.batcher.submit(model, rows)
        except (ValueError, TypeError, OverflowError) as exc:
            return _json(422, InputError(422, f"the model could not score this input: "
                                              f"{type(exc).__name__}: {exc}").body())
        rid = request.headers.get("x-request-id", "")[:128] or os.urandom(8).hex()
        out = {"model": model.name, "version": model.version, "predictions": preds,
               "request_id": rid}
        if probas is not None:
            out["probabilities"] = probas
        server.metrics.predictions(preds, probas is not None)
        if server.logger is not None:
            server.logger.log(started, rid, model.version, rows, preds, probas)
        return _json(200, out, {"x-model-version": str(model.version)})

    @app.get("/health", summary="Liveness")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: a model is loaded")
    async def ready() -> Response:
        model = server.model
        if model is None:
            return _json(503, {"ready": False, "reason": f"{server.alias!r} points at no "
                                                         "version yet"})
        return _json(200, {"ready": True, "version": model.version})

    @app.get("/metadata", summary="Version, alias, signature and metrics of the served model")
    async def metadata() -> Response:
        model = server.model
        if model is None:
            return _json(503, {"error": "no model is loaded yet"})
        return _json(200, model.metadata())

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return PlainTextResponse(server.render_metrics(), media_type="text/plain; version=0.0.4")

    if settings.token:
        _admin_routes(app, server, settings.token)
    app.openapi = lambda: _openapi(app, server)  # type: ignore[method-assign]
    return app


def _admin_routes(app: FastAPI, server: Server, token: str) -> None:
    """State-changing routes; they exist only when a token is configured."""
    expected = f"Bearer {token}".encode()

    def denied(request: Request) -> Response | None:
        got = request.headers.get("authorization")
        if got is None:
            return _json(401, {"error": "this route needs 'Authorization: Bearer <token>'"},
                         {"www-authenticate": "Bearer"})
        if not hmac.compare_digest(got.encode(), expected):
            return _json(403, {"error": "wrong token"})
        return None

    async def body(request: Request) -> dict:
        raw = await _read_body(request, 10_000)
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise InputError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InputError(422, "the body must be a JSON object")
        return doc

    async def answer(changed: bool, extra: dict | None = None) -> Response:
        model = server.model
        return _json(200, {"changed": changed, "version": model.version if model else None,
                           **(extra or {})})

    @app.post("/admin/reload", summary="Re-read the alias now and load what it points at")
    async def reload(request: Request) -> Response:
        if (resp := denied(request)) is not None:
            return resp
        return await answer(await server.refresh())

    @app.post("/admin/promote", summary="Point the alias at a version, through the declared "
                                        "gate (body: {version, reason, force})")
    async def promote(request: Request) -> Response:
        from specloop import RegistryError
        from specloop import promote as governed_promote

        if (resp := denied(request)) is not None:
            return resp
        try:
            doc = await body(request)
            version = doc.get("version")
            if type(version) is not int:
                raise InputError(422, "'version' must be an integer", ["version"])
            alias = doc.get("alias", server.alias or "champion")
            force = doc.get("force", False) is True
            res = governed_promote(server.ctx, version, alias=alias, force=force,
                                   reason=doc.get("reason") or
                                   (None if force else "promoted over HTTP"))
        except InputError as exc:
            return _json(exc.status, exc.body())
        except RegistryError as exc:
            gate = getattr(exc, "gate", None)  # the gate refused: say why
            return _json(409, {"error": exc.args[0],
                               **({"gate": gate.get("summary")} if gate else {})})
        return await answer(await server.refresh(), {"alias": alias, "previous": res["from"]})

    @app.post("/admin/rollback", summary="Move the alias back to its previous version")
    async def rollback(request: Request) -> Response:
        from specloop import RegistryError

        if (resp := denied(request)) is not None:
            return resp
        try:
            doc = await body(request)
            alias = doc.get("alias", server.alias or "champion")
            from specloop import rollback as governed_rollback

            old = governed_rollback(server.ctx, alias=alias, reason=str(
                doc.get("reason") or "rolled back over HTTP"))["from"]
        except InputError as exc:
            return _json(exc.status, exc.body())
        except RegistryError as exc:
            return _json(409, {"error": exc.args[0]})
        return await answer(await server.refresh(), {"alias": alias, "previous": old})


def _openapi(app: FastAPI, server: Server) -> dict:
    """FastAPI's schema with ``/predict``'s body and response filled in from the signature."""
    model = server.model
    version = model.version if model else None
    cached = getattr(app.state, "openapi_for", "unset")
    if app.openapi_schema is not None and cached == version:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    if model is not None:
        record = model.contract.json_schema()
        for prop in record["properties"].values():
            prop["type"] = [prop["type"], "null"]
            prop.pop("nullable", None)
        example = record.pop("example")
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps["Record"] = record
        ref = {"$ref": "#/components/schemas/Record"}
        out_props: dict[str, Any] = {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "request_id": {"type": "string"},
            "predictions": {"type": "array", "items": {}}}
        if model.classes is not None:
            out_props["probabilities"] = {"type": "array", "items": {
                "type": "object", "additionalProperties": {"type": "number"}}}
        comps["Prediction"] = {"type": "object", "title": "Prediction", "properties": out_props}
        err = {"description": "bad input; the message names the field", "content": {
            "application/json": {"schema": {"type": "object"}}}}
        post = schema["paths"]["/predict"]["post"]
        post["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"oneOf": [ref, {"type": "array", "items": ref, "minItems": 1,
                                       "maxItems": server.settings.max_rows}]},
            "example": example}}}
        post["responses"] = {
            "200": {"description": "predictions", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Prediction"}}}},
            "400": {**err, "description": "the body is not JSON"},
            "413": {**err, "description": "the body or the list is too large"},
            "422": err}
    app.openapi_schema = schema
    app.state.openapi_for = version
    return schema
