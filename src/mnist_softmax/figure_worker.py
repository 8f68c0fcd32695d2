"""The run's matplotlib figures (weights.png, curves.png) drawn by a forked helper process, beside training.

Importing matplotlib and drawing two figures costs about half a second of CPU, more than training the default
recipe. Training runs on one core (threads.py), so `train` forks this helper first: it imports matplotlib on the
other core while the parent loads the data and trains, then draws the figures from the finished run while the
parent writes the model and the animation. Only where fork is safe and cheap (Linux); elsewhere `start` returns
None and the figures are drawn in the process itself. The request travels as a plain .npz file (no pickle) in the
run's staging folder; an error comes back as one line, and a helper that outlives its use is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

REQUEST = ".figures-request.npz"  # in the staging folder, removed before the folder is renamed into place


class FigureWorker:
    """A forked process that has imported matplotlib and waits for one run to draw (see the module docstring)."""

    REQUEST = REQUEST

    def __init__(self, pid: int, requests: int, replies: int):
        self.pid = pid
        self._requests: int | None = requests  # the pipes' ends; None once closed
        self._replies: int | None = replies
        self._done = False

    @classmethod
    def start(cls) -> FigureWorker | None:
        """Fork the helper; None where fork is not used (not Linux) or fails."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            requests_r, requests_w = os.pipe()
            replies_r, replies_w = os.pipe()
            pid = os.fork()
        except OSError:
            return None
        if pid == 0:  # the helper: never returns
            os.close(requests_w)
            os.close(replies_r)
            _serve(requests_r, replies_w)
        os.close(requests_r)
        os.close(replies_w)
        return cls(pid, requests_w, replies_r)

    def draw(self, run, folder: Path) -> None:
        """Ask for weights.png (image data only) and curves.png of `run`, written into `folder`."""
        model = run.model
        arrays: dict[str, np.ndarray] = {f"history_{name}": np.asarray(values) for name, values in run.history.items()}
        arrays["history_names"] = np.array(list(run.history), dtype=str)
        if model.preprocessing.image_shape:
            arrays["coef"] = np.asarray(model.coef)
            arrays["image_shape"] = np.asarray(model.preprocessing.image_shape, dtype=np.int64)
            arrays["class_names"] = np.array([json.dumps(str(name)) for name in model.class_names], dtype=str)
        request = Path(folder) / REQUEST
        assert self._requests is not None, "draw is called once"
        with open(request, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]  # numpy's stub takes **arrays for allow_pickle
        with contextlib.suppress(BrokenPipeError):  # the helper has already failed (and said why): see wait()
            os.write(self._requests, (str(request) + "\n").encode())
        os.close(self._requests)
        self._requests = None

    def wait(self) -> None:
        """Wait for the figures; raise OSError (a failed write) or RuntimeError (anything else) if they failed."""
        chunks = []
        assert self._replies is not None, "wait is called once"
        while chunk := os.read(self._replies, 65536):
            chunks.append(chunk)
        status = self._reap()
        message = b"".join(chunks).decode(errors="replace").strip()
        if message.startswith("OSError\t"):
            _, number, text = message.split("\t", 2)
            raise OSError(int(number), text)
        if message or status != 0:
            raise RuntimeError(f"drawing the figures failed: {message or f'the helper process ended with {status}'}")

    def close(self) -> None:
        """Stop the helper if it is still there (the run failed, or its figures were not wanted after all)."""
        if self._done:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> int:
        for fd in (self._requests, self._replies):
            if fd is not None:
                os.close(fd)
        self._requests = self._replies = None
        self._done = True
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def _serve(requests: int, replies: int) -> None:
    """The helper's whole life: import matplotlib, read one request path, draw, report, exit (never return)."""
    code = 1
    try:
        from . import plots  # noqa: F401 (the half second this process exists to spend early)

        with os.fdopen(requests, "rb") as stream:
            line = stream.readline().decode().strip()
        if line:  # no line: the parent closed without a request
            _draw(Path(line))
        code = 0
    except BaseException as exc:  # reported to the parent as one line; this process must not unwind into its code
        _tell(replies, exc)
    finally:
        os._exit(code)


def _tell(replies: int, exc: BaseException) -> None:
    """One line for the parent (see FigureWorker.wait): a failed write keeps its errno."""
    if isinstance(exc, OSError):
        os.write(replies, f"OSError\t{exc.errno or 0}\t{exc.strerror or exc}".encode())
    else:
        os.write(replies, f"{type(exc).__name__}: {exc}".encode())


def _draw(request: Path) -> None:
    """Draw the request's figures into its folder."""
    with np.load(request, allow_pickle=False) as data:
        history = {str(name): data[f"history_{name}"] for name in data["history_names"]}
        weights = None
        if "coef" in data:
            names = [json.loads(str(name)) for name in data["class_names"]]
            weights = (data["coef"], tuple(int(v) for v in data["image_shape"]), names)
    draw_figures(request.parent, history, weights)


def draw_figures(folder: Path, history: dict, weights: tuple | None) -> None:
    """weights.png from `weights` (coef, image shape, class names) when given, and curves.png, into `folder`."""
    from . import plots

    if weights is not None:
        plots.save(plots.weight_maps(*weights), folder / "weights.png")
    plots.save(plots.learning_curves(history), folder / "curves.png", tight=False)
