"""Helpers for supervised network loops (agent uplink, sensor input, hub ingest): telling an
expected network failure from a bug, and flattening exception groups for logs and health."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt


def network_error(exc: BaseException) -> bool:
    """True for the failures a network loop expects (broker gone, connection reset)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(network_error(e) for e in exc.exceptions)
    return isinstance(exc, aiomqtt.MqttError | OSError)


def describe(exc: BaseException) -> str:
    """The innermost messages of an exception (group), for logs and health."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return str(exc) or type(exc).__name__


def honour_cancellation() -> None:
    """Re-raise a cancellation that was swallowed.

    Python 3.11's ``asyncio.wait_for`` returns the result instead of raising when the awaited
    future completes in the same loop turn as the cancellation (fixed in 3.12, gh-86296).
    aiomqtt awaits every connect, subscribe and publish through it, so a task cancelled at
    that moment would carry on as if nothing happened, and the task group waiting for it
    would hang. Call this after such awaits in loops that must stop when cancelled.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Client(aiomqtt.Client):
    """An :class:`aiomqtt.Client` that never swallows a cancellation (see
    :func:`honour_cancellation`): connect, subscribe and publish re-raise it."""

    async def __aenter__(self) -> Client:
        await super().__aenter__()
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            await super().__aexit__(None, None, None)
            raise asyncio.CancelledError
        return self

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().subscribe(*args, **kwargs)
        honour_cancellation()
        return result

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        await super().publish(*args, **kwargs)
        honour_cancellation()
