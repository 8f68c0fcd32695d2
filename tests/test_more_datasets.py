"""KMNIST, QMNIST and EMNIST end to end: their real file layouts (QMNIST's label table, EMNIST's transposed images in
one zip), served from 127.0.0.1, downloaded, verified, trained on and reported. The real files cannot be fetched
here, so the tests serve synthetic files in the same layout and pin the table's digests to them: everything but
the digest values is the real code path."""

import dataclasses
import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile

import numpy as np
import pytest

from mnist_softmax import data, datasets, load_dataset
from mnist_softmax.cli import main
from mnist_softmax.datasets import ArchiveSpec
from mnist_softmax.errors import DataFormatError, DownloadError
from mnist_softmax.idx import write_idx


def idx_bytes(array) -> bytes:
    """The IDX encoding of `array`, as write_idx writes it."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        write_idx(Path(tmp) / "f", array)
        return (Path(tmp) / "f").read_bytes()


def learnable(n, k, seed):
    """n images of k classes (a fixed random template per class plus noise), and their labels."""
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(99).random((k, 28, 28)) > 0.7
    labels = np.arange(n) % k
    images = np.clip(templates[labels] * 180 + rng.integers(0, 60, (n, 28, 28)), 0, 255).astype(np.uint8)
    return images, labels


class Server(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        self.log.append(name)
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def mirror(monkeypatch):
    Server.files, Server.log = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("MNIST_SOFTMAX_MIRRORS", f"http://127.0.0.1:{httpd.server_address[1]}/")
    yield Server
    httpd.shutdown()
    httpd.server_close()


def serve_files(monkeypatch, mirror, name, arrays):
    """Serve gzipped IDX files for dataset `name` and pin its table row to their file digests."""
    spec = datasets.DATASETS[name]
    pins = {}
    for f in spec.files:
        body = gzip.compress(idx_bytes(arrays[f.role]), mtime=0)
        mirror.files[f"{f.name}.gz"] = body
        pins[f.name] = hashlib.sha256(body).hexdigest()
    monkeypatch.setitem(datasets.DATASETS, name, data.with_pins(spec, pins))


def train_and_report(tmp_path, name, capsys):
    out = tmp_path / f"run-{name}"
    assert main(["train", "--dataset", name, "--out", str(out), "--validation-size", "100", "--json",
                 "--no-plots"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert main(["report", str(out)]) == 0
    capsys.readouterr()
    report = (out / "report.html").read_text()
    assert datasets.DATASETS[name].title.split(" ")[0] in report
    assert main(["evaluate", str(out / "model.npz"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    return metrics


def test_kmnist_downloads_verifies_trains_and_reports(tmp_path, monkeypatch, mirror, capsys, isolated_cache):
    images, labels = learnable(700, 10, 0)
    arrays = {"train_images": images[:600], "train_labels": labels[:600].astype(np.uint8),
              "test_images": images[600:], "test_labels": labels[600:].astype(np.uint8)}
    serve_files(monkeypatch, mirror, "kmnist", arrays)
    metrics = train_and_report(tmp_path, "kmnist", capsys)
    assert metrics["test_accuracy"] >= 0.95
    assert sorted(mirror.log) == sorted(f"{f.name}.gz" for f in datasets.DATASETS["kmnist"].files)  # once each
    model_meta = json.loads((tmp_path / "run-kmnist" / "metrics.json").read_text())
    assert model_meta["dataset"] == "kmnist"


def test_kmnist_file_digest_mismatch_is_refused(tmp_path, monkeypatch, mirror, isolated_cache):
    images, labels = learnable(120, 10, 0)
    arrays = {"train_images": images[:100], "train_labels": labels[:100].astype(np.uint8),
              "test_images": images[100:], "test_labels": labels[100:].astype(np.uint8)}
    serve_files(monkeypatch, mirror, "kmnist", arrays)
    name = "train-labels-idx1-ubyte.gz"
    mirror.files[name] = gzip.compress(gzip.decompress(mirror.files[name]), mtime=1)  # same payload, other file
    with pytest.raises(DownloadError, match="checksum mismatch: file SHA-256"):
        load_dataset("kmnist")
    assert not (isolated_cache / "kmnist" / name).exists()


def test_qmnist_label_table_and_60k_style_test_set(tmp_path, monkeypatch, mirror, capsys):
    images, labels = learnable(900, 10, 1)
    table = np.zeros((900, 8), np.int32)
    table[:, 0] = labels  # the class; the other columns are NIST metadata (writer, series, ...)
    table[:, 2] = np.arange(900) % 571
    arrays = {"train_images": images[:600], "train_labels": table[:600],
              "test_images": images[600:], "test_labels": table[600:]}
    serve_files(monkeypatch, mirror, "qmnist", arrays)
    ds = load_dataset("qmnist")
    np.testing.assert_array_equal(ds.test_labels, labels[600:])
    assert ds.test_labels.dtype == np.uint8 and len(ds.test_labels) == 300
    metrics = train_and_report(tmp_path, "qmnist", capsys)
    assert metrics["test_accuracy"] >= 0.95


def test_emnist_letters_from_one_zip_transposed_and_numbered_from_one(tmp_path, monkeypatch, mirror, capsys,
                                                                     isolated_cache):
    images, labels = learnable(1300 + 520, 26, 2)
    stored = {"train_images": images[:1300].transpose(0, 2, 1), "train_labels": (labels[:1300] + 1).astype(np.uint8),
              "test_images": images[1300:].transpose(0, 2, 1), "test_labels": (labels[1300:] + 1).astype(np.uint8)}
    spec = datasets.DATASETS["emnist-letters"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for f in spec.files:
            z.writestr(f.member, gzip.compress(idx_bytes(stored[f.role]), mtime=0))
        z.writestr("gzip/emnist-letters-mapping.txt", "1 65 97\n")
    body = buffer.getvalue()
    mirror.files["gzip.zip"] = body
    archive = ArchiveSpec("gzip.zip", hashlib.sha256(body).hexdigest(), len(body))
    monkeypatch.setitem(datasets.DATASETS, "emnist-letters", dataclasses.replace(spec, archive=archive))
    ds = load_dataset("emnist-letters")
    np.testing.assert_array_equal(ds.train_images, images[:1300])  # upright again
    np.testing.assert_array_equal(ds.test_labels, labels[1300:])  # classes 0..25
    assert ds.spec.class_names[0] == "A" and len(ds.spec.class_names) == 26
    assert mirror.log == ["gzip.zip"]
    assert not [p for p in isolated_cache.rglob("*") if p.name.endswith(".part") or p.name == "gzip.zip"]
    pins = json.loads((isolated_cache / "emnist-letters" / data.PINS).read_text())
    assert set(pins) == {f.name for f in spec.files}
    metrics = train_and_report(tmp_path, "emnist-letters", capsys)
    assert metrics["test_accuracy"] >= 0.9
    assert mirror.log == ["gzip.zip"]  # the extracted members serve every later load
    # A cached member that no longer matches its pin is removed and the archive fetched again.
    member = isolated_cache / "emnist-letters" / "emnist-letters-test-labels-idx1-ubyte.gz"
    member.write_bytes(gzip.compress(idx_bytes(np.zeros(520, np.uint8))))
    for npy in (isolated_cache / "emnist-letters" / "decoded").glob("*"):
        npy.unlink()
    again = load_dataset("emnist-letters")
    np.testing.assert_array_equal(again.test_labels, labels[1300:])
    assert mirror.log == ["gzip.zip", "gzip.zip"]


def test_emnist_archive_of_wrong_size_is_refused(monkeypatch, mirror, isolated_cache):
    spec = datasets.DATASETS["emnist-digits"]
    mirror.files["gzip.zip"] = b"PK" + b"\0" * 100
    archive = ArchiveSpec("gzip.zip", "0" * 64, 50)
    monkeypatch.setitem(datasets.DATASETS, "emnist-digits", dataclasses.replace(spec, archive=archive))
    with pytest.raises(DownloadError, match="more than the published 50 bytes"):
        load_dataset("emnist-digits")
    assert not [p for p in isolated_cache.rglob("*") if p.is_file()]


def test_a_folder_dataset_of_16x16_images_trains_reports_and_draws(tmp_path, capsys):
    folder = tmp_path / "blobs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    templates = np.random.default_rng(5).random((3, 16, 16)) > 0.6
    for part, n in (("train", 450), ("t10k", 150)):
        labels = (np.arange(n) % 3).astype(np.uint8)
        images = np.clip(templates[labels] * 200 + rng.integers(0, 50, (n, 16, 16)), 0, 255).astype(np.uint8)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels, compress=True)
    (folder / "classes.txt").write_text("ring\nbar\ndot\n")
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(folder), "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test_accuracy"] >= 0.95 and metrics["n_validation"] == 45
    assert (out / "weights.png").stat().st_size > 1000
    assert main(["report", str(out)]) == 0  # finds the folder again from what the run recorded
    capsys.readouterr()
    assert "ring" in (out / "report.html").read_text()
    assert main(["app", str(out / "model.npz"), "--out", str(tmp_path / "draw.html")]) == 0
    page = (tmp_path / "draw.html").read_text()
    assert '"shape": [16, 16]' in page or '"shape":[16,16]' in page
    assert main(["evaluate", str(out / "model.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"] >= 0.95


def test_an_archive_member_that_is_not_idx_is_named_not_our_temporary(tmp_path, monkeypatch, isolated_cache):
    spec = datasets.DATASETS["emnist-digits"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for f in spec.files:
            z.writestr(f.member, gzip.compress(b"\0" * 10_000_000))  # inflates to zeros, not IDX
    (tmp_path / "gzip.zip").write_bytes(buffer.getvalue())
    archive = ArchiveSpec("gzip.zip", hashlib.sha256(buffer.getvalue()).hexdigest(), len(buffer.getvalue()))
    monkeypatch.setitem(datasets.DATASETS, "emnist-digits", dataclasses.replace(spec, archive=archive))
    with pytest.raises(DataFormatError) as info:
        data.import_dataset("emnist-digits", tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'gzip.zip'}: member {spec.files[0].member}: not an IDX file")
    assert ".part" not in str(info.value)
    assert not [p for p in isolated_cache.rglob("*") if p.is_file()]
