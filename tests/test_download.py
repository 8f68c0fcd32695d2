"""The download code against a real HTTP server on 127.0.0.1 serving good, corrupt, truncated and stalled files."""

import gzip
import http.server
import threading
import time

import pytest

from mnist_softmax import load_dataset
from mnist_softmax.download import fetch_file
from mnist_softmax.errors import DownloadError


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}  # name -> gzip bytes
    log: list = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        self.log.append(self.path)
        body = self.files.get(name)
        if mode == "missing" or body is None:
            self.send_error(404)
            return
        if mode == "corrupt":  # a valid gzip whose payload differs in one byte
            raw = bytearray(gzip.decompress(body))
            raw[-1] ^= 1
            body = gzip.compress(bytes(raw))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "stall":
            self.wfile.write(body[:10])
            self.wfile.flush()
            time.sleep(2)  # longer than the client's timeout; bounded so the server thread ends
            return
        if mode == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server(tiny):
    spec, folder = tiny
    Handler.files = {p.name: p.read_bytes() for p in folder.iterdir()}
    Handler.log = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", spec
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".part"]


def test_falls_back_through_broken_mirrors(server, tmp_path):
    base, spec = server
    file = spec.file("train_images")
    mirrors = [f"{base}/{m}/" for m in ("missing", "stall", "truncated", "corrupt", "good")]
    dest = tmp_path / "cache"
    path, decoded = fetch_file(file, mirrors, dest, timeout=0.5)
    assert path == dest / "train-images-idx3-ubyte.gz"
    assert decoded.sha256 == file.sha256 and decoded.array.shape == (60, 8, 8)
    assert [p.split("/")[1] for p in Handler.log] == ["missing", "stall", "truncated", "corrupt", "good"]
    assert leftovers(dest) == []


def test_every_mirror_failing_names_each_reason_and_leaves_nothing(server, tmp_path):
    base, spec = server
    mirrors = [f"{base}/{m}/" for m in ("missing", "stall", "truncated", "corrupt")]
    dest = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        fetch_file(spec.file("test_images"), mirrors, dest, timeout=0.5)
    message = str(info.value)
    assert message.startswith("could not download t10k-images-idx3-ubyte:")
    assert "missing/t10k-images-idx3-ubyte.gz: HTTP 404" in message
    assert "stall/t10k-images-idx3-ubyte.gz: timed out" in message
    assert "truncated/t10k-images-idx3-ubyte.gz: connection closed before the whole file arrived" in message
    assert "corrupt/t10k-images-idx3-ubyte.gz: checksum mismatch" in message
    assert list(dest.iterdir()) == []


def test_unreachable_mirror(tmp_path, tiny):
    spec, _ = tiny
    with pytest.raises(DownloadError, match="cannot connect"):
        fetch_file(spec.file("train_labels"), ["http://127.0.0.1:9/"], tmp_path, timeout=0.5)


def test_load_dataset_downloads_once_into_the_cache(server, monkeypatch, isolated_cache):
    base, spec = server
    monkeypatch.setenv("MNIST_SOFTMAX_MIRRORS", f"{base}/missing/ {base}/good/")
    ds = load_dataset("tiny")
    assert ds.sources["train_images"] == str(isolated_cache / "tiny" / "train-images-idx3-ubyte.gz")
    assert sorted(p.name for p in (isolated_cache / "tiny").glob("*.gz")) == sorted(Handler.files)
    requests = len(Handler.log)
    again = load_dataset("tiny")
    assert len(Handler.log) == requests  # served from the cache
    assert again.test_labels.tolist() == ds.test_labels.tolist()


def test_load_dataset_never_caches_a_bad_file(server, monkeypatch, isolated_cache):
    base, spec = server
    monkeypatch.setenv("MNIST_SOFTMAX_MIRRORS", f"{base}/corrupt/")
    with pytest.raises(DownloadError, match="checksum mismatch.*offline\\? give data_dir=DIR") as info:
        load_dataset("tiny")
    assert "offline? pass --data-dir DIR" in info.value.cli
    assert not list((isolated_cache / "tiny").glob("*.gz"))
    assert leftovers(isolated_cache / "tiny") == []
