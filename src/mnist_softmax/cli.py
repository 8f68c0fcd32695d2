"""The `mnist-softmax` command: parse, run one command inside one error boundary, report.

Results go to stdout (JSON with --json), progress and diagnostics to stderr. Every expected failure is one line,
`error: <what>`, and an exit code from errors.ExitCode; --traceback shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ExitCode, MnistSoftmaxError, UsageError

# Idle BLAS threads spin for 2^28 cycles (about 0.1 s) before they sleep: when numpy loads OpenBLAS and after every
# multi-threaded product, a core taken from whatever else runs. The tool's process is its own, so it asks for 2^20
# cycles before anything loads numpy (OpenBLAS reads this once); the library leaves its callers' processes alone.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

EPILOG = (
    "exit codes: 0 ok, 1 internal error, 2 usage, 3 data missing or invalid, 4 download failed, 5 bad model file, "
    "6 training diverged, 7 output not writable, 8 some inputs failed (3 when every input did)"
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exits 2."""

    def error(self, message: str):
        sys.stderr.write(printable(f"error: {message} (see '{self.prog} --help')") + "\n")
        raise SystemExit(ExitCode.USAGE)


def _number(kind, *, minimum=None, strict=True, maximum=None):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:,}, got {text}")
        return value

    return parse


def _dataset_arg(text: str) -> str:
    """--dataset: a name from the table, or a folder of IDX files."""
    from .datasets import DATASETS

    if text in DATASETS or Path(text).expanduser().is_dir():
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither a dataset ({', '.join(DATASETS)}) nor a folder of IDX files"
    )


def printable(text: str) -> str:
    """`text` with every non-printable character (newline, terminal escape, bidi override...) written as a Python
    escape, so a file or class name cannot forge lines or drive the terminal."""
    text = str(text)
    if text.isprintable():  # the usual case, without a generator step per character (predict prints a line a file)
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def _say(args, message: str) -> None:
    """Progress for people: on stderr, and only when it is a terminal and --quiet is off."""
    if not args.quiet and sys.stderr.isatty():
        print(message, file=sys.stderr)


# ---------------------------------------------------------------- commands


def cmd_train(args) -> int:
    """Train softmax regression and write a run directory (model.npz, metrics.json, history.csv)."""
    from .data import bundled_dir, load_dataset
    from .datasets import DATASETS
    from .figure_worker import FigureWorker
    from .progress import download_progress
    from .recipes import get_recipe
    from .train import check_run_dir, default_run_dir, train, write_run

    recipe = get_recipe(args.recipe).with_overrides(
        learning_rate=args.learning_rate,
        momentum=args.momentum,
        batch_size=args.batch_size,
        steps=args.steps,
        epochs=args.epochs,
        l2=args.l2,
        smooth=args.smooth,
        average=args.average,
    )
    dataset_name = args.dataset if args.dataset in DATASETS else Path(args.dataset).resolve().name or "folder"
    if args.out:
        check_run_dir(Path(args.out))  # an --out that cannot be written fails now, not after training
    out = Path(args.out) if args.out else default_run_dir(dataset_name, recipe.name)
    started = time.perf_counter()
    worker = None if args.no_plots else FigureWorker.start()  # imports matplotlib beside loading and training
    try:
        dataset = load_dataset(args.dataset, args.data_dir, download=not args.offline,
                               progress=download_progress(args.quiet))
        _say(args, f"training {args.dataset} with the {recipe.name} recipe ...")
        if args.shards or args.dask:  # out of core, or on a Dask cluster (dask is imported only then)
            from .scaled import train_scaled

            run = train_scaled(dataset, recipe, seed=args.seed, validation_size=args.validation_size,
                               deskew=args.deskew, shards=args.shards, dask=args.dask)
        else:
            run = train(dataset, recipe, seed=args.seed, validation_size=args.validation_size, deskew=args.deskew)
        write_run(run, out, figures=not args.no_plots, worker=worker)
    except BaseException:
        if not args.out and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the name this run reserved, still empty
        raise
    finally:
        if worker is not None:
            worker.close()
    m = run.metrics
    if not m["n_validation"] and not args.quiet:
        print("note: no validation split, so the model has no calibration temperature and no refusal statistics "
              "(predict answers every image, letters included)", file=sys.stderr)
    if args.json:
        print(json.dumps({**m, "run_dir": str(out), "total_seconds": round(time.perf_counter() - started, 3)}))
        return ExitCode.OK
    source = Path(dataset.sources["train_images"]).parent if dataset.sources["train_images"] != "bundled" else "bundled"
    source = "the copy inside the package" if source == bundled_dir(dataset.spec) else source

    def pct(key):
        return "-" if m[key] is None else f"{100 * m[key]:.2f}%"

    print(f"data      {dataset.spec.name}: {m['n_train']:,} train / {m['n_validation']:,} validation / "
          f"{m['n_test']:,} test images ({source})")
    used = m["learning_rate"]
    capped = (f" (capped at {used:.3g} for this data's scale)"
              if used is not None and used < recipe.learning_rate else "")
    print(f"recipe    {describe_recipe(recipe)}{capped}{', deskewed images' if args.deskew else ''}")
    if recipe.solver == "sgd":
        print(f"time      {m['train_seconds']:.2f} s training, {m['steps']:,} steps ({m['epochs']:.2f} epochs)")
    else:  # a full-batch solver's steps are iterations over all the data
        print(f"time      {m['train_seconds']:.2f} s training, {m['steps']:,} {recipe.solver} iterations")
    print(f"accuracy  train {pct('train_accuracy')}  validation {pct('validation_accuracy')}  "
          f"test {pct('test_accuracy')}")
    written = "model.npz, metrics.json, history.csv"
    written += "" if args.no_plots else ", weights.png, weights.gif, curves.png"
    print(f"run       {out}/  ({written})")
    return ExitCode.OK


def describe_recipe(recipe) -> str:
    """One line of what a recipe does, for people."""
    length = f"{recipe.steps:,} steps" if recipe.steps else f"{recipe.epochs:g} epochs"
    if recipe.min_steps and not recipe.steps:
        length += f" (at least {recipe.min_steps:,} steps)"
    if recipe.solver != "sgd":
        method = "Newton-CG from a short SGD start" if recipe.solver == "newton" else "L-BFGS"
        smooth = f", smooth {recipe.smooth:g}" if recipe.smooth else ""
        return (f"{recipe.name}: {method}, up to {recipe.steps or recipe.epochs} iterations, to gradient "
                f"{recipe.tol:g}, l2 {recipe.l2:g}{smooth}")
    parts = [f"{recipe.name}: SGD", f"learning rate {recipe.learning_rate:g}"
             + (" with cosine decay" if recipe.schedule == "cosine" else ""), f"batch {recipe.batch_size}", length]
    if recipe.momentum:
        parts.insert(1, f"momentum {recipe.momentum:g}")
    if recipe.average:
        parts.append(f"weights averaged over the last {recipe.average:.0%} of steps")
    if recipe.l2:
        parts.append(f"l2 {recipe.l2:g}")
    if recipe.smooth:
        parts.append(f"smooth {recipe.smooth:g}")
    if recipe.center:
        parts.append("centred inputs")
    if recipe.precondition:
        parts.append("per-pixel step sizes")
    return ", ".join(parts)


def cmd_evaluate(args) -> int:
    """Measure a saved model on a dataset split: accuracy, per-class precision and recall, confusion counts."""
    import numpy as np

    from .metrics import confusion_matrix, per_class
    from .modelfile import load_model

    model = load_model(args.model)
    dataset = _dataset_for(model, args)
    name = dataset.spec.name
    if args.split == "test":
        images, labels = dataset.test_images, dataset.test_labels
    else:
        size = model.metadata.get("dataset", {}).get("validation_size")
        _, _, images, labels = dataset.split(size)
        if args.split == "train":
            images, labels, _, _ = dataset.split(size)
    if not len(labels):
        raise UsageError(f"the {args.split} split of {name} is empty for this model")
    k = len(model.classes)
    if k != len(dataset.spec.class_names):
        raise UsageError(f"the model has {k} classes, {name} has {len(dataset.spec.class_names)}")
    logits = model.logits(images)
    pred = np.argmax(logits, axis=1)
    confusion = confusion_matrix(labels, pred, k)
    stats = per_class(confusion)
    accuracy = float(np.trace(confusion) / confusion.sum())
    names = list(dataset.spec.class_names)
    from .calibrate import ECE_BINS, expected_calibration_error
    from .model import softmax

    ece = {"bins": ECE_BINS, "temperature": model.temperature,
           "before": round(expected_calibration_error(softmax(logits), labels), 6),
           "after": round(expected_calibration_error(softmax(logits / np.float32(model.temperature)), labels), 6)}
    if args.json:
        print(json.dumps({
            "model": str(args.model), "dataset": name, "split": args.split, "n": int(confusion.sum()),
            "accuracy": round(accuracy, 6), "ece": ece, "class_names": names,
            "per_class": {key: [round(float(v), 6) for v in values] for key, values in stats.items()},
            "confusion": confusion.tolist(),
        }))
        return ExitCode.OK
    name, names = printable(name), [printable(n) for n in names]  # a folder's classes.txt may hold escapes
    print(f"{name} {args.split} split: {int(confusion.sum()):,} images, accuracy {100 * accuracy:.2f}%")
    calibrated = (f"after calibration (temperature {model.temperature:.3g}) {100 * ece['after']:.2f}%"
                  if model.temperature != 1.0 else "(the model has no calibration temperature)")
    print(f"expected calibration error ({ECE_BINS} bins): {100 * ece['before']:.2f}% {calibrated}\n")
    width = max(len(n) for n in names)
    print(f"{'class':<{width}}  precision  recall     f1  support")
    for i, n in enumerate(names):
        print(f"{n:<{width}}  {stats['precision'][i]:9.4f}  {stats['recall'][i]:6.4f}  {stats['f1'][i]:.4f}  "
              f"{int(stats['support'][i]):7,}")
    print("\nconfusion (rows: true class, columns: predicted)")
    cells = max(5, len(str(confusion.max())) + 1)
    short = [n[:cells - 1] for n in names]
    print(" " * (width + 1) + "".join(f"{s:>{cells}}" for s in short))
    for i, n in enumerate(names):
        print(f"{n:<{width}} " + "".join(f"{c:>{cells}}" for c in confusion[i]))
    return ExitCode.OK


def _dataset_for(model, args):
    """The dataset a model was trained on, found where its run found it (unless --dataset/--data-dir say otherwise)."""
    from .data import load_dataset
    from .progress import download_progress

    recorded = model.metadata.get("dataset", {})
    recorded = recorded if isinstance(recorded, dict) else {}
    name = getattr(args, "dataset", None) or recorded.get("folder") or recorded.get("name")
    if not name:
        raise UsageError("the model does not say which dataset it was trained on; pass --dataset")
    data_dir = args.data_dir
    if data_dir is None and not getattr(args, "dataset", None) and isinstance(recorded.get("data_dir"), str):
        data_dir = recorded["data_dir"] if Path(recorded["data_dir"]).is_dir() else None
    checksums = recorded.get("checksums") if recorded.get("folder") and not getattr(args, "dataset", None) else None
    return load_dataset(name, data_dir, download=not args.offline, progress=download_progress(args.quiet),
                        checksums=checksums if isinstance(checksums, dict) else None)

def cmd_report(args) -> int:
    """Write RUN_DIR/report.html: one self-contained page with the run's figures, metrics and mistakes."""
    from .modelfile import load_model
    from .report import write_report

    run_dir = Path(args.run_dir)
    if run_dir.is_file() and (run_dir.parent / "model.npz").is_file():
        raise UsageError(f"{run_dir} is a file: give the run directory that holds it, {run_dir.parent}")
    if not (run_dir / "model.npz").is_file():
        raise UsageError(f"{run_dir} is not a run directory (no model.npz); train writes one")
    model = load_model(run_dir / "model.npz")
    if not model.preprocessing.image_shape:
        raise UsageError("reports are for image models; this model has no image shape")
    path = write_report(run_dir, model, _dataset_for(model, args))
    print(json.dumps({"report": str(path)}) if args.json else f"report    {path}")
    return ExitCode.OK


def _image_model_and_files(args):
    """predict's and read's start: the model (it must be an image model), its image shape and the image files."""
    from .modelfile import load_model

    model = load_model(args.model)
    shape = model.preprocessing.image_shape
    if not shape:
        raise UsageError("this model was not trained on images, so it cannot read image files")
    files = _image_files(args.files)
    if not files:
        raise UsageError("no image files given (folders are searched for .png, .jpg, .bmp, .gif, .tif, .webp)")
    return model, shape, files


def _image_files(paths) -> list[Path]:
    from .preprocess import IMAGE_SUFFIXES

    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()))
        else:
            files.append(p)
    return files


def _figure_stems(files: list[Path]) -> dict[Path, str]:
    """A distinct figure name for each input: its stem, plus a short hash of its path where stems collide
    (a/x.png and b/x.png, or x.png and x.jpg), so that no figure overwrites another."""
    import hashlib
    from collections import Counter

    counts = Counter(Path(f).stem for f in files)
    return {f: Path(f).stem if counts[Path(f).stem] == 1
            else f"{Path(f).stem}-{hashlib.sha1(str(Path(f).resolve()).encode()).hexdigest()[:8]}" for f in files}


_PREDICT_BATCH = 256  # files per batch in predict: their refusal scores and model products run together ...
_PREDICT_WAIT = 0.5  # ... and seconds spent preparing one at most, so that lines keep coming for slow photos


def _print_prediction(args, path, found, proba, order, names, labels) -> None:
    """predict's line (or JSON row) for one file: its top classes, or why it is not answered."""
    if args.json:
        row: dict[str, object] = {"path": str(path), "prediction": None, "class_name": None}
        if proba is not None:
            row["probabilities"] = dict(zip(names, [round(p, 6) for p in proba.tolist()]))
        if found.novelty is not None:
            row["novelty"] = round(found.novelty, 4)  # refusal score / threshold: above 1 is refused
        if found.refusal:
            row.update(refusal=found.refusal, reason=found.reason)
        else:
            row.update(prediction=labels[order[0]], class_name=names[order[0]])
        print(json.dumps(row))
    elif found.refusal:
        print(printable(f"{path}: not answered: {found.reason}"))
    else:
        top = ", ".join(f"{names[i]} ({100 * proba[i]:.1f}%)" for i in order[: args.top])
        print(printable(f"{path}: {top}"))


def _predict_figures(args, model, shape, stem, found, feature, proba, names) -> None:
    """predict --explain and --show-input: one file's evidence figure and the model's input as an image."""
    from . import plots

    if args.explain and not found.refusal:
        plots.save(plots.evidence(feature, model.coef, model.intercept, proba, names, shape),
                   Path(args.explain) / f"{stem}.evidence.png")
    if args.show_input:  # the model's input as an image file: predict on it gives the same answer
        plots.save_input(found.raw * model.preprocessing.scale, Path(args.show_input) / f"{stem}.input.png")
        if args.input_figure:
            plots.save(plots.model_input(feature.reshape(shape)), Path(args.show_input) / f"{stem}.input-figure.png")


def cmd_predict(args) -> int:
    """Classify your own images (PNG, JPEG, BMP, GIF, TIFF, WebP; any size, grey or colour, either polarity).

    Each image is made MNIST-like first: greyscale, background removed, cropped to the ink, fitted into 20x20 and
    centred by its centre of mass in 28x28 (then the model's own deskewing, if it was trained with it).
    What is not one digit is not answered, and the line says why: a blank or nearly blank image, several digits
    side by side, or a shape unlike every digit the model was trained on (a letter, a scribble). Probabilities are
    calibrated (the logits divided by the temperature fitted on the validation split).
    """
    import numpy as np

    from .errors import MnistSoftmaxError, OutputError
    from .explain import top_classes
    from .model import softmax
    from .reading import OneDigit, judge_novelty, one_digit
    from .threads import blas_threads

    model, shape, files = _image_model_and_files(args)
    if args.input_figure and not args.show_input:
        raise UsageError("--input-figure needs --show-input DIR, the folder to write it to")
    for folder in (args.explain, args.show_input):
        if folder:
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from None
    names = [str(n) for n in model.class_names]
    labels = model.classes.tolist()
    stems = _figure_stems(files) if args.explain or args.show_input else {}
    failed = 0
    pending = iter(files)
    while True:  # decode and prepare a batch of files; their novelty scores and the model run once per batch
        batch, began = [], time.perf_counter()
        found: list[OneDigit | MnistSoftmaxError] = []
        for path in pending:
            batch.append(path)
            try:
                found.append(one_digit(model, path, judge=False))  # the model's input, or why not one digit
            except MnistSoftmaxError as exc:
                found.append(exc)
            if len(batch) == _PREDICT_BATCH or time.perf_counter() - began > _PREDICT_WAIT:
                break
        if not batch:
            break
        judge_novelty(model, [f for f in found if not isinstance(f, Exception)])
        answered = [f.raw for f in found if not isinstance(f, Exception) and f.raw is not None]
        if answered:
            features = model.features(np.stack(answered))  # (n, d): preprocessed once, used for all that follows
            with blas_threads(1):  # a small product (see threads.py)
                logits = features @ model.coef.T + model.intercept
            probabilities = softmax(logits / np.float32(model.temperature))
            orders = top_classes(probabilities, len(names))
        answer = 0
        for path, item in zip(batch, found):
            try:
                if isinstance(item, Exception):
                    raise item
                proba = order = None
                if item.raw is not None:
                    proba, order, feature = probabilities[answer], orders[answer], features[answer]
                    answer += 1
                _print_prediction(args, path, item, proba, order, names, labels)
                if item.raw is not None and (args.explain or args.show_input):
                    _predict_figures(args, model, shape, stems[path], item, feature, proba, names)
            except MnistSoftmaxError as exc:
                failed += 1
                if args.json:  # every input gets its row, so a script can account for all of them
                    print(json.dumps({"path": str(path), "prediction": None, "error": str(exc)}))
                print(printable(f"error: {exc}"), file=sys.stderr)
    if failed:
        return ExitCode.PARTIAL if failed < len(files) else ExitCode.DATA
    return ExitCode.OK


def cmd_read(args) -> int:
    """Read a written number: the digits found on a line, left to right, each with its confidence.

    The ink is cleaned as predict cleans it, cut into strokes, and the strokes grouped into digits (strokes above
    one another are one digit, side by side are two; specks and stray marks are dropped, touching digits split);
    each digit then goes through predict's pipeline and the model.
    """
    import numpy as np

    from .errors import MnistSoftmaxError, OutputError
    from .reading import read_number

    model, shape, files = _image_model_and_files(args)
    if args.explain:
        try:
            Path(args.explain).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {args.explain}: {exc.strerror or exc}") from None
    names = [str(n) for n in model.class_names]
    labels = model.classes.tolist()
    stems = _figure_stems(files)
    failed = 0
    for path in files:
        try:
            ink, digits = read_number(model, path)
            text = "".join(names[d.index] for d in digits)
            if args.json:
                print(json.dumps({"path": str(path), "text": text, "digits": [
                    {"box": {"top": d.box[0], "left": d.box[1], "bottom": d.box[2], "right": d.box[3]},
                     "prediction": labels[d.index], "confidence": round(float(d.probabilities[d.index]), 6),
                     "probabilities": {names[i]: round(float(p), 6) for i, p in enumerate(d.probabilities)},
                     **({"novelty": round(d.novelty, 4)} if d.novelty is not None else {})} for d in digits]}))
            elif digits:
                each = " ".join(f"{names[d.index]} ({100 * d.probabilities[d.index]:.0f}%)" for d in digits)
                print(printable(f"{path}: {text}   {each}"))
            else:
                print(printable(f"{path}: no digits found"))
            if args.explain:
                from . import plots
                from .preprocess import load_pixels

                photo, _ = load_pixels(path, photo=True)
                inputs = np.stack([d.raw * model.preprocessing.scale for d in digits]) if digits else None
                features = model.features(np.stack([d.raw for d in digits])) if digits else None
                original = (ink.ink.shape[0] * ink.scale[0], ink.ink.shape[1] * ink.scale[1])
                plots.save(plots.read_figure(photo, original, [d.box for d in digits], inputs, features, model.coef,
                                             [d.index for d in digits], [d.probabilities for d in digits], names),
                           Path(args.explain) / f"{stems[path]}.read.png")
        except MnistSoftmaxError as exc:
            failed += 1
            if args.json:
                print(json.dumps({"path": str(path), "text": None, "digits": [], "error": str(exc)}))
            print(printable(f"error: {exc}"), file=sys.stderr)
    if failed:
        return ExitCode.PARTIAL if failed < len(files) else ExitCode.DATA
    return ExitCode.OK


def cmd_app(args) -> int:
    """Write the drawing page: one HTML file with the model inside; it opens from disk, offline, on any device."""
    from .app import write_page
    from .modelfile import load_model

    try:
        path = write_page(load_model(args.model), args.out)
    except OSError as exc:
        from .errors import OutputError

        raise OutputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(json.dumps({"page": str(path)}) if args.json else f"page      {path}")
    return ExitCode.OK


def cmd_serve(args) -> int:
    """Serve the drawing page on 127.0.0.1 (a free port unless --port), until Ctrl-C."""
    from .app import make_server
    from .modelfile import load_model

    model = load_model(args.model)
    try:
        server = make_server(model, args.port)
    except OSError as exc:
        from .errors import OutputError

        raise OutputError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(json.dumps({"url": url}) if args.json else f"serving   {url}   (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return ExitCode.OK


def cmd_export(args) -> int:
    """Export a model for other runtimes: ONNX (raw uint8 pixels in; label and probabilities out) or JSON weights."""
    from .export import export_model
    from .modelfile import load_model

    path = export_model(load_model(args.model), args.out, args.format)
    print(json.dumps({"export": str(path), "format": args.format}) if args.json else f"{args.format:<9} {path}")
    return ExitCode.OK


def cmd_data_fetch(args) -> int:
    """Download a dataset into the cache (verifying every file), or import it from a folder with --from DIR."""
    from .data import bundled_dir, dataset_cache, import_dataset, load_dataset
    from .datasets import get_dataset
    from .progress import download_progress

    spec = get_dataset(args.dataset)
    if args.source:
        dataset = import_dataset(spec.name, args.source)
    else:
        dataset = load_dataset(spec.name, download=True, progress=download_progress(args.quiet))
    report = {"dataset": spec.name, "files": dataset.sources, "cache": str(dataset_cache(spec))}
    if args.json:
        print(json.dumps(report))
    else:
        where = " (the copy inside the package)" if bundled_dir(spec) and str(bundled_dir(spec)) in str(
            dataset.sources.get("train_images")) else ""
        print(f"{spec.name}: all files present and verified{where}")
        for role, path in dataset.sources.items():
            print(f"  {role:<13} {path}")
    return ExitCode.OK

def cmd_data_verify(args) -> int:
    """Re-hash every file of a dataset against its pinned SHA-256 (the decompressed payload)."""
    from .data import verify_dataset

    results = verify_dataset(args.dataset, args.data_dir)
    bad = [r for r in results if r[2]]
    if args.json:
        print(json.dumps({"dataset": args.dataset, "ok": not bad,
                          "files": [{"name": n, "path": p, "problem": e} for n, p, e in results]}))
    else:
        for name, path, problem in results:
            print(f"{'ok  ' if not problem else 'FAIL'}  {name:<24} {problem or path}")
    if bad:
        print(f"error: {len(bad)} of {len(results)} files missing or invalid; run "
              f"'mnist-softmax data fetch --dataset {args.dataset}'", file=sys.stderr)
        return ExitCode.DATA
    return ExitCode.OK


def cmd_data_info(args) -> int:
    """Show the datasets: classes, mirrors, checksums and where each file is found now."""
    from .data import cache_root, dataset_cache, locate, mirrors
    from .datasets import DATASETS

    names = [args.dataset] if args.dataset else list(DATASETS)
    info: list[dict[str, Any]] = []
    for name in names:
        spec = DATASETS.get(name)
        if spec is None:
            raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
        found = locate(spec, args.data_dir) if spec.files else {}
        info.append({
            "name": spec.name, "title": spec.title, "classes": list(spec.class_names),
            "image_shape": list(spec.image_shape), "license": spec.license, "source": spec.source,
            "digest_kind": spec.digest_kind,
            "archive": {"name": spec.archive.name, "sha256": spec.archive.sha256, "size": spec.archive.size}
            if spec.archive else None,
            "cache": str(dataset_cache(spec)) if spec.files else None, "mirrors": list(mirrors(spec)),
            "files": [{"name": f.name, "sha256": f.sha256, "found": str(found[f.role]) if found[f.role] else None}
                      for f in spec.files],
        })
    if args.json:
        print(json.dumps({"cache_root": str(cache_root()), "datasets": info}))
        return ExitCode.OK
    print(f"cache root: {cache_root()}")
    for d in info:
        print(f"\n{d['name']}: {d['title']}")
        print(f"  classes  {', '.join(d['classes'])}")
        print(f"  images   {d['image_shape'][0]}x{d['image_shape'][1]}, license {d['license']}")
        print(f"  source   {d['source']}")
        if not d["files"]:
            print("  files    bundled with scikit-learn, no download needed")
            continue
        print(f"  cache    {d['cache']}")
        for m in d["mirrors"]:
            print(f"  mirror   {m}")
        if d["archive"]:
            print(f"  archive  {d['archive']['name']} ({d['archive']['size']:,} bytes) sha256 "
                  f"{d['archive']['sha256'][:16]}... (of the archive as published)")
        kind = {"payload": "of the decompressed payload", "file": "of the .gz file as published",
                "archive": "pinned when extracted from the verified archive"}[d["digest_kind"]]
        print(f"  digests  SHA-256 {kind}")
        for f in d["files"]:
            digest = f"sha256 {f['sha256'][:16]}..." if f["sha256"] else "(from the archive)"
            print(f"  {f['name']:<40} {digest}  {f['found'] or 'not present'}")
    return ExitCode.OK


# ---------------------------------------------------------------- parser


def _summary(command) -> str:
    """A command's one-line help: the first line of its docstring."""
    return (command.__doc__ or "").partition("\n")[0]


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    common.add_argument("--traceback", action="store_true", help="show Python tracebacks (for developers)")
    data = _Parser(add_help=False)
    data.add_argument("--data-dir", metavar="DIR",
                      help="folder holding the four IDX files (.gz or not); "
                           "default: $MNIST_SOFTMAX_DATA_DIR, the cache")
    data.add_argument("--offline", action="store_true", help="never download (also: MNIST_SOFTMAX_OFFLINE=1)")

    parser = _Parser(
        prog="mnist-softmax",
        description="Softmax regression on MNIST-format data. Commands: train, evaluate, report, predict, read, "
                    "app, serve, export, data (fetch, verify, info); 'mnist-softmax COMMAND --help' for each.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"mnist-softmax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    from .datasets import DATASETS
    from .recipes import RECIPES

    p = sub.add_parser("train", parents=[common, data], help=cmd_train.__doc__, description=cmd_train.__doc__,
                       epilog=EPILOG)
    p.add_argument("--dataset", default="mnist", metavar="NAME_OR_DIR", type=_dataset_arg,
                   help=f"{', '.join(DATASETS)}, or a folder holding four IDX files (and optionally classes.txt, "
                        f"one class name per line); default: mnist, which ships with the package")
    d, t, o = RECIPES["default"], RECIPES["tutorial"], RECIPES["optimal"]
    p.add_argument("--recipe", default="default", choices=list(RECIPES),
                   help=f"default: momentum SGD, {d.epochs:g} epochs, smooth weight maps, the linear model's best "
                        f"accuracy in well under a second; tutorial: TensorFlow's mnist_softmax.py (plain SGD, rate "
                        f"{t.learning_rate:g}, batch {t.batch_size}, {t.steps:,} steps); optimal: the exact optimum of "
                        f"the L2-regularised loss (l2 {o.l2:g}), as scikit-learn's LogisticRegression reaches it. "
                        f"The options below override the recipe's values (default: default)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to create (default: a new one under runs/)")
    p.add_argument("--learning-rate", type=_number(float, minimum=0), metavar="RATE",
                   help=f"SGD step size, used as given (default: the recipe's: default {d.learning_rate:g}, capped at "
                        f"{d.lr_cap:g} / the data's largest covariance eigenvalue, so any pixel scale trains; "
                        f"tutorial {t.learning_rate:g})")
    p.add_argument("--momentum", type=_number(float, minimum=0, strict=False), metavar="BETA",
                   help=f"heavy-ball momentum in [0, 1) (default: default {d.momentum:g}, tutorial {t.momentum:g})")
    p.add_argument("--batch-size", type=_number(int, minimum=0), metavar="N",
                   help=f"images per SGD step (default: default {d.batch_size}, tutorial {t.batch_size}; 64 is the "
                        f"Cross Validated answer's variant of the tutorial)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_number(int, minimum=0, maximum=10**9), metavar="N",
                        help=f"SGD updates, or Newton iterations at most (default: tutorial {t.steps:,}, optimal "
                             f"{o.steps:,})")
    length.add_argument("--epochs", type=_number(float, minimum=0, maximum=10**6), metavar="N",
                        help=f"passes over the training set (default: default {d.epochs:g}, at least "
                             f"{d.min_steps} steps)")
    p.add_argument("--l2", type=_number(float, minimum=0, strict=False), metavar="LAMBDA",
                   help=f"L2 penalty: loss + LAMBDA/2 * ||W||^2 (default: default {d.l2:g}, tutorial {t.l2:g}, "
                        f"optimal {o.l2:g})")
    p.add_argument("--smooth", type=_number(float, minimum=0, strict=False), metavar="S",
                   help=f"smoothness penalty: + S/2 * the summed squared differences of neighbouring weights in each "
                        f"class's weight image; larger S gives smoother, more readable maps (default: default "
                        f"{d.smooth:g}, chosen on the validation split; tutorial and optimal {t.smooth:g})")
    p.add_argument("--average", type=_number(float, minimum=0, strict=False), metavar="FRACTION",
                   help=f"the model is the mean of the weights over this last fraction of the SGD steps (0: the "
                        f"last step's; default: default {d.average:g}, tutorial {t.average:g})")
    p.add_argument("--seed", type=_number(int, minimum=0, strict=False), default=0, help="default: 0")
    p.add_argument("--no-plots", action="store_true", help="do not draw weights.png, weights.gif and curves.png")
    p.add_argument("--deskew", action="store_true",
                   help="straighten each image by its moments; the model remembers and applies it when predicting")
    p.add_argument("--validation-size", type=_number(int, minimum=0, strict=False), metavar="N",
                   help="last N training images held out (default: 5000; 0 trains on all, and then the model has no "
                        "calibration and no refusal statistics: predict answers every image)")
    p.add_argument("--shards", metavar="DIR",
                   help="train out of core on the images-*.npy / labels-*.npy pairs (or raw IDX files) in DIR, read a "
                        "window at a time; validation and test still come from --dataset")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="train on the Dask cluster at ADDRESS (tcp://host:8786), or on a new local one with 'local' "
                        "(needs dask: pip install 'dask[array]' distributed)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", parents=[common, data], help=cmd_evaluate.__doc__,
                       description=cmd_evaluate.__doc__, epilog=EPILOG)
    p.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    p.add_argument("--dataset", metavar="NAME_OR_DIR", type=_dataset_arg,
                   help="default: the dataset the model was trained on, where its run found it")
    p.add_argument("--split", default="test", choices=["test", "validation", "train"], help="default: test")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", parents=[common, data], help=cmd_report.__doc__, description=cmd_report.__doc__,
                       epilog=EPILOG)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by train")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("predict", parents=[common], help=_summary(cmd_predict),
                       description=cmd_predict.__doc__, epilog=EPILOG + "",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    p.add_argument("files", metavar="FILE_OR_DIR", nargs="+", help="image files, or folders of them")
    p.add_argument("--top", type=_number(int, minimum=0), default=3, help="classes shown per image (default: 3)")
    p.add_argument("--explain", metavar="DIR", help="write each image's evidence figure to DIR/NAME.evidence.png")
    p.add_argument("--show-input", metavar="DIR",
                   help="write the 28x28 image given to the model to DIR/NAME.input.png (8-bit, light on dark, as in "
                        "MNIST; predict reads it back as it is, to the same answer)")
    p.add_argument("--input-figure", action="store_true",
                   help="with --show-input, also DIR/NAME.input-figure.png: what the model sees, enlarged")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("read", parents=[common], help=_summary(cmd_read), description=cmd_read.__doc__,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    p.add_argument("files", metavar="FILE_OR_DIR", nargs="+", help="image files, or folders of them")
    p.add_argument("--explain", metavar="DIR",
                   help="write each image's figure (the photo, the digits found, what the model saw and its evidence) "
                        "to DIR/NAME.read.png")
    p.set_defaults(func=cmd_read)

    p = sub.add_parser("app", parents=[common], help=_summary(cmd_app), description=cmd_app.__doc__,
                       epilog=EPILOG)
    p.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    p.add_argument("--out", default="draw.html", metavar="PAGE", help="default: draw.html")
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("serve", parents=[common], help=cmd_serve.__doc__, description=cmd_serve.__doc__,
                       epilog=EPILOG)
    p.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    p.add_argument("--port", type=_number(int, minimum=0, strict=False, maximum=65535), default=0,
                   help="default: a free port")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export", parents=[common], help=cmd_export.__doc__, description=cmd_export.__doc__,
                       epilog=EPILOG)
    p.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    p.add_argument("--format", default="onnx", choices=["onnx", "json"], help="default: onnx (needs the onnx package)")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("data", help="download, verify and describe datasets", description="Manage datasets.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser, required=True)
    names = [n for n in DATASETS if n != "digits"]
    q = dsub.add_parser("fetch", parents=[common], help=cmd_data_fetch.__doc__, description=cmd_data_fetch.__doc__)
    q.add_argument("--dataset", default="mnist", choices=names, help="default: mnist")
    q.add_argument("--from", dest="source", metavar="DIR",
                   help="import the files from this folder (verified, then copied into the cache) instead of "
                        "downloading; for EMNIST, the folder holding its gzip.zip")
    q.set_defaults(func=cmd_data_fetch)
    q = dsub.add_parser("verify", parents=[common], help=cmd_data_verify.__doc__,
                        description=cmd_data_verify.__doc__)
    q.add_argument("--dataset", default="mnist", choices=names, help="default: mnist")
    q.add_argument("--data-dir", metavar="DIR", help="verify this folder instead of the cache")
    q.set_defaults(func=cmd_data_verify)
    q = dsub.add_parser("info", parents=[common], help=cmd_data_info.__doc__, description=cmd_data_info.__doc__)
    q.add_argument("--dataset", choices=list(DATASETS), help="default: all")
    q.add_argument("--data-dir", metavar="DIR", help="look for the files in this folder")
    q.set_defaults(func=cmd_data_info)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (a damaged cache entry rebuilt, say) as one line on stderr, not Python's two-line form."""
    print(f"warning: {message}", file=sys.stderr)


def _command_parser(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The (sub)command's parser that `args` were parsed by: `mnist-softmax data info`'s, say."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _command_parser(action.choices[getattr(args, action.dest)], args)
    return parser


def main(argv=None) -> int:
    """Entry point: parse, run, and turn every expected failure into one line and an exit code."""
    import warnings

    warnings.showwarning = _show_warning
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command's own parser, whose --help lists its options
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(args.func(args))
    except MnistSoftmaxError as exc:
        if args.traceback:
            raise
        print(printable(f"error: {exc.cli or exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if args.traceback:
            raise
        print("error: out of memory", file=sys.stderr)
        return ExitCode.INTERNAL
    except BrokenPipeError:
        return ExitCode.OK
    except OSError as exc:  # the disk, a folder, a device: something outside us, named by its file
        if args.traceback:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(printable(f"error: {exc.strerror or exc}{where}"), file=sys.stderr)
        return ExitCode.OUTPUT
    except Exception as exc:  # the boundary: a bug, reported in one line unless --traceback
        if args.traceback:
            raise
        print(printable(f"error: internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)"),
              file=sys.stderr)
        return ExitCode.INTERNAL
