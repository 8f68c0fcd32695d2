"""A training run: dataset and recipe in, model, metrics and curves out, written to a run directory."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .data import Dataset
from .errors import OutputError
from .files import atomic_write, clean_stale, make_dir_public, temp_suffix
from .metrics import curves
from .model import Preprocessing, SoftmaxModel
from .modelfile import save_model
from .recipes import Recipe
from .solvers import ScaledPixels, solve
from .threads import blas_threads


@dataclass
class Run:
    """What a training run produced."""

    model: SoftmaxModel
    metrics: dict
    history: dict[str, np.ndarray]
    snapshots: tuple | None = None  # (steps (s,), coefs (s, k, d), intercepts (s, k)) at the history's points


def train(
    dataset: Dataset, recipe: Recipe, *, seed: int = 0, validation_size: int | None = None, deskew: bool = False
) -> Run:
    """Train on the dataset's training split, select on validation, report on test (used for nothing else)."""
    spec = dataset.spec
    X, y, X_val, y_val = dataset.split(validation_size)
    preprocessing = Preprocessing(scale=1.0 / spec.pixel_max, image_shape=spec.image_shape, deskew=deskew)
    k = len(spec.class_names)
    monitor = {}
    if len(y_val):
        monitor["validation"] = (X_val, y_val)
    if recipe.test_curves:
        monitor["test"] = (dataset.test_images, dataset.test_labels)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    # Everything below runs on one BLAS thread (threads.py). The refusal subspaces, which do not depend on the model,
    # are read from the dataset's cache or fitted in a second Python thread beside the solver, on the other core.
    with blas_threads(1):
        background = _Background(_novelty, dataset, X, y, X_val, k, preprocessing)
        try:
            features = _features(X, preprocessing, recipe)
            solution = solve(features, y, k, recipe, rng, transform=preprocessing.apply, monitor=monitor,
                             image_shape=spec.image_shape, final_train=True)
            seconds = time.perf_counter() - started
            test_loss, test_accuracy = curves(solution.coef[None], solution.intercept[None], dataset.test_images,
                                              dataset.test_labels, preprocessing.apply)
            calibration = _calibration(solution, preprocessing, X_val, y_val)
        finally:
            background.join()  # also when the solver failed: no thread outlives the one-thread limit
        novelty = background.result()

    metrics = {
        "dataset": spec.name,
        "recipe": recipe.name,
        "seed": seed,
        "deskew": deskew,
        "n_train": len(y),
        "n_validation": len(y_val),
        "n_test": len(dataset.test_labels),
        "steps": solution.n_steps,
        "epochs": round(solution.n_epochs, 4),
        "learning_rate": solution.learning_rate,
        "train_seconds": round(seconds, 4),
    }
    # The history's last point is the final model on the validation set; its train curve is measured on a sample
    # (solvers.CURVE_ROWS rows), so the final train figures come from the solver's pass over every training row.
    metrics["train_loss"], metrics["train_accuracy"] = (round(v, 6) for v in solution.final_train)
    recorded = "validation_loss" in solution.history
    for kind in ("loss", "accuracy"):
        metrics[f"validation_{kind}"] = (round(float(solution.history[f"validation_{kind}"][-1]), 6) if recorded
                                         else None)
    metrics["test_loss"] = round(float(test_loss[0]), 6)
    metrics["test_accuracy"] = round(float(test_accuracy[0]), 6)
    if calibration:
        metrics["temperature"] = calibration["temperature"]

    from . import __version__

    model = SoftmaxModel(
        solution.coef,
        solution.intercept,
        np.arange(k),
        preprocessing,
        spec.class_names,
        metadata={
            "dataset": {
                "name": spec.name,
                "title": spec.title,
                "checksums": dataset.checksums,
                "digest_kind": spec.digest_kind,
                "validation_size": len(y_val),
                "sources": dataset.sources,
                **({"folder": spec.folder} if spec.folder else {}),
                **({"data_dir": dataset.data_dir} if dataset.data_dir else {}),
            },
            "hyperparameters": recipe.to_json(),
            "seed": seed,
            "metrics": metrics,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "package_version": __version__,
            **({"calibration": calibration} if calibration else {}),
        },
        novelty=novelty,
    )
    return Run(model, metrics, solution.history, solution.snapshots)


class _Background:
    """fn(*args) run in a daemon thread; result() waits for it and returns its value or raises its exception."""

    def __init__(self, fn, *args):
        self._value, self._error = None, None

        def work():
            try:
                self._value = fn(*args)
            except BaseException as exc:  # handed to the caller by result()
                self._error = exc

        self._thread = threading.Thread(target=work, name=fn.__name__, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _calibration(solution, preprocessing, X_val, y_val) -> dict | None:
    """The temperature that calibrates the model's probabilities, fitted on the validation split (calibrate.py)."""
    if not len(y_val):
        return None
    from .calibrate import calibration_summary, fit_temperature

    logits = preprocessing.apply(X_val) @ solution.coef.T + solution.intercept
    temperature = fit_temperature(logits, y_val)
    return {"temperature": round(temperature, 6), "split": "validation",
            **calibration_summary(logits, y_val, temperature)}


def _novelty(dataset, X, y, X_val, k, preprocessing):
    """The class subspaces that let predict refuse what is no digit (refuse.py), from the training images; their
    threshold from the validation split. None without a validation split or for images given as flat rows.

    They depend on the data alone (not on the seed or the recipe), so they are kept in the dataset's cache, keyed
    by the files' digests, the split and the source of refuse.py and preprocess.py: a warm train loads them.
    """
    from . import refuse

    if not len(X_val) or not preprocessing.image_shape or np.ndim(X) != 3:
        return None
    path = _novelty_path(dataset, len(X_val), k, preprocessing.scale)
    novelty = _read_novelty(path) if path is not None else None
    if novelty is None:
        novelty = refuse.fit(X, y, k, X_val, scale=preprocessing.scale)
        if path is not None:
            _write_novelty(novelty, path)
    return novelty


def _novelty_path(dataset, n_validation: int, k: int, scale: float) -> Path | None:
    """Where the refusal fit of this data and split is kept (None for data without digests)."""
    from . import preprocess, refuse
    from .data import dataset_cache

    checksums = dataset.checksums
    if not checksums:
        return None
    key = hashlib.sha256(json.dumps([sorted(checksums.items()), n_validation, k, scale]).encode())
    for module in (refuse, preprocess):  # a change to how the fit works is a new key
        assert module.__file__ is not None  # imported from source files
        key.update(Path(module.__file__).read_bytes())
    return dataset_cache(dataset.spec) / "novelty" / f"{key.hexdigest()[:32]}.npz"


def _read_novelty(path: Path):
    """The Novelty kept at `path`, or None when there is none or it cannot be read (then it is fitted again)."""
    from .refuse import Novelty

    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            return Novelty.from_stored(stored["novelty_means"], stored["novelty_bases"], meta)
    except Exception:  # missing, damaged, or from another layout: refit and rewrite it
        return None


def _write_novelty(novelty, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as out:
            np.savez(out, **novelty.arrays(), meta=np.array(json.dumps(novelty.to_json())))
    except OSError:  # a read-only or full cache only costs the next run the fit
        pass


def history_csv(history: dict[str, np.ndarray]) -> str:
    """The curves as CSV text, one row per record point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(history)
    columns = [history[name] for name in history]
    for row in zip(*columns):
        writer.writerow(f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row)
    return out.getvalue()


def write_animation(run: Run, path: Path) -> Path:
    """weights.gif: the weight maps at (up to 32 of) the record points, with the step and accuracy on each frame.

    The GIF's comment lists the frames' steps ("steps 0 25 ...", or "iterations ..." for full-batch solvers), so the
    report can label its step slider.
    """
    from . import animation

    assert run.snapshots is not None  # a run that recorded its weights (write_run checks before calling)
    steps, coefs, _ = run.snapshots
    pick = animation.animation_frames(steps)
    name = "validation" if "validation_accuracy" in run.history else "train"
    accuracy = np.asarray(run.history[f"{name}_accuracy"])[pick]
    sgd = (run.model.metadata.get("hyperparameters") or {}).get("solver", "sgd") == "sgd"  # others count iterations
    epochs = np.asarray(run.history["epoch"])[pick] if sgd and "epoch" in run.history else None
    frames = animation.weights_animation(coefs[pick], run.model.preprocessing.image_shape, run.model.class_names,
                                         steps[pick], accuracy, accuracy_label=f"{name} accuracy", epochs=epochs,
                                         step_label="step" if sgd else "iteration")
    unit = "steps" if sgd else "iterations"
    return animation.save_animation(frames, path, comment=unit + " " + " ".join(str(int(s)) for s in steps[pick]))


def _features(X, preprocessing: Preprocessing, recipe: Recipe):
    """The training images as SGD reads them: 8-bit pixels scaled a batch at a time (solvers.ScaledPixels) where
    the preprocessing is that scaling alone, else the images for `solve` to preprocess whole."""
    if recipe.solver != "sgd" or preprocessing.deskew or not (isinstance(X, np.ndarray) and X.dtype == np.uint8):
        return X
    return ScaledPixels(np.ascontiguousarray(X.reshape(len(X), -1)), preprocessing.scale)


def default_run_dir(dataset: str, recipe: str, root: Path = Path("runs")) -> Path:
    """A new, empty directory under `root`, runs/<dataset>-<recipe>-<timestamp>[-N], created here.

    Creating it is what reserves the name: two runs started in the same second (a parallel seed sweep) get
    different folders, as mkdir succeeds for only one of them.
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            candidate = root / (f"{dataset}-{recipe}-{stamp}" + (f"-{n}" if n > 1 else ""))
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as exc:
        raise OutputError(f"cannot create a run directory in {root}: {exc.strerror or exc}") from None
    raise OutputError(f"cannot find a free run directory name in {root}")


def _staging_dir(out_dir: Path) -> Path:
    """A new hidden sibling of `out_dir` to write a run into (after removing those that killed runs left)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputError(f"{out_dir} already exists and is not an empty directory; choose another",
                          cli=f"{out_dir} already exists and is not an empty directory; choose another --out")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out_dir.parent)
        return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=temp_suffix(), dir=out_dir.parent))
    except OSError as exc:
        raise OutputError(f"cannot create the run directory {out_dir}: {exc.strerror or exc}") from None


def check_run_dir(out_dir: Path) -> None:
    """Raise OutputError now, before any training, if `out_dir` could not be written at the end."""
    os.rmdir(_staging_dir(Path(out_dir)))


def write_run(run: Run, out_dir: Path, *, figures: bool = True, worker=None) -> Path:
    """Write model.npz, metrics.json, history.csv (and weights.png, weights.gif, curves.png) into `out_dir`, all or
    nothing. With `worker` (a started figure_worker.FigureWorker), that process draws weights.png and curves.png.

    The files are written to a hidden sibling directory that is renamed into place at the end, so an interrupted
    or failed write leaves no partial run. `out_dir` must not exist, or be empty.
    """
    out_dir = Path(out_dir)
    staging = _staging_dir(out_dir)
    try:
        make_dir_public(staging)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot create the run directory {out_dir}: {exc.strerror or exc}") from None
    try:
        save_model(run.model, staging / "model.npz")
        (staging / "metrics.json").write_text(json.dumps(run.metrics, indent=2) + "\n")
        (staging / "history.csv").write_text(history_csv(run.history))
        if figures:
            model = run.model
            if worker is not None:  # matplotlib's figures from the helper, the animation from here meanwhile
                worker.draw(run, staging)
            else:
                from .figure_worker import draw_figures

                shape = model.preprocessing.image_shape
                draw_figures(staging, run.history, (model.coef, shape, model.class_names) if shape else None)
            if model.preprocessing.image_shape and run.snapshots is not None:
                write_animation(run, staging / "weights.gif")
            if worker is not None:
                worker.wait()
                (staging / worker.REQUEST).unlink()
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except OSError as exc:
        raise OutputError(f"cannot write the run directory {out_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
