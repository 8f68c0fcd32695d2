"""The HTML report of a run: one self-contained file (figures inline), readable offline in any browser."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import numpy as np

from .data import Dataset
from .errors import DataFormatError, OutputError, UsageError
from .files import atomic_write
from .htmlpage import Markup, Page, document, join, render
from .metrics import confusion_matrix, most_confused, per_class
from .model import SoftmaxModel, softmax

# Test accuracies to compare a run against, by dataset and recipe ("deskew" for any deskewed run). A dataset with no
# entry gets no reference line: another dataset's figures would mislead.
_BEST_MNIST = ("softmax regression on raw pixels at its best (the L2 optimum, l2 1e-4) scores about 92.6% on the test "
               "set")
_BEST_FASHION = ("softmax regression on raw pixels at its best (the L2 optimum, l2 1e-4, this package's optimal "
                 "recipe) scores about 84.4% on the test set")
REFERENCES = {
    ("mnist", "tutorial"): "TensorFlow's mnist_softmax.py tutorial reports about 92% on the test set",
    ("mnist", "default"): _BEST_MNIST,
    ("mnist", "optimal"): _BEST_MNIST,
    ("mnist", "deskew"): "softmax regression on deskewed pixels scores about 95.7% on the test set",
    ("fashion-mnist", "default"): _BEST_FASHION,
    ("fashion-mnist", "optimal"): _BEST_FASHION,
}

CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5rem; color: #1d1d1f; line-height: 1.45; }
.scroll { max-width: 100%; overflow-x: auto; }
table.wrap td { overflow-wrap: anywhere; }  /* long file names and checksums wrap on a phone */
img[hidden] { display: none; }
.frames img { margin: .4rem 0; width: 640px; max-width: 100%; }
.controls { display: flex; align-items: center; gap: .7rem; flex-wrap: wrap; }
.controls input { flex: 1 1 12rem; max-width: 28rem; }
.controls output { font-variant-numeric: tabular-nums; min-width: 6rem; }
.controls button { font: inherit; padding: .3rem .9rem; border-radius: 6px; border: 1px solid #888;
                   background: #f4f4f6; }
table.confusion { font-size: .8rem; font-variant-numeric: tabular-nums; }
table.confusion th, table.confusion td { padding: .2rem .35rem; overflow-wrap: normal; white-space: nowrap; }
table.confusion th.corner { white-space: normal; font-weight: normal; color: #555; }
table.confusion td.d { background: #d1e5f0; font-weight: 600; }
table.confusion td.e1 { background: #fdf0e9; } table.confusion td.e2 { background: #fbd7c4; }
table.confusion td.e3 { background: #f4a582; } table.confusion td.e4 { background: #d6604d; color: #fff; }
table.confusion td.z { color: #bbb; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: right; }
th { background: #f4f4f6; } td.l, th.l { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: .8rem 0; }
.big { font-size: 1.6rem; font-weight: 600; } .muted { color: #666; } code { font-size: .85rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; } .card { border: 1px solid #ddd; border-radius: 8px;
padding: .7rem 1rem; min-width: 10rem; }
@media (max-width: 600px) { body { padding: .8rem; } h1 { font-size: 1.5rem; }
  table { font-size: .85rem; } th, td { padding: .25rem .3rem; }
  table.confusion { font-size: .7rem; } table.confusion th, table.confusion td { padding: .1rem .12rem; } }
"""


def _png(fig) -> Markup:
    """A figure as an <img> with the PNG inline (base64), so the report needs no other file."""
    from .plots import plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return render('<img alt="" src="data:image/png;base64,{{data}}">', data=data)


MAX_SIDE_FILE = 16 << 20  # bytes of metrics.json or history.csv read at most: real ones are a few KB


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():  # a folder, or a FIFO that would block
        raise DataFormatError(f"{path}: not a readable {what} (not a regular file)")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SIDE_FILE + 1)
        if len(data) > MAX_SIDE_FILE:
            raise DataFormatError(f"{path}: not a {what}: larger than {MAX_SIDE_FILE:,} bytes")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a readable {what} ({exc})") from None


def read_history(path: Path) -> dict[str, np.ndarray]:
    """history.csv back into arrays, one per column: a `step` column and loss/accuracy pairs, all finite."""
    text = _read_text(path, "history")
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
        history = {key: np.array([float(r[key]) for r in rows]) for key in (rows[0] if rows else [])}
    except (ValueError, KeyError, TypeError, csv.Error) as exc:
        raise DataFormatError(f"{path}: not a readable history ({exc})") from None
    if not history:
        return {}
    sets = ("train", "validation", "test")
    pairs = [name for name in sets if f"{name}_loss" in history and f"{name}_accuracy" in history]
    halves = [name for name in sets if (f"{name}_loss" in history) != (f"{name}_accuracy" in history)]
    if ("step" not in history or not pairs or halves
            or not all(np.isfinite(v).all() and np.abs(v).max() <= 1e9 for v in history.values())):
        raise DataFormatError(f"{path}: not a readable history (needs a step column, loss and accuracy columns in "
                              f"pairs, and numbers from -1e9 to 1e9)")
    return history


def read_metrics(path: Path) -> dict:
    """metrics.json as a dict (a JSON object; values are checked where they are used)."""
    text = _read_text(path, "metrics file")
    try:
        metrics = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DataFormatError(f"{path}: not a readable metrics file ({exc})") from None
    if not isinstance(metrics, dict):
        raise DataFormatError(f"{path}: not a readable metrics file (expected a JSON object)")
    return metrics


def _number(value) -> float | None:
    """A finite real number, or None for anything else (a hostile or damaged metrics file shows '-')."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return value
    return None


def _text(value, limit: int = 100) -> str:
    """A value shown as text, at most `limit` characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(header, rows, left=1, cls: str = "") -> Markup:
    """A table of text; the first `left` columns left-aligned, the rest (numbers) right-aligned."""

    def row(cells, tag):
        return join(render('<{{tag}} class="{{cls}}">{{cell}}</{{tag}}>', tag=Markup(tag), cls="l" if i < left else "",
                           cell=_text(c, 200)) for i, c in enumerate(cells))

    return render('<table class="{{cls}}"><tr>{{head}}</tr>{{body}}</table>', cls=cls, head=row(header, "th"),
                  body=join(render("<tr>{{cells}}</tr>", cells=row(r, "td")) for r in rows))


def _scroll(table: Markup) -> Markup:
    """A table that scrolls sideways by itself on a narrow screen, rather than widening the page."""
    return render('<div class="scroll">{{table}}</div>', table=table)


def _confusion_table(counts: np.ndarray, names: list[str]) -> Markup:
    """The confusion counts as an HTML table (legible at any width): rows true, columns predicted; the diagonal in
    blue, mistakes shaded by their share of the true class (0.5%, 1%, 2%, 5% and up)."""
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)

    def cell(i, j):
        if i == j:
            cls = "d"
        elif counts[i, j] == 0:
            cls = "z"
        else:
            cls = "e" + str(int(np.searchsorted([0.005, 0.01, 0.02, 0.05], share[i, j], side="right")))
        cls = "" if cls == "e0" else cls
        return render('<td class="{{cls}}">{{n}}</td>', cls=cls, n=int(counts[i, j]))

    head = join(render("<th>{{n}}</th>", n=_text(n, 12)) for n in names)
    rows = join(render('<tr><th class="l">{{name}}</th>{{cells}}</tr>', name=_text(names[i], 12),
                       cells=join(cell(i, j) for j in range(len(names)))) for i in range(len(names)))
    return _scroll(render('<table class="confusion"><tr><th class="l corner">true ↓ pred. →</th>{{head}}</tr>'
                          "{{rows}}</table>", head=head, rows=rows))


_SETTINGS = {  # recipe field -> what the report calls it; fields not named here are internals it leaves out
    "momentum": "momentum", "batch_size": "batch size", "schedule": "learning-rate schedule",
    "average": "weights averaged over the last", "l2": "L2 penalty (l2)", "smooth": "smoothness penalty",
    "center": "centred inputs for the optimiser",
}


def _settings(hyper: dict, metrics: dict, deskew: bool) -> list[tuple[str, str]]:
    """What the run did, for people: the learning rate actually used (after any cap), steps and epochs run, and the
    recipe's settings that change the result."""
    solvers = {"sgd": "mini-batch SGD", "lbfgs": "L-BFGS (full batch)"}
    rows = [("solver", solvers.get(str(hyper.get("solver")), _text(hyper.get("solver", "?"))))]
    used, asked = _number(metrics.get("learning_rate")), _number(hyper.get("learning_rate"))
    if used is not None:
        note = f" (the recipe's {asked:g}, capped for this data's scale)" if asked is not None and used < asked else ""
        rows.append(("learning rate used", f"{used:.3g}{note}"))
    steps, epochs = _number(metrics.get("steps")), _number(metrics.get("epochs"))
    if steps is not None:
        unit = "iterations" if hyper.get("solver") == "lbfgs" else "steps"
        rows.append((unit + " run", f"{steps:,.0f}" + (f" ({epochs:.2f} epochs)" if epochs is not None and
                                                          hyper.get("solver") != "lbfgs" else "")))
    for key, label in _SETTINGS.items():
        value = hyper.get(key)
        if value is None or value is False or value == 0 or (key == "schedule" and value == "constant"):
            continue
        if hyper.get("solver") == "lbfgs" and key in ("momentum", "batch_size", "schedule", "average"):
            continue
        if key == "average":
            value = f"{_number(value) or 0:.0%} of steps (Polyak-Ruppert)"
        elif value is True:
            value = "yes"
        rows.append((label, _text(value)))
    if hyper.get("solver") == "lbfgs" and _number(hyper.get("tol")) is not None:
        rows.append(("stopping tolerance (largest gradient component)", f"{hyper['tol']:g}"))
    rows.append(("deskewed images", "yes" if deskew else "no"))
    return rows


def class_means(model: SoftmaxModel, images, labels, n_classes: int, chunk: int = 8192) -> np.ndarray:
    """The mean feature vector (k, d) of each class, as the model sees the images (scaled, deskewed if it was)."""
    sums = np.zeros((n_classes, model.coef.shape[1]))
    labels = np.asarray(labels).astype(int)
    for start in range(0, len(labels), chunk):
        features, batch = model.features(images[start : start + chunk]), labels[start : start + chunk]  # (n, d), (n,)
        for c in np.unique(batch):
            sums[c] += features[batch == c].sum(axis=0, dtype=np.float64)
    return sums / np.maximum(np.bincount(labels, minlength=n_classes), 1)[:, None]


def read_animation(path: Path, max_frames: int = 200) -> list[tuple[str, bytes]]:
    """weights.gif's frames as PNGs, each with its label ("step 25", from the GIF's comment); [] without the file."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    if not path.exists():
        return []
    if not path.is_file():  # a folder, or a FIFO that would block
        raise DataFormatError(f"{path}: not a readable weights animation (not a regular file)")
    if path.stat().st_size > MAX_SIDE_FILE:
        raise DataFormatError(f"{path}: not a weights animation: larger than {MAX_SIDE_FILE:,} bytes")
    try:
        with Image.open(path) as gif:
            if gif.format != "GIF" or gif.width * gif.height > 4_000_000 or gif.n_frames > max_frames:
                raise DataFormatError(f"{path}: not a weights animation (a GIF of at most {max_frames} frames of "
                                      f"at most 4 million pixels)")
            words = gif.info.get("comment", b"").decode("ascii", "replace").split()
            unit = {"steps": "step", "iterations": "iteration"}.get(words[0] if words else "")
            steps = words[1:] if unit and len(words) == gif.n_frames + 1 else None
            frames = []
            for i, frame in enumerate(ImageSequence.Iterator(gif)):
                buffer = io.BytesIO()
                frame.convert("RGB").save(buffer, format="PNG", optimize=False)
                label = f"{unit} {int(steps[i]):,}" if steps and steps[i].isdigit() else f"frame {i + 1}"
                frames.append((label, buffer.getvalue()))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DataFormatError(f"{path}: not a readable weights animation ({exc})") from None
    return frames


# The step slider of the weights animation: shows one frame at a time (no inline handlers: the CSP allows only this
# script, by its hash).
SLIDER_JS = """"use strict";
(function () {
  const slider = document.getElementById("step"), out = document.getElementById("step-out");
  const play = document.getElementById("play");
  if (!slider) return;
  const frames = Array.from(document.querySelectorAll(".frames img"));
  let timer = null;
  function show(i) {
    frames.forEach((img, j) => { img.hidden = j !== i; });
    out.textContent = frames[i].dataset.label;
    slider.setAttribute("aria-valuetext", frames[i].dataset.label);
  }
  function stop() { clearInterval(timer); timer = null; play.textContent = "Play"; }
  slider.addEventListener("input", () => { stop(); show(Number(slider.value)); });
  play.addEventListener("click", () => {
    if (timer) { stop(); return; }
    if (Number(slider.value) === frames.length - 1) slider.value = 0;
    show(Number(slider.value));
    play.textContent = "Pause";
    timer = setInterval(() => {
      const next = Math.min(Number(slider.value) + 1, frames.length - 1);
      slider.value = next;
      show(next);
      if (next === frames.length - 1) stop();
    }, 180);
  });
})();
"""


def _animation(frames: list[tuple[str, bytes]]) -> Markup:
    """The frames as inline images, one shown at a time, and a step slider (with a play button) that picks it."""
    last = len(frames) - 1
    images = join(
        render('<img alt="the weights at {{label}}" data-label="{{label}}" src="data:image/png;base64,{{data}}"'
               "{{hidden}}>", label=label, data=base64.b64encode(png).decode(),
               hidden=Markup("" if i == last else " hidden"))
        for i, (label, png) in enumerate(frames))
    return render('<div class="frames">{{images}}</div><div class="controls"><button id="play" type="button">Play'
                  '</button><input id="step" type="range" min="0" max="{{last}}" value="{{last}}" step="1" '
                  'aria-label="training step" aria-valuetext="{{label}}"><output id="step-out" for="step">{{label}}'
                  "</output></div>", images=images, last=last, label=frames[-1][0])


def _card(label: str, value: str) -> Markup:
    return render('<div class="card"><div class="muted">{{label}}</div><div class="big">{{value}}</div></div>',
                  label=label, value=value)


def build_report(model: SoftmaxModel, metrics: dict, history: dict, dataset: Dataset, mistakes: int = 32,
                 animation: list | None = None) -> str:
    """The report's HTML text."""
    return build_document(model, metrics, history, dataset, mistakes, animation).html


def build_document(model: SoftmaxModel, metrics: dict, history: dict, dataset: Dataset, mistakes: int = 32,
                   animation: list | None = None) -> Page:
    """The report as a page and its Content-Security-Policy. Every value from the run folder is escaped.

    `animation`: the frames of weights.gif as (label, PNG bytes), shown with a step slider.
    """
    from . import plots

    names = [str(n) for n in model.class_names]
    if len(names) != len(dataset.spec.class_names):
        raise UsageError(f"the model has {len(names)} classes, {dataset.spec.name} has "
                         f"{len(dataset.spec.class_names)}")
    shape = model.preprocessing.image_shape
    features = model.features(dataset.test_images)  # (n, d)
    logits = features @ model.coef.T + model.intercept  # (n, k)
    proba = softmax(logits / np.float32(model.temperature))  # calibrated (temperature 1 for older models)
    predicted = proba.argmax(axis=1)
    truth = np.asarray(dataset.test_labels).astype(int)
    from .calibrate import ECE_BINS, expected_calibration_error

    ece_before, ece_after = expected_calibration_error(softmax(logits), truth), expected_calibration_error(proba, truth)
    counts = confusion_matrix(truth, predicted, len(names))
    stats = per_class(counts)
    wrong = np.nonzero(predicted != truth)[0]
    worst = wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")][:mistakes]

    meta = model.metadata
    hyper = meta.get("hyperparameters")
    hyper = hyper if isinstance(hyper, dict) else {}
    recipe = _text(metrics.get("recipe", hyper.get("name", "?")))
    kind = "deskew" if model.preprocessing.deskew else recipe
    reference = REFERENCES.get((dataset.spec.name, kind), "")
    dataset_meta = meta.get("dataset")
    dataset_meta = dataset_meta if isinstance(dataset_meta, dict) else {}
    validation_size = dataset_meta.get("validation_size")
    validation_size = validation_size if isinstance(validation_size, int) and validation_size >= 0 else None
    X_train, y_train, _, _ = dataset.split(validation_size)
    means = class_means(model, X_train, y_train, len(names)) if shape else None
    class_counts = np.bincount(np.asarray(y_train).astype(int), minlength=len(names))
    # the average training image
    mean_image = class_counts @ means / max(class_counts.sum(), 1) if means is not None else None
    checksums = (meta.get("dataset") or {}).get("checksums") if isinstance(meta.get("dataset"), dict) else None

    def pct(key):
        value = _number(metrics.get(key))
        return "-" if value is None else f"{100 * value:.2f}%"

    def count(key):
        value = _number(metrics.get(key))
        return "?" if value is None else f"{value:,.0f}"

    seconds = _number(metrics.get("train_seconds"))
    parts = [
        render("<h1>{{title}}: softmax regression</h1>", title=dataset.spec.title),
        render('<p class="muted">recipe <b>{{recipe}}</b>{{deskew}} · seed {{seed}} · trained {{created}} · '
               "mnist-softmax {{version}}</p>", recipe=recipe,
               deskew=", deskewed images" if model.preprocessing.deskew else "", seed=_text(metrics.get("seed", "?")),
               created=_text(meta.get("created", "?")), version=_text(meta.get("package_version", "?"))),
        render('<div class="cards">{{cards}}</div>', cards=join([
            *(_card(label, pct(key)) for label, key in (("test accuracy", "test_accuracy"),
                                                         ("validation accuracy", "validation_accuracy"),
                                                         ("train accuracy", "train_accuracy"))),
            _card("training time", "-" if seconds is None else f"{seconds:.2f} s"),
        ])),
        render("<p>For comparison: {{reference}}; this run scores {{test}}.</p>", reference=reference,
               test=pct("test_accuracy")) if reference else "",
        Markup("<h2>Data</h2>"),
        render("<p>{{train}} training, {{validation}} validation and {{test}} test images. Each file was verified "
               "against the SHA-256 of its decompressed payload:</p>", train=count("n_train"),
               validation=count("n_validation"), test=count("n_test")),
        _scroll(_table(["file", "SHA-256 (decompressed payload)"],
                       sorted(checksums.items()) if isinstance(checksums, dict) else [], left=2, cls="wrap")),
        Markup("<h2>How it was trained</h2>"),
        _scroll(_table(["setting", "value"], _settings(hyper, metrics, model.preprocessing.deskew), left=2)),
        Markup("<h2>What the model learned</h2>"
               "<p>Each panel is one class's weights drawn as an image: blue pixels are evidence <i>for</i> the class "
               "when inked, red pixels evidence against. A class's score is the sum of its map times the image, plus a "
               "bias.</p>"),
        _png(plots.weight_maps(model.coef, shape, names)) if shape else "",
        Markup("<h2>Watching it learn</h2>"),
        join([Markup("<p>The weights at points during training, all on one colour scale, with the accuracy at "
                     "each point: move the slider, or play it.</p>"), _animation(animation)]) if animation else
        Markup("<p>No weights animation: this run was trained with <code>--no-plots</code>.</p>"),
        Markup("<h2>Why a template is not the average image</h2>"
               "<p>Top: each class's mean training image, what its examples have in common. Middle: that mean minus "
               "the mean of all classes' means, what sets the class apart. Bottom: the weights the model learned. The "
               "weights look more like the middle row than the top one: a class's score must rise for its own images "
               "and not for the others', so a template rewards ink where this class has it and the others do not, "
               "penalises ink where other classes have it, and gives little weight to pixels that every class "
               "inks.</p>"),
        _png(plots.means_and_weights(means, model.coef, shape, names)) if means is not None else "",
        Markup("<h2>Learning curves</h2>"),
        _png(plots.learning_curves(history)) if history else Markup("<p>No history recorded.</p>"),
        Markup("<h2>Confusion on the test set</h2>"
               "<p>Test images by true class (rows) and predicted class (columns). Mistakes are shaded by their share "
               "of the true class: from 0.5%, 1%, 2% and 5% up.</p>"),
        _confusion_table(counts, names),
        Markup("<p>Most confused pairs:</p>"),
        _scroll(_table(["true", "predicted as", "images"],
                       [(names[i], names[j], n) for i, j, n in most_confused(counts)])),
        Markup("<h2>Per-class metrics (test set)</h2>"),
        _scroll(_table(["class", "precision", "recall", "F1", "support"],
                       [(names[c], f"{stats['precision'][c]:.4f}", f"{stats['recall'][c]:.4f}",
                         f"{stats['f1'][c]:.4f}", int(stats["support"][c])) for c in range(len(names))])),
        Markup("<h2>Calibration</h2>"
               f"<p>How far the model's confidence is from its accuracy on the test set (expected calibration error, "
               f"{ECE_BINS} confidence bins): {100 * ece_before:.2f}% as trained, {100 * ece_after:.2f}% with its "
               f"logits divided by the temperature {model.temperature:.3g} fitted on the validation split, which "
               f"predict, read and the drawing page use. Predictions do not change, only how sure they are.</p>"),
        Markup("<h2>The most confident mistakes</h2>"),
        _png(plots.mistakes(features[worst], truth[worst], predicted[worst], proba[worst, predicted[worst]], names,
                            shape)) if shape and len(worst) else Markup("<p>No mistakes on the test set.</p>"),
        Markup("<h2>Why the model made its most confident mistake</h2>"),
        *([Markup("<p>The evidence for a class is each pixel's ink times the class's weight there. It is exact: "
                  "summed over the pixels, plus the class's bias, it is the class's score z(x). A blank pixel "
                  "contributes nothing, however telling its blankness.</p>"),
           _png(plots.evidence(features[worst[0]], model.coef, model.intercept, proba[worst[0]], names, shape)),
           Markup("<p>The same image's evidence relative to the mean image (the average training image m): "
                  "(x − m) × weights. It sums exactly to z(x) − z(m), how far the image's score is above the average "
                  "image's, and it explains the image by how it differs from the average: ink the average image "
                  "also has cancels out, and ink missing where the average image has it counts as evidence "
                  "too.</p>"),
           _png(plots.evidence(features[worst[0]], model.coef, model.intercept, proba[worst[0]], names, shape,
                               reference=mean_image))]
          if shape and len(worst) else []),
    ]
    return document(title=f"mnist-softmax report: {dataset.spec.name}, {recipe}", body=join(parts), styles=[CSS],
                    scripts=[SLIDER_JS] if animation else [])


def write_report(run_dir: Path, model: SoftmaxModel, dataset: Dataset) -> Path:
    """Write RUN_DIR/report.html atomically."""
    metrics = read_metrics(run_dir / "metrics.json")
    history = read_history(run_dir / "history.csv") if (run_dir / "history.csv").exists() else {}
    text = build_report(model, metrics, history, dataset, animation=read_animation(run_dir / "weights.gif"))
    path = run_dir / "report.html"
    try:
        with atomic_write(path) as out:
            out.write(text.encode())
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
