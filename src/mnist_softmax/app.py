"""The drawing page: one self-contained HTML file (model, code and styles inline), and a loopback server for it."""

from __future__ import annotations

import base64
import html
import http.server
import json
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import UsageError
from .files import atomic_write
from .model import SoftmaxModel


def build_page(model: SoftmaxModel) -> str:
    """The page's HTML, with the model's weights (float32, base64) and preprocessing embedded."""
    shape = model.preprocessing.image_shape
    if not shape:
        raise UsageError("the drawing page needs an image model (this one has no image shape)")
    data = {
        "coef": base64.b64encode(np.ascontiguousarray(model.coef, dtype="<f4").tobytes()).decode(),
        "intercept": [float(v) for v in model.intercept],
        "classes": model.classes.tolist(),
        "class_names": [str(n) for n in model.class_names],
        "shape": list(shape),
        "deskew": model.preprocessing.deskew,
    }
    meta = model.metadata
    dataset = meta.get("dataset", {}).get("title") or meta.get("dataset", {}).get("name") or "its data"
    accuracy = meta.get("metrics", {}).get("test_accuracy")
    about = f"Model trained on {dataset}" + (f", {100 * accuracy:.2f}% test accuracy" if accuracy else "")
    about += ", deskewed inputs." if model.preprocessing.deskew else "."
    static = resources.files("mnist_softmax") / "static"
    page = (static / "app.html").read_text(encoding="utf-8")
    script = (static / "app.js").read_text(encoding="utf-8")
    # JSON inside <script>: "</" must not appear, or it would end the element.
    return (page.replace("__MODEL__", json.dumps(data).replace("</", "<\\/"))
            .replace("__ABOUT__", html.escape(about))
            .replace("__SCRIPT__", script))


def write_page(model: SoftmaxModel, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as out:
        out.write(build_page(model).encode("utf-8"))
    return path


def make_server(model: SoftmaxModel, port: int = 0) -> http.server.ThreadingHTTPServer:
    """A server on 127.0.0.1 (a free port when 0) that serves the page at / and nothing else."""
    body = build_page(model).encode("utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
