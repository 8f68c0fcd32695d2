"""How many threads BLAS may use, per piece of work.

A mini-batch product (256 x 784 by 784 x 10) is too small to split: two threads gain little on an idle machine
and, on a busy one, each product waits for a thread that the other process holds, which made a fit 8x slower.
So the per-step products run on one thread, and only passes over a whole data set, whose products are large,
may use every core, and only while the machine has cores to spare. threadpoolctl sets the limit on whichever
BLAS numpy was built with.
"""

from __future__ import annotations

import contextlib
import os

_controller = None


def blas_threads(n: int | None):
    """Context manager: BLAS uses at most `n` threads inside (None: no limit, as configured)."""
    global _controller
    if n is None:
        return contextlib.nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")


def pass_threads() -> int | None:
    """Threads for a pass over a whole data set: every core (None) while the machine is otherwise idle (the
    1-minute load average, which counts this process, at most the number of cores minus one), else one."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every system
        return 1
    return None if cores > 1 and load <= cores - 1 else 1


def spare_core() -> bool:
    """Whether this process may run on more than one core: then work beside a one-thread solver (its curves)
    can run on another."""
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # not on every system
        return (os.cpu_count() or 1) > 1
