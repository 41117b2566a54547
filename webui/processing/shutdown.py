"""SIGTERM/Ctrl+C stop the work first: every queued job is interrupted, then the server's own shutdown runs."""
from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Callable

from webui.processing.queue import GenerationQueue

log = logging.getLogger(__name__)
# After this long the process leaves even if a model call is still inside one long C operation.
HARD_EXIT_AFTER_S = 5.0

Handler = Callable[[int, FrameType | None], object]


def stopping_handler(queue: GenerationQueue, then: Handler | None) -> Callable[[int, FrameType | None], None]:
    """A signal handler that interrupts every job, arms a hard-exit timer, then calls `then` (the server's)."""
    def handle(signum: int, frame: FrameType | None) -> None:
        told = queue.interrupt_all()
        log.info("Signal %s: interrupting %d job(s) and shutting down", signum, told)
        timer = threading.Timer(HARD_EXIT_AFTER_S, os._exit, args=(0,))
        timer.daemon = True  # a clean shutdown that ends sooner is not held up by it
        timer.start()
        if then is None:
            raise KeyboardInterrupt  # the main thread's wait loop (Gradio's block_thread) closes the server
        then(signum, frame)

    return handle


def stop_jobs_on_signals(queue: GenerationQueue) -> None:
    """Install the handler for SIGTERM and SIGINT in front of whatever handled them before (main thread only)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        chained = previous if callable(previous) and previous is not signal.default_int_handler else None
        signal.signal(sig, stopping_handler(queue, chained))
