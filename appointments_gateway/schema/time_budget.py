"""A hard time limit on synchronous work done on the event loop's thread.

Parsing and validating a GraphQL document is synchronous: while it runs, the worker
answers nothing else, not even ``/healthz``.  Linear limits (tokens, selections) bound
most of it, but graphql-core's validation has a rule that is quadratic in fields sharing
a response name (``OverlappingFieldsCanBeMergedRule``): 250 copies of one small field
took 0.37 s here, well within every size limit.  Cutting it short from the outside is the
only bound that holds whatever the next such rule is.

``time_limit(seconds)`` arms ``SIGALRM`` with ``setitimer``; the handler raises
:class:`TimeLimitExceeded` in the main thread at the next bytecode of whatever runs, which
is the guarded block: the timer is disarmed before the block's ``finally`` ends, and the
handler does nothing once the block has left.  The exception can only surface inside the
``with`` statement, so the caller's ``except`` around it always sees it.

Where signals cannot be used (a thread other than the main one, or a program that
installed its own ``SIGALRM`` handler), the block runs unguarded and the elapsed time is
checked when it ends, so the outcome (refused or not) is the same, only later.
Validation is pure computation over the document: abandoning it midway leaves nothing
half-done (its caches store only completed results).
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["TimeLimitExceeded", "preemptive", "time_limit"]


class TimeLimitExceeded(Exception):
    """The guarded block ran out of time (raised inside it, or right after it)."""


_armed = False
_installed: bool | None = None  # None: not tried yet


#: After the first expiry the timer fires again this often until the block ends: an
#: exception raised where Python cannot pass it on (see ``_on_alarm``) is raised again.
_RETRY_SECONDS = 0.005


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    """Raise into the guarded block, unless the interrupted frame would swallow it.

    A signal handler runs inside whatever Python code runs at that moment, which may be
    a garbage-collector callback or a finaliser called from the block: an exception
    raised there is "ignored" (printed by ``sys.unraisablehook``) and the block goes on.
    Those frames are skipped; the timer's interval fires again a moment later.
    """
    if not _armed:
        return
    if frame is not None and _swallows(frame):
        return
    raise TimeLimitExceeded


def _swallows(frame: FrameType) -> bool:
    code = frame.f_code
    if code.co_name == "__del__" or code.co_filename.endswith("weakref.py"):
        return True
    return any(getattr(callback, "__code__", None) is code for callback in gc.callbacks)


def preemptive() -> bool:
    """Whether ``time_limit`` can interrupt a block here (main thread, ``SIGALRM`` ours)."""
    global _installed
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        return False
    if _installed is None:
        current = signal.getsignal(signal.SIGALRM)
        if current in (signal.SIG_DFL, signal.SIG_IGN, None, _on_alarm):
            signal.signal(signal.SIGALRM, _on_alarm)
            _installed = True
        else:
            _installed = False  # someone else's timer; never take it over
    return _installed


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Run the block for at most ``seconds``, else raise ``TimeLimitExceeded``.

    Not re-entrant (there is one timer per process); a nested call is a bug.
    """
    global _armed
    if seconds <= 0:
        raise TimeLimitExceeded
    started = time.perf_counter()
    if not preemptive():
        yield
        if time.perf_counter() - started > seconds:
            raise TimeLimitExceeded
        return
    assert not _armed, "time_limit is not re-entrant"
    # A collection pause is not the block's fault (a full one took over 50 ms in the
    # test process), and a collector callback is a frame an exception cannot leave.
    collecting = gc.isenabled()
    gc.disable()
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds, _RETRY_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _armed = False
        if collecting:
            gc.enable()
