"""A bounded request queue with one worker that generates requests of the same kind in one batch.

Requests that arrive while the worker is busy wait in the queue. When the worker is free it takes the
oldest request and up to `max_batch - 1` later ones with the same key (model, answer limit and prompt
limit), in arrival order. It runs them as one call in a thread, so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable

from physlora.eval.generation import Generated

logger = logging.getLogger(__name__)

# Runs one batch: (key, prompts) -> one result per prompt, in order. Called in a worker thread.
BatchRunner = Callable[[Hashable, list[str]], list[Generated]]


class QueueFullError(Exception):
    """The queue already contains max_queue waiting requests."""


class QueueClosedError(Exception):
    """The server is shutting down and accepts no new requests."""


@dataclass
class _Job:
    key: Hashable
    prompt: str
    future: asyncio.Future = field(repr=False)


class BatchQueue:
    """Bounded FIFO of generation requests served by a single worker task.

    `batch_sizes` contains the sizes of the last 1000 batches, and `batches_run` and `requests_run` count all.
    """

    def __init__(self, run_batch: BatchRunner, max_queue: int, max_batch: int) -> None:
        if max_queue < 1 or max_batch < 1:
            raise ValueError(f"max_queue={max_queue} and max_batch={max_batch} must be at least 1")
        self.run_batch = run_batch
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.batch_sizes: deque[int] = deque(maxlen=1000)
        self.batches_run = 0
        self.requests_run = 0
        self._pending: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._worker: asyncio.Task | None = None

    @property
    def waiting(self) -> int:
        """Requests queued and not yet taken by the worker."""
        return len(self._pending)

    def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="physlora-batch-worker")

    async def submit(self, key: Hashable, prompt: str) -> Generated:
        """Queue one prompt and wait for its answer; raises QueueFullError or QueueClosedError at once."""
        if self._closed:
            raise QueueClosedError("the server is shutting down")
        if len(self._pending) >= self.max_queue:
            raise QueueFullError(f"{len(self._pending)} requests are waiting (max_queue={self.max_queue})")
        job = _Job(key, prompt, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._wakeup.set()
        return await job.future

    async def close(self) -> None:
        """Stop accepting requests, let the worker finish every queued one, then stop it."""
        self._closed = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        logger.info("batch worker stopped after %d batches of %d requests", self.batches_run, self.requests_run)

    async def _work(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._take_batch()
            if batch:
                await self._run(batch)

    def _take_batch(self) -> list[_Job]:
        """Remove and return the oldest live job and up to max_batch - 1 later live jobs with its key."""
        while self._pending and self._pending[0].future.done():
            self._pending.popleft()  # the client went away (its request was cancelled)
        if not self._pending:
            return []
        key = self._pending[0].key
        batch, remaining = [], deque()
        for job in self._pending:
            if job.future.done():
                continue
            if job.key == key and len(batch) < self.max_batch:
                batch.append(job)
            else:
                remaining.append(job)
        self._pending = remaining
        return batch

    async def _run(self, batch: list[_Job]) -> None:
        self.batch_sizes.append(len(batch))
        self.batches_run += 1
        self.requests_run += len(batch)
        key = batch[0].key
        try:
            results = await asyncio.to_thread(self.run_batch, key, [job.prompt for job in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the batch runner returned {len(results)} results for {len(batch)} prompts")
        except Exception as error:  # every waiting request receives the failure; the worker goes on
            logger.exception("batch of %d request(s) for %s failed", len(batch), key)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for job, result in zip(batch, results):
            if not job.future.done():
                job.future.set_result(result)
