"""The instructions a get-or-compute flow yields, and the drivers that obey them.

A flow (:func:`.lookup.get_or_compute`) yields :data:`COMPUTE` or a :class:`Wait`;
:func:`drive_sync` and :func:`drive_async` run the function or wait, the only parts
that differ between plain and coroutine functions. Drivers run on misses only.
"""

from __future__ import annotations

import asyncio
import time
import typing as t
from collections.abc import Awaitable, Callable, Generator

from . import locks

T = t.TypeVar("T")


class Compute:
    """The instruction "run the function now and send me its :class:`Outcome`"."""


COMPUTE = Compute()


class Wait:
    """The instruction "pause, then send me None".

    With a *flight*, until that computation in this process lands (or its waiting
    deadline passes); otherwise for *seconds*.
    """

    __slots__ = ("flight", "seconds")

    def __init__(
        self, *, flight: locks.Flight | None = None, seconds: float = 0.0
    ) -> None:
        self.flight = flight
        self.seconds = seconds

    def block(self) -> None:
        if self.flight is not None:
            self.flight.wait()
        else:
            time.sleep(self.seconds)

    async def pause(self) -> None:
        if self.flight is not None:
            await self.flight.wait_async()
        else:
            await asyncio.sleep(self.seconds)


class Outcome(t.NamedTuple):
    """What a computation produced.

    ``result`` goes back to the caller; ``payload`` is stored (``MISS`` = store
    nothing); ``timeout`` overrides the decorator's timeout when not None.
    """

    result: t.Any
    payload: t.Any
    timeout: int | None = None


class CallNote:
    """What the lookup of one call found out beyond hit or miss, for the front
    ends' counters and ``Cache-Status`` header (see :mod:`.stats`).

    ``fresh_until``: the entry's freshness deadline on a hit (0: unknown or never
    stale). The defaults are class attributes: making a note costs no
    ``__init__``, and only a miss writes to it.
    """

    fresh_until: float = 0.0
    #: a stale value was served
    stale: bool = False
    #: the result was stored
    stored: bool = False
    #: the call waited for another caller's computation
    waited: bool = False
    #: the privacy rules kept the result out (set by the front end)
    refused: bool = False


#: the note filled when the caller passed none (nobody reads it)
DISCARD = CallNote()


Instruction = Compute | Wait
#: what :func:`.lookup.get_or_compute` returns: ``(hit, value)`` when it finishes
Flow = Generator[Instruction, Outcome | None, tuple[bool, t.Any]]
#: one part of a flow, run with ``yield from``, that returns a T
Step = Generator[Instruction, Outcome | None, T]


def drive_sync(flow: Flow, compute: Callable[[], Outcome]) -> tuple[bool, t.Any]:
    """Run *flow*: call *compute* and block on waits when it asks.

    Exceptions (from the function or while waiting) reach the flow first, so it can
    release what it holds.
    """
    try:
        instruction = next(flow)
        while True:
            reply: Outcome | None = None
            try:
                if isinstance(instruction, Wait):
                    instruction.block()
                else:
                    reply = compute()
            except BaseException as exc:
                instruction = flow.throw(exc)
            else:
                instruction = flow.send(reply)
    except StopIteration as stop:
        return t.cast(tuple[bool, t.Any], stop.value)


async def drive_async(
    flow: Flow, compute: Callable[[], Awaitable[Outcome]]
) -> tuple[bool, t.Any]:
    """Like :func:`drive_sync` for a coroutine function; waits do not block the loop."""
    try:
        instruction = next(flow)
        while True:
            reply: Outcome | None = None
            try:
                if isinstance(instruction, Wait):
                    await instruction.pause()
                else:
                    reply = await compute()
            except BaseException as exc:
                instruction = flow.throw(exc)
            else:
                instruction = flow.send(reply)
    except StopIteration as stop:
        return t.cast(tuple[bool, t.Any], stop.value)
