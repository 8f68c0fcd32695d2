"""Model files: round trips, and every kind of bad file refused with a clear message."""

import io
import json
import zipfile

import numpy as np
import pytest

from mnist_softmax import Preprocessing, SoftmaxModel, load_model, save_model
from mnist_softmax.errors import ModelFileError, OutputError


def model(k=3, d=4, classes=None):
    rng = np.random.default_rng(0)
    return SoftmaxModel(
        rng.normal(size=(k, d)).astype(np.float32),
        rng.normal(size=k).astype(np.float32),
        np.arange(k) if classes is None else classes,
        Preprocessing(scale=1 / 255, image_shape=(2, 2)),
        tuple(f"class {i}" for i in range(k)),
        {"dataset": {"name": "tiny"}},
    )


def test_round_trip(tmp_path):
    m = model()
    path = save_model(m, tmp_path / "m.npz")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.coef, m.coef)
    assert loaded.preprocessing == m.preprocessing and loaded.class_names == m.class_names
    assert loaded.metadata["dataset"] == {"name": "tiny"} and loaded.metadata["format_version"] == 1
    X = np.random.default_rng(1).integers(0, 256, size=(5, 2, 2))
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left


def test_string_classes_survive(tmp_path):
    m = model(classes=np.array(["cat", "dog", "emu"], dtype=object))
    loaded = load_model(save_model(m, tmp_path / "m.npz"))
    assert loaded.classes.tolist() == ["cat", "dog", "emu"] and loaded.classes.dtype.kind == "U"


def write_npz(path, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def good_arrays(**changes):
    m = model()
    meta = {"format": "mnist-softmax-model", "format_version": 1,
            "preprocessing": {"scale": 1.0, "image_shape": [2, 2]}, "class_names": ["a", "b", "c"]}
    arrays = {
        "coef": m.coef, "intercept": m.intercept, "classes": m.classes,
        "metadata": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    arrays.update(changes)
    return arrays


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"classes": np.array([{"evil": 1}, 2, 3], dtype=object)},
         "holds object arrays .pickled Python objects.; refusing"),
        ({"coef": np.zeros((3, 5), np.float32)}, r"image shape \(2, 2\) does not hold the 5 features"),
        ({"coef": np.zeros(12, np.float32)}, "coef must be a 2-d float array"),
        ({"intercept": np.zeros(2, np.float32)}, r"intercept must be float of shape \(3,\)"),
        ({"coef": np.full((3, 4), np.nan, np.float32)}, "weights contain NaN or infinity"),
        ({"metadata": np.frombuffer(b"{not json", np.uint8)}, "metadata is not valid JSON"),
        ({"metadata": np.frombuffer(b'{"format": "other"}', np.uint8)}, "does not describe an mnist-softmax-model"),
        ({"classes": np.arange(4)}, "classes must be 3 integers or strings"),
    ],
)
def test_bad_contents_are_refused(tmp_path, changes, message):
    path = write_npz(tmp_path / "bad.npz", **good_arrays(**changes))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_missing_arrays(tmp_path):
    arrays = good_arrays()
    del arrays["intercept"]
    with pytest.raises(ModelFileError, match="not a model file: missing intercept"):
        load_model(write_npz(tmp_path / "m.npz", **arrays))


def test_not_a_model_file_at_all(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError, match="text.npz: not a model file .expected an .npz archive."):
        load_model(tmp_path / "text.npz")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "absent.npz")
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(tmp_path)
    good = (tmp_path / "good.npz")
    save_model(model(), good)
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelFileError, match="cut.npz: not a valid model file"):
        load_model(tmp_path / "cut.npz")


def test_pickle_payload_never_runs(tmp_path):
    """A zip member holding a pickle (as numpy writes object arrays) is refused, and its code never runs."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    write_npz(path, **good_arrays())
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = io.BytesIO()
    np.lib.format.write_array(evil, np.array([Evil()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("classes.npy", evil.getvalue())  # a second classes.npy shadows the first
    with pytest.raises(ModelFileError):
        load_model(path)
    assert not marker.exists()
    del pickle


def test_unwritable_destination(tmp_path):
    with pytest.raises(OutputError, match="cannot write the model to"):
        save_model(model(), tmp_path / "no" / "such" / "dir" / "m.npz")
