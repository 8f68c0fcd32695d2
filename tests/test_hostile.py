"""Hostile inputs: fuzzed IDX files and gzip wrappers, mutated model files, hostile run folders and class names,
odd arguments. Each is handled cleanly: the documented exception (or one `error:` line and exit code), no
traceback, bounded memory, and no page that runs foreign script."""

import gzip
import io
import json
import resource
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import open_page
from mnist_softmax import load_model, save_model
from mnist_softmax.cli import main, printable
from mnist_softmax.errors import DataFormatError, ExitCode, ModelFileError
from mnist_softmax.htmlpage import Markup, document, json_for_script, render
from mnist_softmax.idx import read_idx


def one_error(capsys, code, result, *fragments):
    """`result` is `code`, stderr is exactly one `error:` line holding each fragment, and no traceback."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert result == code, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- IDX files and gzip wrappers


def _idx_variants(rng, n):
    """Valid IDX bytes, then mutated: header bytes, dimensions, lengths, and gzip wrappers around all of them."""
    good = struct.pack(">HBB3I", 0, 8, 3, 5, 4, 4) + rng.integers(0, 256, 80, dtype=np.uint8).tobytes()
    for _ in range(n):
        data = bytearray(good)
        kind = rng.integers(6)
        if kind == 0:  # random header bytes
            for i in rng.integers(0, 16, rng.integers(1, 4)):
                data[i] = rng.integers(256)
        elif kind == 1:  # huge or overflowing dimensions
            dims = rng.integers(1, 5)
            sizes = rng.choice([0, 1, 7, 2**16, 2**31, 2**32 - 1], dims)
            data = bytearray(struct.pack(">HBB", 0, int(rng.choice([8, 9, 11, 12, 13, 14])), dims)
                             + struct.pack(f">{dims}I", *map(int, sizes)) + data[16:])
        elif kind == 2:  # truncated or extended
            data = data[: rng.integers(0, len(data))] if rng.random() < 0.7 else data + b"\0" * rng.integers(1, 9)
        elif kind == 3:  # flipped bits anywhere
            for i in rng.integers(0, len(data), 3):
                data[i] ^= 1 << int(rng.integers(8))
        packed = bytes(data)
        wrap = rng.integers(5)
        if wrap == 1:
            packed = gzip.compress(packed)
        elif wrap == 2:  # a damaged gzip wrapper: cut, flipped CRC/ISIZE, or flipped deflate bytes
            z = bytearray(gzip.compress(packed))
            z[int(rng.integers(10, len(z)))] ^= 0xFF
            packed = bytes(z[: rng.integers(2, len(z) + 1)])
        elif wrap == 3:  # two gzip members, or garbage after the member
            packed = gzip.compress(packed[:20]) + (gzip.compress(packed[20:]) if rng.random() < 0.5 else b"junk")
        elif wrap == 4:  # a gzip header and nothing else
            packed = b"\x1f\x8b" + bytes(rng.integers(0, 256, rng.integers(0, 20), dtype=np.uint8))
        yield packed


def test_fuzzed_idx_files_raise_only_format_errors(tmp_path):
    rng = np.random.default_rng(9)
    path = tmp_path / "f"
    outcomes = {"read": 0, "refused": 0}
    for data in _idx_variants(rng, 400):
        path.write_bytes(data)
        try:
            decoded = read_idx(path)
        except DataFormatError as exc:
            assert str(path) in str(exc)
            outcomes["refused"] += 1
        else:
            assert decoded.array.size * decoded.array.itemsize <= len(gzip.decompress(data) if data[:2] == b"\x1f\x8b"
                                                                         else data)
            outcomes["read"] += 1
    assert outcomes["refused"] > 200 and outcomes["read"] > 10, outcomes


def test_idx_dimensions_whose_product_overflows(tmp_path):
    path = tmp_path / "overflow"
    path.write_bytes(struct.pack(">HBB4I", 0, 8, 4, *[2**32 - 1] * 4) + b"\0" * 64)
    with pytest.raises(DataFormatError, match="more than the"):
        read_idx(path)
    path.write_bytes(struct.pack(">HBB4I", 0, 8, 4, 2**16, 2**16, 2**16, 2**16))  # 2**64: wraps to 0 in uint64
    with pytest.raises(DataFormatError, match="more than the"):
        read_idx(path)


def _run_limited(code: str, tmp_path, megabytes: int = 600):
    """Run Python `code` in a fresh process whose address space is limited to `megabytes`."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)


def test_small_files_promising_gigabytes_cost_what_they_hold(tmp_path):
    """A 33-byte .gz claiming 2.7M images (2 GB), a 160 KB model inflating to 160 MB, 200 KB of class names: all
    refused in a process limited to 600 MB of address space (numpy and its threads included)."""
    (tmp_path / "lie.gz").write_bytes(gzip.compress(struct.pack(">HBB3I", 0, 8, 3, 2_700_000, 28, 28), mtime=0))
    assert (tmp_path / "lie.gz").stat().st_size < 40
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:  # 160 MB of zeros in 160 KB
        z.writestr("coef.npy", _npy_header("<f8", (1000, 20_480)) + bytes(1000 * 20_480 * 8))
        for key in ("intercept", "classes", "metadata"):
            buf = io.BytesIO()
            np.save(buf, np.zeros(3))
            z.writestr(f"{key}.npy", buf.getvalue())
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    names = ["x" * 200_000] + ["y"] * 9
    _model_with_metadata(tmp_path / "names.npz", class_names=names, k=10)
    code = """
from mnist_softmax.idx import read_idx
from mnist_softmax.modelfile import load_model
from mnist_softmax.errors import DataFormatError, ModelFileError
for call, arg in ((read_idx, "lie.gz"), (load_model, "bomb.npz"), (load_model, "names.npz")):
    try:
        call(arg)
    except (DataFormatError, ModelFileError) as exc:
        print("refused", str(exc)[:90])
"""
    result = _run_limited(code, tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("refused") for line in lines), result.stdout
    assert "truncated data" in lines[0] and "more than a model holds" in lines[1] and "class_names" in lines[2]


# ---------------------------------------------------------------- model files


def _npy_header(descr: str, shape, fortran=False) -> bytes:
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _meta(**changes):
    meta = {"format": "mnist-softmax-model", "format_version": 1,
            "preprocessing": {"scale": 1 / 255, "image_shape": [2, 2], "deskew": False},
            "class_names": ["a", "b", "c"]}
    meta.update(changes)
    return meta


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _model_with_metadata(path, k=3, d=4, coef=None, metadata_bytes=None, **changes):
    meta = _meta(**changes)
    if k != 3:
        meta["preprocessing"]["image_shape"] = [2, d // 2]
    blob = metadata_bytes if metadata_bytes is not None else json.dumps(meta).encode()
    return _write_npz(path, coef=np.ones((k, d), np.float32) if coef is None else coef,
                      intercept=np.zeros(k, np.float32), classes=np.arange(k),
                      metadata=np.frombuffer(blob, np.uint8))


HOSTILE_METADATA = [
    ({"metadata_bytes": b"[" * 1000 + b"]" * 1000}, "nested more than"),
    ({"metadata_bytes": json.dumps(_meta(extra={"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]})).encode()}, "nested"),
    ({"metadata_bytes": b'{"format": "mnist-softmax-model", "x": NaN}'}, "not valid JSON"),
    ({"metadata_bytes": b"\xff\xfe"}, "not valid JSON"),
    ({"metadata_bytes": json.dumps(_meta()).encode() + b" " * (1 << 20)}, "more than the"),
    ({"format_version": "1"}, "format version '1' is not supported"),
    ({"preprocessing": {"scale": "0.5", "image_shape": [2, 2]}}, "metadata preprocessing must be"),
    ({"preprocessing": {"scale": 1e-300, "image_shape": [2, 2]}}, "metadata preprocessing must be"),
    ({"preprocessing": {"scale": 1, "image_shape": [-2, -2]}}, "metadata preprocessing must be"),
    ({"preprocessing": {"scale": 1, "image_shape": [2.0, 2]}}, "metadata preprocessing must be"),
    ({"preprocessing": {"scale": 1, "image_shape": None, "deskew": True}}, "metadata preprocessing must be"),
    ({"preprocessing": [1]}, "metadata preprocessing must be"),
    ({"class_names": "abc"}, "metadata class_names must be"),
    ({"class_names": ["a", 2, "c"]}, "metadata class_names must be"),
    ({"class_names": ["a", "b"]}, "class_names must be a list of 3 strings, found 2"),
    ({"class_names": ["x" * 101, "b", "c"]}, "at most 100 characters"),
    ({"dataset": "mnist"}, "metadata dataset must be"),
    ({"dataset": {"name": ["mnist"]}}, "metadata dataset must be"),
    ({"dataset": {"name": "mnist", "checksums": [1]}}, "metadata dataset must be"),
    ({"metrics": {"test_accuracy": {"a": 1}}}, "metadata metrics must be"),
    ({"hyperparameters": [1]}, "metadata hyperparameters must be"),
    ({"seed": "0"}, "metadata seed must be"),
    ({"created": 7}, "metadata created must be"),
]


@pytest.mark.parametrize("changes, message", HOSTILE_METADATA, ids=range(len(HOSTILE_METADATA)))
def test_hostile_metadata_is_refused(tmp_path, changes, message):
    with pytest.raises(ModelFileError, match=message):
        load_model(_model_with_metadata(tmp_path / "m.npz", **changes))


def test_hostile_arrays_are_refused(tmp_path):
    cases = {
        "weights that overflow float32": dict(coef=np.full((3, 4), 1e300)),
        "negative shape": dict(header=_npy_header("<f4", (-3, 4)) + bytes(48)),
        "shape (10, 1e13)": dict(header=_npy_header("<f4", (10, 1e13)) + bytes(48)),
        "shape (10, 10**13)": dict(header=_npy_header("<f4", (10, 10**13)) + bytes(48)),
        "structured dtype": dict(header=_npy_header([("a", "<f4")], (3, 4)) + bytes(48)),
        "code in the header": dict(header=b"\x93NUMPY\x01\x00\x76\x00" + b"__import__('os').system('x')".ljust(117)
                                   + b"\n"),
        "complex": dict(coef=np.ones((3, 4), np.complex64)),
    }
    for what, case in cases.items():
        path = tmp_path / "m.npz"
        if "header" in case:
            _model_with_metadata(path)
            with zipfile.ZipFile(path) as z:
                members = {n: z.read(n) for n in z.namelist()}
            members["coef.npy"] = case["header"]
            with zipfile.ZipFile(path, "w") as z:
                for name, data in members.items():
                    z.writestr(name, data)
        else:
            _model_with_metadata(path, coef=case["coef"])
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        assert str(path) in str(info.value), what


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_unsupported_zip_compression(tmp_path, method):
    good = _model_with_metadata(tmp_path / "good.npz")
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(tmp_path / "m.npz", "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ModelFileError, match="compression method"):
        load_model(tmp_path / "m.npz")


def test_mutated_model_files_load_or_are_refused(tmp_path):
    """Random byte flips, cuts and splices of a real model file: each loads (a flip in unused bytes) or is one
    ModelFileError; nothing else escapes."""
    from mnist_softmax import Preprocessing, SoftmaxModel

    model = SoftmaxModel(np.ones((10, 64), np.float32), np.zeros(10, np.float32), np.arange(10),
                         Preprocessing(1 / 16, (8, 8)), tuple("0123456789"), {"dataset": {"name": "digits"}})
    good = save_model(model, tmp_path / "good.npz").read_bytes()
    rng = np.random.default_rng(3)
    refused = 0
    for i in range(300):
        data = bytearray(good)
        if i % 3 == 0:
            for j in rng.integers(0, len(data), rng.integers(1, 6)):
                data[j] = rng.integers(256)
        elif i % 3 == 1:
            data = data[: rng.integers(0, len(data))]
        else:
            a, b = sorted(rng.integers(0, len(data), 2))
            data = data[:a] + bytes(rng.integers(0, 256, b - a, dtype=np.uint8)) + data[b:]
        path = tmp_path / "m.npz"
        path.write_bytes(bytes(data))
        try:
            loaded = load_model(path)
        except ModelFileError:
            refused += 1
        else:
            assert np.isfinite(loaded.coef).all() and loaded.coef.shape == (10, 64)
    assert refused > 250


def test_cli_refuses_a_hostile_model_in_one_line(tmp_path, capsys):
    path = _model_with_metadata(tmp_path / "m.npz", metadata_bytes=b"[" * 5000)
    (tmp_path / "x.png").write_bytes(b"")
    one_error(capsys, ExitCode.MODEL, main(["predict", str(path), str(tmp_path / "x.png")]), "nested more than")
    one_error(capsys, ExitCode.MODEL, main(["app", str(path), "--out", str(tmp_path / "p.html")]))
    assert not (tmp_path / "p.html").exists()


# ---------------------------------------------------------------- arguments and names


@pytest.mark.parametrize("args, fragment", [
    (["train", "--epochs", "1e308"], "--epochs: must be <="),
    (["train", "--steps", "10000000000000"], "--steps: must be <="),
    (["train", "--learning-rate", "nan"], "finite"),
    (["serve", "m.npz", "--port", "70000"], "--port: must be <="),
    (["train", "--recipe", "x\n\x1b[2J"], r"'x\n\x1b[2J'"),
])
def test_out_of_range_arguments(args, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    one_error(capsys, ExitCode.USAGE, info.value.code, fragment)


def test_printable_escapes_what_could_drive_a_terminal():
    assert printable("a\nb\x1b[31m\u202ec\td") == "a\\nb\\x1b[31m\\u202ec\\td"
    assert printable("Ankle boot é 7") == "Ankle boot é 7"


# ---------------------------------------------------------------- pages: templates, escaping, CSP


def test_render_fills_slots_once_and_escapes():
    out = render("<p title='{{a}}'>{{b}}{{c}}</p>", a="'\"><script>", b="{{c}}", c=Markup("<i>ok</i>"))
    assert out == "<p title='&#x27;&quot;&gt;&lt;script&gt;'>{{c}}<i>ok</i></p>"
    with pytest.raises(KeyError):
        render("{{missing}}")
    with pytest.raises(KeyError):
        render("x", unused=1)
    assert json.loads(json_for_script({"a": "</script><!--&"})) == {"a": "</script><!--&"}
    assert "<" not in json_for_script({"a": "</script><!--"}) and "&" not in json_for_script("&")


HOSTILE_NAMES = ["<!--<script>", "__SCRIPT__", "{{about}}", "</script><script>window.pwned=1</script>",
                 "<img src=x onerror=window.pwned=1>", "$\\frac{$", "\"'><b id=injected>", "&amp;", "\u202eevil",
                 "x\ny"]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A digits run whose model has hostile class names and whose metrics.json has hostile values."""
    out = tmp_path_factory.mktemp("hostile") / "run"
    assert main(["train", "--dataset", "digits", "--out", str(out), "-q", "--no-plots"]) == 0
    model = load_model(out / "model.npz")
    model.class_names = tuple(HOSTILE_NAMES)
    model.metadata["created"] = "<script>window.pwned=1</script>"
    save_model(model, out / "model.npz")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.update(seed="<script>window.pwned=1</script>", recipe="</title><script>window.pwned=1</script>",
                   test_accuracy='<b id="injected">99%</b>', n_train={"x": 1}, train_seconds=[1])
    (out / "metrics.json").write_text(json.dumps(metrics))
    return out


def _no_script_ran(page):
    assert page.evaluate("window.pwned === undefined")
    assert page.evaluate("document.querySelectorAll('img[onerror], #injected').length") == 0


def test_hostile_values_do_not_run_in_the_report(hostile_run, browser, capsys):
    assert main(["report", str(hostile_run), "-q"]) == 0
    text = (hostile_run / "report.html").read_text()
    assert "<script>window.pwned" not in text and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in text
    assert "<script" not in text  # the report needs no script at all, and its CSP allows none
    page = open_page(browser, (hostile_run / "report.html").as_uri())
    _no_script_ran(page)
    assert "<script>window.pwned=1</script>" in page.inner_text("body")  # shown as text
    assert page.errors == []


def test_hostile_class_names_do_not_break_the_drawing_page(hostile_run, browser, tmp_path):
    page_path = tmp_path / "draw.html"
    assert main(["app", str(hostile_run / "model.npz"), "--out", str(page_path), "-q"]) == 0
    page = open_page(browser, page_path.as_uri())
    _no_script_ran(page)
    names = page.eval_on_selector_all(".bar .name", "els => els.map(e => e.textContent)")
    assert names == HOSTILE_NAMES
    assert page.evaluate("window.mnistSoftmax.classify(new Array(64).fill(0.5)).probabilities.length") == 10
    assert page.errors == []


def test_csp_blocks_script_that_slipped_into_a_page(browser, tmp_path):
    """The policy is enforced: our own inline script runs, a foreign one (added as if by a bug) does not."""
    page = document(title="t", body=Markup('<p id="p">x</p>'), styles=["#p { color: rgb(1, 2, 3); }"],
                    scripts=["document.getElementById('p').textContent = 'ours ran';"])
    tampered = page.html.replace("</body>", "<script>window.pwned = 1</script><p style='color: red'>s</p></body>")
    path = tmp_path / "t.html"
    path.write_text(tampered)
    browser_page = open_page(browser, path.as_uri())
    assert browser_page.inner_text("#p") == "ours ran"
    assert browser_page.evaluate("getComputedStyle(document.getElementById('p')).color") == "rgb(1, 2, 3)"
    assert browser_page.evaluate("window.pwned === undefined")
    assert any("Content Security Policy" in e for e in browser_page.errors), browser_page.errors


def test_models_whose_scores_would_overflow_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="weights larger than"):
        load_model(_model_with_metadata(tmp_path / "a.npz", coef=np.full((3, 4), 3e38, np.float32)))
    big_scale = _meta(preprocessing={"scale": 1e10, "image_shape": [2, 2]})
    with pytest.raises(ModelFileError, match="overflow float32"):
        load_model(_model_with_metadata(tmp_path / "b.npz", coef=np.full((3, 4), 1e25, np.float32), **big_scale))


def test_archives_listing_many_entries_are_refused_before_parsing(tmp_path):
    path = _model_with_metadata(tmp_path / "m.npz")
    with zipfile.ZipFile(path, "a") as z:
        for i in range(40):
            z.writestr(f"junk{i}", b"")
    with pytest.raises(ModelFileError, match="lists 44 entries"):
        load_model(path)


def test_fifos_are_refused_not_waited_on(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "model.npz")
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_model(tmp_path / "model.npz")
    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--out", str(run), "-q", "--no-plots"]) == 0
    (run / "metrics.json").unlink()
    os.mkfifo(run / "metrics.json")
    capsys.readouterr()
    one_error(capsys, ExitCode.DATA, main(["report", str(run)]), "metrics.json", "not a regular file")


HOSTILE_HISTORIES = ["a,b\n1,2\n", "step,train_loss\n1,2\n", "step,train_loss,train_accuracy\n1,nan,0.5\n",
                     "step,train_loss,train_accuracy\n1,x,0.5\n", "step,train_loss,train_accuracy\n1,2\n",
                     "step,train_loss,train_accuracy\n1,2,3,4\n", "step,train_loss,train_accuracy\n1,1e308,1\n",
                     "step,train_loss,train_accuracy,validation_loss\n1,1,1,1\n"]


@pytest.mark.parametrize("text", HOSTILE_HISTORIES, ids=range(len(HOSTILE_HISTORIES)))
def test_hostile_history_files_are_refused(tmp_path, text):
    from mnist_softmax.report import read_history

    (tmp_path / "history.csv").write_text(text)
    with pytest.raises(DataFormatError, match="not a readable history"):
        read_history(tmp_path / "history.csv")


@pytest.mark.parametrize("text", ["[]", '"x"', "{", "[" * 5000, "\udcff", " " * (17 << 20)])
def test_hostile_metrics_files_are_refused(tmp_path, text):
    from mnist_softmax.report import read_metrics

    (tmp_path / "metrics.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(DataFormatError, match="metrics"):
        read_metrics(tmp_path / "metrics.json")


def test_outputs_never_replace_devices_or_folders(tmp_path, capsys):
    from mnist_softmax.files import atomic_write

    for target in ("/dev/null", tmp_path):
        with pytest.raises(OSError, match="not a regular file"), atomic_write(target) as out:
            out.write(b"x")
    import os

    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_class_names_from_a_folder_cannot_drive_the_terminal(tmp_path, capsys):
    from conftest import make_tiny

    folder = tmp_path / "data"
    make_tiny(folder)
    (folder / "classes.txt").write_text("\x1b[2Jwipe\n$\\frac{$\n<script>\n")
    run = tmp_path / "run"
    # A control character in a class name is refused, and the one error line shows it escaped.
    assert main(["train", "--dataset", str(folder), "--out", str(run), "-q"]) == ExitCode.DATA
    err = capsys.readouterr().err
    assert "\x1b" not in err and "holds a control character" in err and not run.exists()
    (folder / "classes.txt").write_text("wipe\n$\\frac{$\n<script>\n")  # math and markup are fine names
    assert main(["train", "--dataset", str(folder), "--out", str(run), "-q"]) == 0  # figures with these labels too
    capsys.readouterr()
    assert main(["evaluate", str(run / "model.npz"), "--dataset", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "$\\frac{$" in out and "<script>" in out
