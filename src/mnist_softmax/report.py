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

# What the classic references report for the test set, to compare a run against.
REFERENCE = {
    "tutorial": "TensorFlow's mnist_softmax.py tutorial: about 92% (91.5-92%)",
    "default": "softmax regression on raw pixels at its best: about 92.6% (the L2 optimum)",
    "optimal": "softmax regression on raw pixels at its best: about 92.6% (the L2 optimum)",
    "deskew": "softmax regression on deskewed pixels: about 95.7%",
}

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: right; }
th { background: #f4f4f6; } td.l, th.l { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: .8rem 0; }
.big { font-size: 1.6rem; font-weight: 600; } .muted { color: #666; } code { font-size: .85rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; } .card { border: 1px solid #ddd; border-radius: 8px;
padding: .7rem 1rem; min-width: 10rem; }
"""


def _png(fig) -> Markup:
    """A figure as an <img> with the PNG inline (base64), so the report needs no other file."""
    from .plots import plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return render('<img alt="" src="data:image/png;base64,{{data}}">', data=base64.b64encode(buffer.getvalue()).decode())


MAX_SIDE_FILE = 16 << 20  # bytes of metrics.json or history.csv read at most: real ones are a few KB


def _read_text(path: Path, what: str) -> str:
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
    pairs = [name for name in ("train", "validation", "test")
             if f"{name}_loss" in history and f"{name}_accuracy" in history]
    if "step" not in history or not pairs or not all(np.isfinite(v).all() for v in history.values()):
        raise DataFormatError(f"{path}: not a readable history (needs a step column, loss and accuracy columns, "
                              f"and finite numbers)")
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


def _table(header, rows, left=1) -> Markup:
    def row(cells, tag):
        return join(render('<{{tag}} class="{{cls}}">{{cell}}</{{tag}}>', tag=Markup(tag), cls="l" if i < left else "",
                           cell=_text(c, 200)) for i, c in enumerate(cells))

    return render("<table><tr>{{head}}</tr>{{body}}</table>", head=row(header, "th"),
                  body=join(render("<tr>{{cells}}</tr>", cells=row(r, "td")) for r in rows))


def _card(label: str, value: str) -> Markup:
    return render('<div class="card"><div class="muted">{{label}}</div><div class="big">{{value}}</div></div>',
                  label=label, value=value)


def build_report(model: SoftmaxModel, metrics: dict, history: dict, dataset: Dataset, mistakes: int = 32) -> str:
    """The report's HTML text."""
    return build_document(model, metrics, history, dataset, mistakes).html


def build_document(model: SoftmaxModel, metrics: dict, history: dict, dataset: Dataset, mistakes: int = 32) -> Page:
    """The report as a page and its Content-Security-Policy. Every value from the run folder is escaped."""
    from . import plots

    names = [str(n) for n in model.class_names]
    if len(names) != len(dataset.spec.class_names):
        raise UsageError(f"the model has {len(names)} classes, {dataset.spec.name} has "
                         f"{len(dataset.spec.class_names)}")
    shape = model.preprocessing.image_shape
    features = model.features(dataset.test_images)  # (n, d)
    proba = softmax(features @ model.coef.T + model.intercept)  # (n, k)
    predicted = proba.argmax(axis=1)
    truth = np.asarray(dataset.test_labels).astype(int)
    counts = confusion_matrix(truth, predicted, len(names))
    stats = per_class(counts)
    wrong = np.nonzero(predicted != truth)[0]
    worst = wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")][:mistakes]

    meta = model.metadata
    hyper = meta.get("hyperparameters") if isinstance(meta.get("hyperparameters"), dict) else {}
    recipe = _text(metrics.get("recipe", hyper.get("name", "?")))
    reference = REFERENCE["deskew" if model.preprocessing.deskew else recipe] if recipe in REFERENCE else ""
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
        render("<p>Reference: {{reference}}.</p>", reference=reference) if reference else "",
        Markup("<h2>Data</h2>"),
        render("<p>{{train}} training, {{validation}} validation and {{test}} test images. Each file was verified "
               "against the SHA-256 of its decompressed payload:</p>", train=count("n_train"),
               validation=count("n_validation"), test=count("n_test")),
        _table(["file", "SHA-256 (decompressed payload)"],
               sorted(checksums.items()) if isinstance(checksums, dict) else [], left=2),
        Markup("<h2>Hyperparameters</h2>"),
        _table(["setting", "value"], [(k, v) for k, v in hyper.items() if v is not None and k != "name"], left=2),
        Markup("<h2>What the model learned</h2>"
               "<p>Each panel is one class's weights drawn as an image: blue pixels are evidence <i>for</i> the class "
               "when inked, red pixels evidence against. A class's score is the sum of its map times the image, plus a "
               "bias.</p>"),
        _png(plots.weight_maps(model.coef, shape, names)) if shape else "",
        Markup("<h2>Learning curves</h2>"),
        _png(plots.learning_curves(history)) if history else Markup("<p>No history recorded.</p>"),
        Markup("<h2>Confusion on the test set</h2>"),
        _png(plots.confusion(counts, names)),
        Markup("<p>Most confused pairs:</p>"),
        _table(["true", "predicted as", "images"], [(names[i], names[j], n) for i, j, n in most_confused(counts)]),
        Markup("<h2>Per-class metrics (test set)</h2>"),
        _table(["class", "precision", "recall", "F1", "support"],
               [(names[c], f"{stats['precision'][c]:.4f}", f"{stats['recall'][c]:.4f}", f"{stats['f1'][c]:.4f}",
                 int(stats["support"][c])) for c in range(len(names))]),
        Markup("<h2>The most confident mistakes</h2>"),
        _png(plots.mistakes(features[worst], truth[worst], predicted[worst], proba[worst, predicted[worst]], names,
                            shape)) if shape and len(worst) else Markup("<p>No mistakes on the test set.</p>"),
        Markup("<h2>Why the model made its most confident mistake</h2>"),
        _png(plots.evidence(features[worst[0]], model.coef, model.intercept, proba[worst[0]], names, shape))
        if shape and len(worst) else "",
        Markup("<p>The evidence maps are exact: summed over pixels, plus the bias, they give the class scores.</p>"),
    ]
    return document(title=f"mnist-softmax report: {dataset.spec.name}, {recipe}", body=join(parts), styles=[CSS])


def write_report(run_dir: Path, model: SoftmaxModel, dataset: Dataset) -> Path:
    """Write RUN_DIR/report.html atomically."""
    metrics = read_metrics(run_dir / "metrics.json")
    history = read_history(run_dir / "history.csv") if (run_dir / "history.csv").exists() else {}
    text = build_report(model, metrics, history, dataset)
    path = run_dir / "report.html"
    try:
        with atomic_write(path) as out:
            out.write(text.encode())
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
