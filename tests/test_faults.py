"""Faults: kills at random moments in train and in a download (from a local mirror), a full disk (RLIMIT_FSIZE),
unwritable folders, a mirror dripping bytes, and slow, many and rude clients of `serve`. Each ends with one
`error:` line and the documented exit code, or nothing at all, and never with half-written files left behind."""

import http.client
import http.server
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from conftest import payload_sha256
from mnist_softmax import app, load_model
from mnist_softmax.cli import main
from mnist_softmax.download import fetch_file
from mnist_softmax.errors import DownloadError, ExitCode
from mnist_softmax.files import clean_stale

RUN_FILES = {"model.npz", "metrics.json", "history.csv", "weights.png", "curves.png"}  # at least these


def cli(*args, cwd=None, fsize=None, **kwargs):
    """The real command in a fresh process; with `fsize`, files it writes may not exceed that many bytes."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.Popen([sys.executable, "-m", "mnist_softmax", *map(str, args)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit if fsize else None,
                            **kwargs)


def finished(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def one_error_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def hidden(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- kills


def _kill_when(proc, ready, delay):
    """SIGKILL `proc` `delay` seconds after `ready()` first holds (or when it ends by itself)."""
    deadline = time.monotonic() + 60
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    proc.kill()
    proc.communicate()


def test_train_killed_while_writing_leaves_nothing_half_written(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        proc = cli("train", "--dataset", "digits", "--out", runs / f"r{i}", "-q")
        if i == 0:  # in the write phase: once the hidden staging folder exists
            _kill_when(proc, lambda: any(p.name.startswith(".r0.") for p in runs.iterdir()), rng.uniform(0, 0.3))
        else:  # at any moment
            _kill_when(proc, lambda: True, rng.uniform(0.1, 1.0))
        run = runs / f"r{i}"
        if run.exists():  # renamed into place: then complete
            assert set(os.listdir(run)) >= RUN_FILES and hidden(run) == []
            load_model(run / "model.npz")
    code, _, err = finished(cli("train", "--dataset", "digits", "--out", runs / "last", "-q", "--no-plots"))
    assert code == 0, err
    assert hidden(runs) == []  # the killed runs' staging folders are gone: their writers are dead


def _slow_handler(files: dict, chunk=256, pause=0.05):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            mode, _, name = self.path.strip("/").partition("/")
            body = files.get(name.removesuffix(".gz"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if mode == "drip":  # a byte now and then, never quite stalled
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                step = chunk if mode == "slow" else len(body)
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    self.wfile.flush()
                    if mode == "slow":
                        time.sleep(pause)
            except (ConnectionError, TimeoutError):
                pass

    return Handler


@pytest.fixture
def mirror(tiny):
    spec, folder = tiny
    files = {p.name.removesuffix(".gz"): p.read_bytes() for p in folder.iterdir()}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _slow_handler(files))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", spec
    httpd.shutdown()
    httpd.server_close()


FETCH = """
import sys
from pathlib import Path
from mnist_softmax.datasets import FileSpec
from mnist_softmax.download import fetch_file
from mnist_softmax.errors import MnistSoftmaxError
role, name, sha, url, dest = sys.argv[1:]
try:
    fetch_file(FileSpec(role, name, sha), [url], Path(dest))
    print("fetched")
except MnistSoftmaxError as exc:
    print(type(exc).__name__, exc)
"""


def _fetch_process(file, url, dest, fsize=None):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.Popen([sys.executable, "-c", FETCH, file.role, file.name, file.sha256, url, str(dest)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limit if fsize else None)


def test_download_killed_midway_is_cleaned_up_by_the_next(mirror, tmp_path):
    base, spec = mirror
    file = spec.file("train_images")
    dest = tmp_path / "cache"
    rng = np.random.default_rng(1)
    for _ in range(2):
        proc = _fetch_process(file, f"{base}/slow/", dest)
        _kill_when(proc, lambda: dest.is_dir() and any(p.suffix == ".part" for p in dest.iterdir()),
                   rng.uniform(0, 0.1))
        final = dest / f"{file.name}.gz"
        assert not final.exists() or payload_sha256(final) == file.sha256  # never a half file under its name
        final.unlink(missing_ok=True)
    assert len(hidden(dest)) == 1  # the second download removed what the first left; its own is here
    path, decoded = fetch_file(file, [f"{base}/good/"], dest)
    assert decoded.sha256 == file.sha256 and hidden(dest) == []


def test_live_writers_temporaries_are_kept(tmp_path):
    mine = tmp_path / f".x.abcdefgh.{os.getpid()}.part"
    dead = tmp_path / ".x.abcdefgh.999999999.part"
    foreign = tmp_path / ".notes.part"  # not a name we make
    for p in (mine, dead, foreign):
        p.write_text("")
    assert clean_stale(tmp_path) == [dead]
    assert sorted(hidden(tmp_path)) == sorted([mine.name, foreign.name])
    from mnist_softmax.files import atomic_write

    folder = tmp_path / "figures"
    folder.mkdir()
    (folder / ".a.png.abcdefgh.999999999.part").write_bytes(b"half")  # a killed writer's
    with atomic_write(folder / "b.png") as out:  # the first write into a folder cleans it
        out.write(b"x")
    assert os.listdir(folder) == ["b.png"]


def test_a_mirror_dripping_bytes_is_abandoned(mirror, tmp_path):
    base, spec = mirror
    started = time.monotonic()
    with pytest.raises(DownloadError, match="drip/.*too slow"):
        fetch_file(spec.file("test_labels"), [f"{base}/drip/"], tmp_path, timeout=5, min_rate=100, grace=0.5)
    assert time.monotonic() - started < 5  # far sooner than the whole drip (about 1.5 s a byte... at 20 B/s)
    assert hidden(tmp_path) == []


def test_a_full_disk_during_a_download_is_an_output_error(mirror, tmp_path):
    base, spec = mirror
    proc = _fetch_process(spec.file("train_images"), f"{base}/good/", tmp_path / "cache", fsize=1000)
    code, out, err = finished(proc)
    assert out.startswith("OutputError cannot write the download into") and err == "", (out, err)
    assert list((tmp_path / "cache").iterdir()) == []


# ---------------------------------------------------------------- full disks and unwritable folders


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    import matplotlib.font_manager  # noqa: F401  (build matplotlib's font cache now, not under a size limit)

    out = tmp_path_factory.mktemp("faults") / "run"
    assert main(["train", "--dataset", "digits", "--out", str(out), "-q", "--no-plots"]) == 0
    return out


@contextmanager
def file_size_limit(limit: int):
    """In this process, files may not grow past `limit` bytes (a full disk, as writers see it) inside the block."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_full_disk_in_each_command(digits_run, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    code, _, err = finished(cli("train", "--dataset", "digits", "--out", runs / "r", "--no-plots", fsize=3_000))
    assert code == ExitCode.OUTPUT
    one_error_line(err, "runs/r")
    assert list(runs.iterdir()) == []
    code, _, err = finished(cli("app", digits_run / "model.npz", "--out", tmp_path / "p.html", fsize=4_000))
    assert code == ExitCode.OUTPUT
    one_error_line(err, "p.html")
    assert not any(p.name.startswith((".p.html", "p.html")) for p in tmp_path.iterdir())
    from PIL import Image

    pixels = np.full((40, 40), 230, np.uint8)
    pixels[8:32, 18:23] = 10
    Image.fromarray(pixels).save(tmp_path / "one.png")
    with file_size_limit(5_000):
        report = main(["report", str(digits_run), "-q"])
        predict = main(["predict", str(digits_run / "model.npz"), str(tmp_path / "one.png"), "--explain",
                        str(tmp_path / "ex")])
    err = capsys.readouterr().err.splitlines()
    assert report == predict == ExitCode.OUTPUT and len(err) == 2, err
    assert "report.html" in err[0] and "one.evidence.png" in err[1]
    assert set(os.listdir(digits_run)) == {"model.npz", "metrics.json", "history.csv"}
    assert list((tmp_path / "ex").iterdir()) == []


def test_unwritable_places_are_found_before_work(digits_run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["train", "--dataset", "digits", "--out", str(blocker / "run"), "-q"])
    assert code == ExitCode.OUTPUT and "cannot create the run directory" in capsys.readouterr().err
    code = main(["predict", str(digits_run / "model.npz"), str(blocker), "--explain", str(blocker / "x")])
    assert code == ExitCode.OUTPUT and "cannot create" in capsys.readouterr().err


# ---------------------------------------------------------------- serve


@pytest.fixture
def server(digits_run, monkeypatch):
    monkeypatch.setattr(app, "IDLE_TIMEOUT", 0.5)
    monkeypatch.setattr(app, "CONNECTION_DEADLINE", 1.5)
    httpd = app.make_server(load_model(digits_run / "model.npz"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _request(port, method="GET", path="/", host=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{port}")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_serve_headers_host_check_head_and_paths(server):
    port = server
    response, body = _request(port)
    assert response.status == 200 and body.startswith(b"<!DOCTYPE html>")
    csp = response.getheader("Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and response.getheader("X-Content-Type-Options") == "nosniff"
    assert _request(port, host=f"localhost:{port}")[0].status == 200
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}"):
        assert _request(port, host=host)[0].status == 403, host  # DNS rebinding: another name for us
    head, nothing = _request(port, "HEAD")
    assert head.status == 200 and nothing == b"" and int(head.getheader("Content-Length")) == len(body)
    assert _request(port, path="/index.html")[0].status == 404
    assert _request(port, path="/?x=1")[0].status == 200
    assert _request(port, "POST")[0].status == 501


def test_serve_many_and_idle_clients(server):
    port = server
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]  # connect, then say nothing

    def fetch(_):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            return response.status

    with ThreadPoolExecutor(50) as pool:
        assert list(pool.map(fetch, range(200))) == [200] * 200  # while the idle ones hold their threads
    for s in idle:
        s.settimeout(5)
        assert s.recv(1) == b""  # the server dropped it after its idle timeout
        s.close()


def test_serve_clients_that_hang_up_leave_no_traceback(digits_run):
    proc = cli("serve", digits_run / "model.npz", "--json")
    try:
        port = int(json.loads(proc.stdout.readline())["url"].rsplit(":", 1)[1].strip("/"))
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port + (b"\r\n" if i % 2 else b""))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not close
            s.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        code, _, err = finished(proc, timeout=20)
    assert "Traceback" not in err and err.strip() == "", err


def test_a_mirror_sending_too_much_is_abandoned(mirror, tmp_path, monkeypatch):
    from mnist_softmax import download

    base, spec = mirror
    monkeypatch.setattr(download, "MAX_DOWNLOAD", 100)
    with pytest.raises(DownloadError, match="announces .* more than the 100"):
        fetch_file(spec.file("train_images"), [f"{base}/good/"], tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_serve_cuts_a_client_that_trickles_its_request(server):
    port = server
    s = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % port + b"a" * 100
    cut = False
    for byte in request:  # one byte every 0.2 s: never silent for the idle timeout
        try:
            s.sendall(bytes([byte]))
        except OSError:
            cut = True
            break
        time.sleep(0.2)
        s.setblocking(False)
        try:
            cut = s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            cut = True
        s.setblocking(True)
        if cut:
            break
    s.close()
    assert cut and time.monotonic() - started < 5
