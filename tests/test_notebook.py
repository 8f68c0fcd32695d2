"""docs/tutorial.ipynb: committed without outputs, and runs top to bottom on the bundled MNIST, offline."""

import json
import os
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"

if os.environ.get("CI"):  # in CI the test dependencies must be there: a missing one fails, never skips
    import nbclient
    import nbformat
else:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")


def test_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 8
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, "strip the outputs before committing"
    nbformat.validate(nbformat.reads(NOTEBOOK.read_text(encoding="utf-8"), as_version=4))


def test_tutorial_runs_top_to_bottom(tmp_path, monkeypatch):
    # A kernel spec for this very interpreter, found first, so the kernel imports the package under test.
    spec = tmp_path / "jupyter" / "kernels" / "mnist-softmax-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mnist-softmax test", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MNIST_SOFTMAX_OFFLINE", "1")  # the bundled MNIST, nothing downloaded
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="mnist-softmax-test",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<strong>Dataset</strong>" in h for h in html)
    assert any("<strong>SoftmaxModel</strong>" in h and "data:image/png;base64," in h for h in html)
    figures = [o for o in outputs if "image/png" in o.get("data", {}) and o.output_type == "display_data"]
    assert len(figures) >= 6  # curves, weights, evidence, mistakes, confusion, your digit's evidence
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "evidence sums + bias equal the logits: True" in text
    test_accuracy = float(text.split("test       accuracy ")[1].split("%")[0])
    assert 90.0 <= test_accuracy <= 92.5  # the tutorial's figure
    assert text.strip().splitlines()[-3].startswith("2: ")  # the made-up photo of a test 2 is read as a 2
