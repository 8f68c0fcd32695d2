"""The drawing page: one self-contained HTML file (model, code and styles inline), and a loopback server for it."""

from __future__ import annotations

import base64
import contextlib
import http.server
import socket
import sys
import threading
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from .errors import UsageError
from .explain import colour_limit
from .files import atomic_write
from .htmlpage import Page, document, render
from .model import SoftmaxModel
from .preprocess import convention_of

IDLE_TIMEOUT = 10.0  # seconds a client connection may stay silent before the server drops it
CONNECTION_DEADLINE = 60.0  # seconds any one connection may last, however it trickles
MAX_CLIENTS = 64  # connections served at once (threads); more wait in the listen queue

# What the page asks you to draw, by dataset; a model of digit classes asks for a digit, anything else for something.
SUBJECTS = {"mnist": "a digit", "digits": "a digit", "fashion-mnist": "an article of clothing"}


def subject(model: SoftmaxModel) -> str:
    """What to draw for this model ("a digit", "an article of clothing", "something"), from its dataset and classes."""
    dataset = model.metadata.get("dataset")
    name = dataset.get("name") if isinstance(dataset, dict) else None
    if isinstance(name, str) and name in SUBJECTS:
        return SUBJECTS[name]
    names = [str(n) for n in model.class_names]
    return "a digit" if names and all(n.isdigit() and len(n) == 1 for n in names) else "something"


def build_document(model: SoftmaxModel) -> Page:
    """The page and its Content-Security-Policy, with the model's weights (float32, base64) and preprocessing."""
    shape = model.preprocessing.image_shape
    if not shape:
        raise UsageError("the drawing page needs an image model (this one has no image shape)")
    data = {
        "coef": base64.b64encode(np.ascontiguousarray(model.coef, dtype="<f4").tobytes()).decode(),
        "intercept": [float(v) for v in model.intercept],
        "weight_limit": colour_limit(model.coef),  # the weight maps' colour scale, as in weights.png
        "classes": model.classes.tolist(),
        "class_names": [str(n) for n in model.class_names],
        "shape": list(shape),
        "deskew": model.preprocessing.deskew,
        "temperature": model.temperature,  # calibration: probabilities are softmax(logits / temperature)
        "convention": convention_of(model),  # how a drawing becomes the model's input (preprocess.py)
        "subject": subject(model),
    }
    meta = model.metadata
    dataset = meta.get("dataset", {}).get("title") or meta.get("dataset", {}).get("name") or "its data"
    accuracy = meta.get("metrics", {}).get("test_accuracy")
    known = isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool) and 0 <= accuracy <= 1
    about = f"Model trained on {dataset}" + (f", {100 * accuracy:.2f}% test accuracy" if known else "")
    about += ", deskewed inputs." if model.preprocessing.deskew else "."
    static = resources.files("mnist_softmax") / "static"
    return document(
        title=f"Draw {data['subject']} · mnist-softmax",
        body=render((static / "app.html").read_text(encoding="utf-8"), about=about, subject=data["subject"]),
        styles=[(static / "app.css").read_text(encoding="utf-8")],
        scripts=[(static / "app.js").read_text(encoding="utf-8")],
        data={"model": data},
        body_class="empty",
    )


def build_page(model: SoftmaxModel) -> str:
    """The page's HTML text."""
    return build_document(model).html


def write_page(model: SoftmaxModel, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as out:
        out.write(build_page(model).encode("utf-8"))
    return path


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients at once wait in the queue instead of being refused

    def __init__(self, *args, **kwargs):
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        """At most MAX_CLIENTS connections are served at once; the others wait to be accepted."""
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A client that hangs up or stalls is no error of ours: no traceback; anything else is reported."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def make_server(model: SoftmaxModel, port: int = 0) -> http.server.ThreadingHTTPServer:
    """A server on 127.0.0.1 (a free port when 0) that serves the page at / and nothing else.

    Answers only requests whose Host header names this server (127.0.0.1:PORT or localhost:PORT), so a web
    page elsewhere cannot reach it through DNS rebinding; sends the page's CSP, nosniff and no-store headers;
    idle connections are dropped after a few seconds.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"port must be an integer from 0 to 65535, got {port!r}")
    page = build_document(model)
    body = page.html.encode("utf-8")
    allowed_hosts: set[str] = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = IDLE_TIMEOUT  # seconds a connection may stay silent

        def setup(self):
            super().setup()
            # A client trickling a byte now and then is never silent for long: cut every connection at a deadline.
            self._deadline = threading.Timer(CONNECTION_DEADLINE, self._expire)
            self._deadline.daemon = True
            self._deadline.start()

        def _expire(self):
            with contextlib.suppress(OSError):  # already closed
                self.connection.shutdown(socket.SHUT_RDWR)

        def finish(self):
            self._deadline.cancel()
            super().finish()

        def end_headers(self):
            self.send_header("Content-Security-Policy", page.header_csp)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def do_HEAD(self):
            self._answer(send_body=False)

        def do_GET(self):
            self._answer(send_body=True)

        def _answer(self, send_body: bool):
            if self.headers.get("Host", "").lower() not in allowed_hosts:
                self.send_error(403, "unknown Host: this server answers only to 127.0.0.1 and localhost")
                return
            if urlsplit(self.path).path != "/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", port), Handler)
    bound = server.server_address[1]
    allowed_hosts.update({f"127.0.0.1:{bound}", f"localhost:{bound}"})
    if bound == 80:
        allowed_hosts.update({"127.0.0.1", "localhost"})
    return server
