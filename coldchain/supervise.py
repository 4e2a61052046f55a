"""Helpers for supervised network loops (agent uplink, sensor input, hub ingest): telling an
expected network failure from a bug, and flattening exception groups for logs and health."""

from __future__ import annotations

import asyncio
import contextlib
import socket
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


def cancels() -> int:
    """How many cancellations the current task has been asked for so far."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def honour_cancellation(before: int) -> None:
    """Re-raise a cancellation that arrived during an await and was swallowed.

    Python 3.11's ``asyncio.wait_for`` returns the result instead of raising when the awaited
    future completes in the same loop turn as the cancellation (fixed in 3.12, gh-86296).
    aiomqtt awaits every connect, subscribe and publish through it, so a task cancelled at
    that moment would carry on as if nothing happened, and the task group waiting for it
    would hang. ``before`` is :func:`cancels` taken just before the await: only a request
    that arrived during it counts (3.11's TaskGroup can leave an old, handled request on
    the count, which must not stop a reconnecting loop).
    """
    if cancels() > before:
        raise asyncio.CancelledError


def _no_delay(client: aiomqtt.Client) -> None:
    """TCP_NODELAY on the client's socket: a batch and its ack are small messages each
    waiting for the other side, which Nagle's algorithm would hold ~40 ms for a delayed ACK
    on every hop (measured by bench/bench_web.py; the broker needs set_tcp_nodelay too)."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


SUBACK_FAILURE = 0x80  # a SUBACK return code at or above this refuses the subscription


def _code(granted: object) -> int:
    """A SUBACK entry as a number: an int (MQTT 3.1.1 granted QoS) or paho's ReasonCode."""
    value = getattr(granted, "value", granted)
    return value if isinstance(value, int) else SUBACK_FAILURE


class Client(aiomqtt.Client):
    """An :class:`aiomqtt.Client` that never swallows a cancellation (see
    :func:`honour_cancellation`): connect, subscribe and publish re-raise it."""

    async def __aenter__(self) -> Client:
        before = cancels()
        await super().__aenter__()
        if cancels() > before:
            await super().__aexit__(None, None, None)
            raise asyncio.CancelledError
        _no_delay(self)
        return self

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        """Subscribe; a subscription the broker refuses (its SUBACK code 128 or more: an
        identity whose role does not allow it) raises :class:`aiomqtt.MqttError` instead of
        leaving a client that silently hears nothing."""
        before = cancels()
        result = await super().subscribe(*args, **kwargs)
        honour_cancellation(before)
        codes = result if isinstance(result, list | tuple) else [result]
        refused = [c for c in codes if _code(c) >= SUBACK_FAILURE]
        if refused:
            topic = args[0] if args else kwargs.get("topic")
            raise aiomqtt.MqttError(
                f"the broker refused the subscription to {topic} ({refused[0]}): is this "
                "identity's role allowed it?"
            )
        return result

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        before = cancels()
        await super().publish(*args, **kwargs)
        honour_cancellation(before)


async def wait_event(event: asyncio.Event, within: float) -> bool:
    """Wait for ``event`` at most ``within`` seconds; True if it was set.

    Not ``asyncio.wait_for``: on Python 3.11 it loses a cancellation that arrives as the
    event is set (gh-86296), and a loop that waits this way then never stops.
    """
    try:
        async with asyncio.timeout(max(0.0, within)):
            await event.wait()
    except TimeoutError:
        return False
    return True
