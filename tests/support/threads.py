"""Running a coroutine from a test that may not own an event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any


def run_in_own_thread(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run`` the coroutine in a thread of its own (Playwright's session may own
    this thread's event loop), and re-raise here whatever it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coroutine())
        except BaseException as e:  # re-raised in the test's own thread
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
