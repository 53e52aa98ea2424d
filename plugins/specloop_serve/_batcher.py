"""The micro-batcher: one worker thread scores queued requests, several per model call.

A call of a few rows on a compiled fast path runs on the event loop (it takes less time
than a trip to the thread and back). Everything else is queued; while the model is busy,
requests that arrive queue up and the next call scores all of them together (up to
``max_rows`` rows), each with the model object it saw when it arrived. If a combined call
fails, its requests are scored one by one so that only the request that caused the failure
gets the error.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._model import LoadedModel


class Batcher:
    """Scores queued requests on one thread, several requests per model call when busy."""

    def __init__(self, executor: ThreadPoolExecutor, max_rows: int) -> None:
        self.executor = executor
        self.max_rows = max_rows
        self.pending: list[tuple[LoadedModel, list, asyncio.Future]] = []
        self.busy = False

    async def submit(self, model: LoadedModel, rows: list) -> tuple[list, list | None]:
        """Score checked records with ``model``.

        Args:
            model: The version the request saw when it arrived.
            rows: Its checked records.

        Returns:
            ``(predictions, probabilities)``; probabilities are ``None`` for a regressor.

        Raises:
            Exception: what the model raised for these records.
        """
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
