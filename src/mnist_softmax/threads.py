"""How many threads BLAS may use, per piece of work.

A mini-batch product (256 x 784 by 784 x 10) is too small to split: two threads gain little on an idle machine
and, on a busy one, each product waits for a thread that the other process holds, which made a fit 8x slower.
So the per-step products run on one thread, and only passes over a whole data set, whose products are large,
may use every core. threadpoolctl sets the limit on whichever BLAS numpy was built with.
"""

from __future__ import annotations

import contextlib

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
