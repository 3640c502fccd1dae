"""Turn SIGINT and SIGTERM into a stop request that the training loop honours at the next step boundary."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

logger = logging.getLogger(__name__)


class StopRequest:
    """Request set by a signal handler. `signal_name` is the name of the first signal received, or None."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install SIGINT and SIGTERM handlers for the duration of the block, then restore the old ones.

    The first signal only records the request. A second SIGINT raises KeyboardInterrupt, so a user can
    still abort a step that takes too long. Outside the main thread Python allows no handlers, and the
    request is never set.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum, frame):
        name = signal.Signals(signum).name
        if request and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not request:
            logger.warning("%s received: stopping after the current optimizer step", name)
            request.signal_name = name

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
