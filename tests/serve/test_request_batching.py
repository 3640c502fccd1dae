"""BatchQueue: grouping by key, bounded size, draining on close, failures; no model involved."""

from __future__ import annotations

import asyncio
import threading

import pytest

from physlora.eval.generation import Generated
from physlora.serve.batching import BatchQueue, QueueClosedError, QueueFullError


class GatedRunner:
    """Batch runner that echoes prompts and blocks its first call until `release` is set."""

    def __init__(self, fail_keys: tuple = ()) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[tuple] = []
        self.fail_keys = fail_keys

    def __call__(self, key, prompts):
        self.calls.append((key, list(prompts)))
        self.started.set()
        if not self.release.wait(timeout=30):
            raise TimeoutError("the test never released the runner")
        if key in self.fail_keys:
            raise RuntimeError(f"generation failed for {key}")
        return [Generated(text=f"{key}:{prompt}", n_tokens=1, stopped_at_eos=True) for prompt in prompts]


async def _wait_until(condition) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def _submit_while_blocked(queue: BatchQueue, runner: GatedRunner, first, later):
    """Submit `first`, wait until the worker runs it, queue `later`, then release the runner."""
    tasks = [asyncio.create_task(queue.submit(*first))]
    await asyncio.to_thread(runner.started.wait, 10)
    tasks += [asyncio.create_task(queue.submit(*job)) for job in later]
    await _wait_until(lambda: queue.waiting == len(later))
    runner.release.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_batches_group_same_key_in_order():
    async def scenario():
        runner = GatedRunner()
        queue = BatchQueue(runner, max_queue=10, max_batch=2)
        queue.start()
        later = [("a", "p2"), ("b", "p3"), ("a", "p4"), ("a", "p5")]
        results = await _submit_while_blocked(queue, runner, ("a", "p1"), later)
        await queue.close()
        return runner, queue, results

    runner, queue, results = asyncio.run(scenario())
    assert runner.calls == [("a", ["p1"]), ("a", ["p2", "p4"]), ("b", ["p3"]), ("a", ["p5"])]
    assert list(queue.batch_sizes) == [1, 2, 1, 1]
    assert [result.text for result in results] == ["a:p1", "a:p2", "b:p3", "a:p4", "a:p5"]


def test_full_queue_rejects_at_once():
    async def scenario():
        runner = GatedRunner()
        queue = BatchQueue(runner, max_queue=1, max_batch=4)
        queue.start()
        first = asyncio.create_task(queue.submit("a", "p1"))
        await asyncio.to_thread(runner.started.wait, 10)
        second = asyncio.create_task(queue.submit("a", "p2"))
        await _wait_until(lambda: queue.waiting == 1)
        with pytest.raises(QueueFullError):
            await queue.submit("a", "p3")
        runner.release.set()
        answers = await asyncio.gather(first, second)
        await queue.close()
        return answers

    answers = asyncio.run(scenario())
    assert [answer.text for answer in answers] == ["a:p1", "a:p2"]


def test_close_finishes_queued_requests():
    async def scenario():
        runner = GatedRunner()
        queue = BatchQueue(runner, max_queue=10, max_batch=8)
        queue.start()
        first = asyncio.create_task(queue.submit("a", "p1"))
        await asyncio.to_thread(runner.started.wait, 10)
        queued = [asyncio.create_task(queue.submit("b", f"q{index}")) for index in range(3)]
        await _wait_until(lambda: queue.waiting == 3)
        closing = asyncio.create_task(queue.close())
        await asyncio.sleep(0)
        with pytest.raises(QueueClosedError):
            await queue.submit("a", "late")
        runner.release.set()
        await closing
        return [task.result().text for task in [first, *queued]]

    assert asyncio.run(scenario()) == ["a:p1", "b:q0", "b:q1", "b:q2"]


def test_failed_batch_reaches_its_requests_only():
    async def scenario():
        runner = GatedRunner(fail_keys=("bad",))
        queue = BatchQueue(runner, max_queue=10, max_batch=8)
        queue.start()
        results = await _submit_while_blocked(queue, runner, ("bad", "p1"), [("bad", "p2"), ("good", "p3")])
        await queue.close()
        return results

    first, second, third = asyncio.run(scenario())
    assert isinstance(first, RuntimeError)
    assert isinstance(second, RuntimeError)
    assert third.text == "good:p3"


def test_cancelled_request_is_skipped():
    async def scenario():
        runner = GatedRunner()
        queue = BatchQueue(runner, max_queue=10, max_batch=8)
        queue.start()
        first = asyncio.create_task(queue.submit("a", "p1"))
        await asyncio.to_thread(runner.started.wait, 10)
        cancelled = asyncio.create_task(queue.submit("a", "p2"))
        remaining = asyncio.create_task(queue.submit("a", "p3"))
        await _wait_until(lambda: queue.waiting == 2)
        cancelled.cancel()
        runner.release.set()
        await asyncio.gather(first, remaining)
        await queue.close()
        return runner.calls

    assert asyncio.run(scenario()) == [("a", ["p1"]), ("a", ["p3"])]
