"""How many threads BLAS may use, per piece of work.

A mini-batch product (256 x 784 by 784 x 10) is too small to split: two threads gain little on an idle machine
and, on a busy one, each product waits for a thread that the other process holds, which made a fit 8x slower.
So the per-step products run on one thread, and only passes over a whole data set, whose products are large,
may use every core, and only while the machine has cores to spare. threadpoolctl sets the limit on whichever
BLAS numpy was built with.
"""

from __future__ import annotations

import contextlib
import math
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


def _others_running() -> float:
    """How many threads of other processes are running or waiting for a core now: Linux's count of runnable
    tasks (/proc/loadavg) less this process's own (its BLAS threads spin a while after a product), else the
    1-minute load average less one, which lags a process started a moment ago."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = sum(_task_state(task) == "R" for task in os.listdir("/proc/self/task"))
        return running - max(own, 1)
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0] - 1
        except (AttributeError, OSError):  # not on every system
            return math.inf


def _task_state(task: str) -> str:
    """One of this process's threads' state letter ("R": running), "" for one that has just ended."""
    try:
        with open(f"/proc/self/task/{task}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def spare_core() -> bool:
    """Whether a second core is free for this process now: it may run on more than one, and other processes'
    threads leave at least one of the machine's cores idle besides this thread's."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every system
        cores = os.cpu_count() or 1
    return cores > 1 and _others_running() <= (os.cpu_count() or 1) - 2


def pass_threads() -> int | None:
    """Threads for a pass over a whole data set: every core (None) while the machine has a core to spare, else
    one."""
    return None if spare_core() else 1
