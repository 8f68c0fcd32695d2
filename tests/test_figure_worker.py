"""The figure helper process: it draws what the process itself would, reports a failure as one error, and never
outlives its use."""

import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mnist_softmax.figure_worker import REQUEST, FigureWorker, draw_figures

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the helper is forked on Linux only")


def _run():
    rng = np.random.default_rng(0)
    steps = np.arange(0, 101, 25)
    history = {"step": steps, "epoch": steps / 50, "train_loss": np.linspace(2.3, 0.3, 5),
               "train_accuracy": np.linspace(0.1, 0.9, 5)}
    model = SimpleNamespace(coef=rng.normal(size=(10, 784)).astype(np.float32), class_names=list("0123456789"),
                            preprocessing=SimpleNamespace(image_shape=(28, 28)))
    return SimpleNamespace(model=model, history=history)


def test_helper_draws_the_same_figures_as_the_process(tmp_path):
    run = _run()
    worker = FigureWorker.start()
    assert worker is not None
    worker.draw(run, tmp_path)
    worker.wait()
    (tmp_path / REQUEST).unlink()
    here = tmp_path / "here"
    here.mkdir()
    draw_figures(here, run.history, (run.model.coef, (28, 28), run.model.class_names))  # as train draws them alone
    for name in ("weights.png", "curves.png"):
        with Image.open(tmp_path / name) as theirs, Image.open(here / name) as ours:
            assert theirs.size == ours.size
            assert np.array_equal(np.asarray(theirs), np.asarray(ours))
    with pytest.raises(ChildProcessError):
        os.waitpid(worker.pid, os.WNOHANG)  # reaped: no zombie left


@pytest.mark.parametrize("name", ["curves.png", "weights.png"])  # either figure
def test_a_failed_write_comes_back_as_an_oserror(tmp_path, name):
    (tmp_path / name).mkdir()  # the helper cannot write its file there
    worker = FigureWorker.start()
    worker.draw(_run(), tmp_path)
    with pytest.raises(OSError):
        worker.wait()


def test_close_stops_an_unused_helper():
    worker = FigureWorker.start()
    worker.close()
    worker.close()  # twice is harmless
    with pytest.raises(ChildProcessError):
        os.waitpid(worker.pid, os.WNOHANG)


def test_a_failure_while_drawing_comes_back_as_one_error_line(tmp_path):
    run = _run()
    del run.history["step"]  # learning_curves needs it
    worker = FigureWorker.start()
    worker.draw(run, tmp_path)
    with pytest.raises(RuntimeError, match="drawing the figures failed: KeyError: 'step'"):
        worker.wait()
