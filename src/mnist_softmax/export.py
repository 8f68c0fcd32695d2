"""Exporting a model for other runtimes: ONNX (the whole model, raw pixels in) and plain JSON weights.

The ONNX graph (opset 17, IR version 8; onnxruntime 1.12 or later runs it) computes exactly what
`SoftmaxModel.predict_proba` and `predict` compute, from the same raw inputs:

    input  "pixels"         uint8 (n, h, w) for an image model, (n, d) otherwise (float32 with input_type="float32")
    steps  Cast to float32, Mul by the model's scale (1/255 for MNIST), deskew if the model was trained with it
           (its moment shear and re-centring, written in ONNX ops), flatten to (n, d), MatMul by coef^T, Add
           intercept, Div by the calibration temperature if the model has one, Softmax
    output "label"          (n,) the predicted class label (int64, or string for string labels): ArgMax, then a
                            Gather from the labels, so ties go to the first class as numpy's argmax does
    output "probabilities"  float32 (n, k), in the order of the model's classes

The JSON export holds the same numbers as lists for people who port the model by hand: coef (k, d), intercept (k,),
classes, class names, the preprocessing and the formula. `import onnx` happens only here, and only when exporting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError, UsageError
from .files import atomic_write
from .model import SoftmaxModel

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17: files that older runtimes also read
INPUT = "pixels"
OUTPUTS = ("label", "probabilities")
JSON_FORMAT = "mnist-softmax-weights"
DESKEW_METHOD = (
    "per image x (h, w) of scaled pixels: mass m = sum x; centre of mass cy = sum_y y * rowsum_y / m, "
    "cx = sum_x x * colsum_x / m; var_y = sum_y rowsum_y (y - cy)^2 / m; cov = sum_{y,x} x_{y,x} (x - cx)(y - cy) / m; "
    "alpha = cov / var_y if var_y > 1e-6 else 0, clipped to [-1, 1]; a blank image (no pixel > 0) uses cy = h/2, "
    "cx = w/2. Output pixel (y, x) is the bilinear interpolation of the input at row y + cy - h/2 and column "
    "x + cx - w/2 + alpha (y - h/2), reading 0 outside the image (separable: blend the two rows, then the two columns)"
)


def temperature(model: SoftmaxModel) -> float | None:
    """The model's calibration temperature (the logits are divided by it before the softmax), or None."""
    value = getattr(model, "temperature", None)
    if value is None:
        value = model.metadata.get("calibration", {}).get("temperature")
    if value is None or float(value) == 1.0:
        return None
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise UsageError(f"the model's calibration temperature must be a positive number, got {value}")
    return value


class _Graph:
    """Collects ONNX nodes and constants under unique names, so the export reads as a list of steps."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.constants: list = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str = "c", dtype=np.float32) -> str:
        name = self._name(hint)
        array = np.asarray(value, dtype=dtype)
        self.constants.append(self.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        name = out or self._name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [name], name=f"{op_type}_{name}", **attrs))
        return name


def _deskew(g: _Graph, images: str, shape: tuple[int, int]) -> str:
    """preprocess.deskew in ONNX ops, step for step: (n, h, w) float32 -> (n, h, w) float32.

    The centre of mass (cy, cx) and the shear alpha = cov(x, y) / var(y) come from each image's moments; output pixel
    (y, x) is the bilinear read of the input at (y + cy - h/2, x + cx - w/2 + alpha (y - h/2)), zero outside. As in
    numpy, the read is separable: whole rows are blended first (one row offset per image), then each row is shifted
    (one column offset per output row), the neighbours gathered from zero-padded copies.
    """
    h, w = shape
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    f32, f64, i64, boolean = 1, 11, 7, 9  # onnx.TensorProto.FLOAT, DOUBLE, INT64, BOOL
    # Moments, in float64 and rounded to float32 at the end: the nearest float32 to the exact value, which numpy's
    # float32 moments are within a few units of the last place of. (Sums, not numpy's products with a vector of
    # ones: onnxruntime 1.32's graph optimiser computes MatMul(Transpose(x), v) wrongly for 3-d x and a vector v.)
    axis1, axis2 = g.const([1], "axis1", np.int64), g.const([2], "axis2", np.int64)
    x64 = g.op("Cast", images, to=f64)
    rows = g.op("ReduceSum", x64, axis2, keepdims=0)  # (n, h)
    cols = g.op("ReduceSum", x64, axis1, keepdims=0)  # (n, w)
    mass = g.op("ReduceSum", rows, axis1, keepdims=0)  # (n,)
    zero64, one64 = g.const(0.0, "zero", np.float64), g.const(1.0, "one", np.float64)
    safe = g.op("Where", g.op("Greater", mass, zero64), mass, one64)
    cy = g.op("Div", g.op("MatMul", rows, g.const(ys, "ys", np.float64)), safe)
    cx = g.op("Div", g.op("MatMul", cols, g.const(xs, "xs", np.float64)), safe)
    dy = g.op("Sub", g.const(ys[None], "ys_row", np.float64), g.op("Unsqueeze", cy, axis1))  # (n, h)
    dx = g.op("Sub", g.const(xs[None], "xs_row", np.float64), g.op("Unsqueeze", cx, axis1))  # (n, w)
    var_y = g.op("Div", g.op("ReduceSum", g.op("Mul", rows, g.op("Mul", dy, dy)), axis1, keepdims=0), safe)
    weighted = g.op("Squeeze", g.op("MatMul", x64, g.op("Unsqueeze", dx, axis2)), axis2)  # (n, h)
    cov = g.op("Div", g.op("ReduceSum", g.op("Mul", weighted, dy), axis1, keepdims=0), safe)
    sheared = g.op("Greater", var_y, g.const(1e-6, "tiny", np.float64))
    alpha = g.op("Where", sheared, g.op("Div", cov, g.op("Where", sheared, var_y, one64)), zero64)
    cy, cx, alpha = (g.op("Cast", v, to=f32) for v in (cy, cx, alpha))
    # Blank images (no pixel above 0) are read in place.
    zero, one = g.const(0.0, "zero"), g.const(1.0, "one")
    inked = g.op("Cast", g.op("Greater", images, zero), to=f32)
    blank = g.op("Not", g.op("Cast", g.op("ReduceMax", inked, axes=[1, 2], keepdims=0), to=boolean))
    cy = g.op("Where", blank, g.const(h / 2, "half_h"), cy)
    cx = g.op("Where", blank, g.const(w / 2, "half_w"), cx)

    pad_rows, pad_cols = h // 2 + 2, w // 2 + h // 2 + 2  # as numpy: the furthest any read can reach
    # Rows: input row (cy - h/2) + y for output row y, blended between its floor and the next.
    row = g.op("Add", g.op("Unsqueeze", g.op("Sub", cy, g.const(h / 2, "half_h")), axis1), g.const(ys[None], "ys_row"))
    r0 = g.op("Floor", row)
    fr = g.op("Unsqueeze", g.op("Sub", row, r0), axis2)  # (n, h, 1)
    tall = g.op("Pad", images, g.const([0, pad_rows, 0, 0, pad_rows, 0], "pad_rows", np.int64))
    top = g.op("Add", g.op("Cast", r0, to=i64), g.const(pad_rows, "pad_rows_n", np.int64))  # (n, h)
    top = g.op("Expand", g.op("Unsqueeze", top, axis2), g.op("Shape", images))  # (n, h, w)
    above = g.op("GatherElements", tall, top, axis=1)
    below = g.op("GatherElements", tall, g.op("Add", top, g.const(1, "one_i", np.int64)), axis=1)
    blended = g.op("Add", g.op("Mul", g.op("Sub", below, above), fr), above)
    # Columns: output row y reads from column x + alpha (y - h/2) + cx - w/2, blended between floor and next.
    shear = g.op("Clip", alpha, g.const(-1.0, "minus_one"), one)
    col = g.op(
        "Add",
        g.op("Mul", g.op("Unsqueeze", shear, axis1), g.const(ys[None] - h / 2, "ys_centred")),
        g.op("Unsqueeze", g.op("Sub", cx, g.const(w / 2, "half_w")), axis1),
    )  # (n, h)
    c0 = g.op("Floor", col)
    fc = g.op("Unsqueeze", g.op("Sub", col, c0), axis2)  # (n, h, 1)
    wide = g.op("Pad", blended, g.const([0, 0, pad_cols, 0, 0, pad_cols], "pad_cols", np.int64))
    first = g.op("Add", g.op("Cast", c0, to=i64), g.const(pad_cols, "pad_cols_n", np.int64))
    left = g.op("Add", g.op("Unsqueeze", first, axis2), g.const(np.arange(w)[None, None], "xs_int", np.int64))
    result = g.op("GatherElements", wide, left, axis=2)
    right = g.op("GatherElements", wide, g.op("Add", left, g.const(1, "one_i", np.int64)), axis=2)
    return g.op("Add", g.op("Mul", g.op("Sub", right, result), fc), result)


def to_onnx(model: SoftmaxModel, *, input_type: str = "uint8"):
    """The whole model as an onnx.ModelProto: raw inputs to ("label", "probabilities"); see the module docstring.

    `input_type="float32"` takes float inputs instead of 8-bit pixels (for models whose inputs are already scaled,
    such as `SoftmaxClassifier.to_model()`'s).
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise UsageError("ONNX export needs the onnx package: pip install onnx onnxruntime") from None
    if input_type not in ("uint8", "float32"):
        raise UsageError(f"input_type must be 'uint8' or 'float32', got {input_type!r}")
    pre = model.preprocessing
    coef = np.asarray(model.coef, np.float32)
    k, d = coef.shape
    shape = tuple(pre.image_shape) if pre.image_shape else None
    g = _Graph()

    x = g.op("Cast", INPUT, to=TensorProto.FLOAT) if input_type == "uint8" else g.op("Identity", INPUT)
    x = g.op("Mul", x, g.const(np.float32(pre.scale), "scale"))
    if pre.deskew:
        if shape is None or len(shape) != 2:
            raise UsageError("deskewing needs 2-d images; this model has no image shape")
        x = _deskew(g, x, shape)
    if shape is not None:
        x = g.op("Reshape", x, g.const([-1, d], "flat", np.int64))
    logits = g.op("Add", g.op("MatMul", x, g.const(coef.T, "coef_t")), g.const(model.intercept, "intercept"))
    t = temperature(model)
    if t is not None:
        logits = g.op("Div", logits, g.const(np.float32(t), "temperature"))
    g.op("Softmax", logits, axis=-1, out="probabilities")
    classes = np.asarray(model.classes)
    if classes.dtype.kind in "US":
        labels = g.const([str(c) for c in classes], "classes", object)  # a STRING tensor
        label_type = TensorProto.STRING
    else:
        labels = g.const(classes, "classes", np.int64)
        label_type = TensorProto.INT64
    g.op("Gather", labels, g.op("ArgMax", logits, axis=1, keepdims=0), axis=0, out="label")

    in_shape: list[str | int] = ["n", *shape] if shape is not None else ["n", d]
    elem = TensorProto.UINT8 if input_type == "uint8" else TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes,
        "mnist_softmax",
        [helper.make_tensor_value_info(INPUT, elem, in_shape)],
        [helper.make_tensor_value_info("label", label_type, ["n"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", k])],
        initializer=g.constants,
    )
    from . import __version__

    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mnist-softmax",
                              producer_version=__version__, doc_string=_describe(model, input_type))
    proto.ir_version = IR_VERSION
    names = [str(n) for n in model.class_names] or [str(c) for c in classes]
    helper.set_model_props(proto, {"class_names": json.dumps(names), "input": INPUT, "outputs": ",".join(OUTPUTS)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _describe(model: SoftmaxModel, input_type: str) -> str:
    pre = model.preprocessing
    steps = [f"{input_type} {INPUT}", f"* {pre.scale:.9g}"] + (["deskew"] if pre.deskew else [])
    steps.append("x W^T + b")
    t = temperature(model)
    if t is not None:
        steps.append(f"/ temperature {t:.6g}")
    return "softmax regression: " + " -> ".join(steps) + " -> softmax; outputs label, probabilities"


def to_json(model: SoftmaxModel) -> dict[str, Any]:
    """The model as plain JSON-ready data: weights as nested lists of float32 values, preprocessing and formula."""
    from . import __version__

    def floats(a: np.ndarray) -> list:
        # The shortest decimal that reads back as the same float32: exact, and half the size of float64 digits.
        return [float(np.format_float_positional(v, unique=True, trim="0")) for v in np.asarray(a, np.float32)]

    pre = model.preprocessing
    return {
        "format": JSON_FORMAT,
        "format_version": 1,
        "package_version": __version__,
        "formula": "probabilities = softmax((x W^T + b) / temperature), x = deskew(pixels * scale) if deskew else "
                   "pixels * scale, flattened row by row; label = classes[argmax]",
        "classes": np.asarray(model.classes).tolist(),
        "class_names": [str(n) for n in model.class_names],
        "image_shape": list(pre.image_shape) if pre.image_shape else None,
        "scale": pre.scale,
        "deskew": pre.deskew,
        **({"deskew_method": DESKEW_METHOD} if pre.deskew else {}),
        "temperature": temperature(model) or 1.0,
        "coef": [floats(row) for row in model.coef],
        "intercept": floats(model.intercept),
    }


def export_model(model: SoftmaxModel, path: str | Path, fmt: str) -> Path:
    """Write `model` to `path` as "onnx" or "json", atomically."""
    path = Path(path)
    if fmt == "onnx":
        data = to_onnx(model).SerializeToString()
    elif fmt == "json":
        data = json.dumps(to_json(model), separators=(",", ":")).encode()
    else:
        raise UsageError(f"export format must be 'onnx' or 'json', got {fmt!r}")
    try:
        with atomic_write(path) as out:
            out.write(data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
