"""The HTML report of a run: one self-contained file (figures inline), readable offline in any browser."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from .data import Dataset
from .errors import DataFormatError
from .files import atomic_write
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


def _png(fig) -> str:
    """A figure as an <img> with the PNG inline (base64), so the report needs no other file."""
    from .plots import plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="" src="data:image/png;base64,{data}">'


def read_history(path: Path) -> dict[str, np.ndarray]:
    """history.csv back into arrays, one per column."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {key: np.array([float(r[key]) for r in rows]) for key in (rows[0] if rows else [])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFormatError(f"{path}: not a readable history ({exc})") from None


def _table(header, rows, left=1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(str(h))}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{html.escape(str(c))}</td>' for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def build_report(model: SoftmaxModel, metrics: dict, history: dict, dataset: Dataset, mistakes: int = 32) -> str:
    """The report's HTML text."""
    from . import plots

    names = [str(n) for n in model.class_names]
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
    hyper = meta.get("hyperparameters", {})
    recipe = metrics.get("recipe", hyper.get("name", "?"))
    reference = REFERENCE["deskew" if model.preprocessing.deskew else recipe] if recipe in REFERENCE else ""

    def pct(key):
        return "-" if metrics.get(key) is None else f"{100 * metrics[key]:.2f}%"

    parts = [
        f"<h1>{html.escape(dataset.spec.title)}: softmax regression</h1>",
        f'<p class="muted">recipe <b>{html.escape(recipe)}</b>{", deskewed images" if model.preprocessing.deskew else ""}'
        f' · seed {metrics.get("seed", "?")} · trained {html.escape(str(meta.get("created", "?")))} · '
        f'mnist-softmax {html.escape(str(meta.get("package_version", "?")))}</p>',
        '<div class="cards">',
        *(f'<div class="card"><div class="muted">{label}</div><div class="big">{pct(key)}</div></div>'
          for label, key in (("test accuracy", "test_accuracy"), ("validation accuracy", "validation_accuracy"),
                             ("train accuracy", "train_accuracy"))),
        f'<div class="card"><div class="muted">training time</div><div class="big">'
        f'{metrics.get("train_seconds", 0):.2f} s</div></div>',
        "</div>",
        f"<p>Reference: {html.escape(reference)}.</p>" if reference else "",
        "<h2>Data</h2>",
        f"<p>{metrics.get('n_train', 0):,} training, {metrics.get('n_validation', 0):,} validation and "
        f"{metrics.get('n_test', 0):,} test images. Each file was verified against the SHA-256 of its decompressed "
        f"payload:</p>",
        _table(["file", "SHA-256 (decompressed payload)"],
               sorted((meta.get("dataset", {}).get("checksums") or {}).items()), left=2),
        "<h2>Hyperparameters</h2>",
        _table(["setting", "value"], [(k, v) for k, v in hyper.items() if v is not None and k != "name"], left=2),
        "<h2>What the model learned</h2>",
        "<p>Each panel is one class's weights drawn as an image: blue pixels are evidence <i>for</i> the class when "
        "inked, red pixels evidence against. A class's score is the sum of its map times the image, plus a bias.</p>",
        _png(plots.weight_maps(model.coef, shape, names)) if shape else "",
        "<h2>Learning curves</h2>",
        _png(plots.learning_curves(history)) if history else "<p>No history recorded.</p>",
        "<h2>Confusion on the test set</h2>",
        _png(plots.confusion(counts, names)),
        "<p>Most confused pairs:</p>",
        _table(["true", "predicted as", "images"], [(names[i], names[j], n) for i, j, n in most_confused(counts)]),
        "<h2>Per-class metrics (test set)</h2>",
        _table(["class", "precision", "recall", "F1", "support"],
               [(names[c], f"{stats['precision'][c]:.4f}", f"{stats['recall'][c]:.4f}", f"{stats['f1'][c]:.4f}",
                 int(stats["support"][c])) for c in range(len(names))]),
        "<h2>The most confident mistakes</h2>",
        _png(plots.mistakes(features[worst], truth[worst], predicted[worst], proba[worst, predicted[worst]], names,
                            shape)) if shape and len(worst) else "<p>No mistakes on the test set.</p>",
        "<h2>Why the model made its most confident mistake</h2>",
        _png(plots.evidence(features[worst[0]], model.coef, model.intercept, proba[worst[0]], names, shape))
        if shape and len(worst) else "",
        "<p>The evidence maps are exact: summed over pixels, plus the bias, they give the class scores.</p>",
    ]
    title = html.escape(f"mnist-softmax report: {dataset.spec.name}, {recipe}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{title}</title><style>{CSS}</style></head>'
            f"<body>{''.join(parts)}</body></html>\n")


def write_report(run_dir: Path, model: SoftmaxModel, dataset: Dataset) -> Path:
    """Write RUN_DIR/report.html atomically."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{run_dir / 'metrics.json'}: not a readable metrics file ({exc})") from None
    history = read_history(run_dir / "history.csv") if (run_dir / "history.csv").exists() else {}
    text = build_report(model, metrics, history, dataset)
    path = run_dir / "report.html"
    with atomic_write(path) as out:
        out.write(text.encode())
    return path
