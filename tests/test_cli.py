"""The command line: what it prints, what it writes, and one clear line with the right exit code on bad input."""

import json
import shutil
import subprocess
import sys

import pytest

from mnist_softmax.cli import main
from mnist_softmax.errors import ExitCode


def run(*args, env=None):
    """Run the real command in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "mnist_softmax", *map(str, args)], capture_output=True, text=True,
                          env=env)


def one_error_line(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_digits_writes_a_run_and_evaluate_reads_it(tmp_path):
    out = tmp_path / "run"
    result = run("train", "--dataset", "digits", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "history.csv", "metrics.json", "model.npz",
                                                     "weights.gif", "weights.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95 and metrics["validation_accuracy"] >= 0.9
    assert "accuracy  train" in result.stdout and f"run       {out}/" in result.stdout
    assert result.stderr == ""  # progress only goes to a terminal
    header = (out / "history.csv").read_text().splitlines()[0]
    assert header == "step,epoch,train_loss,train_accuracy,validation_loss,validation_accuracy"

    evaluated = run("evaluate", out / "model.npz", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["dataset"] == "digits" and report["n"] == metrics["n_test"]
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert sum(map(sum, report["confusion"])) == report["n"]
    text = run("evaluate", out / "model.npz").stdout
    assert "accuracy" in text and "precision" in text and "confusion (rows: true class" in text


def test_train_json_and_quiet(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r"), "--json", "--quiet",
                 "--recipe", "optimal", "--steps", "50"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    report = json.loads(captured.out)
    assert report["recipe"] == "optimal" and report["steps"] <= 50 and report["run_dir"] == str(tmp_path / "r")


def test_training_without_a_validation_split_says_what_the_model_lacks(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r"), "--no-plots",
                 "--validation-size", "0"]) == 0
    assert "no validation split" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r2"), "--no-plots"]) == 0
    assert "no validation split" not in capsys.readouterr().err


def test_default_run_dir_is_fresh(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(["train", "--dataset", "digits", "-q", "--steps", "5"]) == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.startswith("digits-default-") for r in runs)


@pytest.mark.parametrize(
    "args, code, fragments",
    [
        (["train", "--learning-rate", "-1"], ExitCode.USAGE, ["argument --learning-rate: must be > 0, got -1"]),
        (["train", "--learning-rate", "nan"], ExitCode.USAGE, ["expected a finite number, got 'nan'"]),
        (["train", "--batch-size", "many"], ExitCode.USAGE, ["expected an integer, got 'many'"]),
        (["train", "--dataset", "digits", "--average", "2"], ExitCode.USAGE, ["average must be in [0, 1], got 2.0"]),
        (["train", "--steps", "5", "--epochs", "1"], ExitCode.USAGE, ["not allowed with argument"]),
        (["train", "--dataset", "cifar"], ExitCode.USAGE, ["'cifar' is neither a dataset (mnist, fashion-mnist",
                                                           "nor a folder of IDX files"]),
        (["train", "--data-dir", "/nonexistent/folder"], ExitCode.DATA,
         ["data folder /nonexistent/folder does not exist"]),
        (["train", "--dataset", "digits", "--learning-rate", "1e30"], ExitCode.TRAINING,
         ["training diverged", "(now 1e+30)"]),
        (["evaluate", "/nonexistent/model.npz"], ExitCode.MODEL, ["no such model file"]),
        (["frobnicate"], ExitCode.USAGE, ["invalid choice: 'frobnicate'"]),
    ],
)
def test_bad_input_gives_one_line_and_an_exit_code(tmp_path, args, code, fragments):
    result = run(*args, "--out", tmp_path / "run") if args[0] == "train" else run(*args)
    assert result.returncode == code
    one_error_line(result, *fragments)
    assert not (tmp_path / "run").exists()  # a failed train leaves nothing behind


def test_offline_with_nothing_cached(tmp_path):
    import os

    env = {**os.environ, "MNIST_SOFTMAX_CACHE_DIR": str(tmp_path / "cache")}
    result = run("train", "--dataset", "kmnist", "--offline", "--out", tmp_path / "run", env=env)
    assert result.returncode == ExitCode.DATA
    one_error_line(result, "downloads are off", "--data-dir DIR", "data fetch --dataset kmnist", "--dataset mnist")
    assert not (tmp_path / "run").exists()


def test_unwritable_or_occupied_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("train", "--dataset", "digits", "--steps", "5", "--out", blocker / "run")
    assert result.returncode == ExitCode.OUTPUT
    one_error_line(result, "cannot create the run directory")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    result = run("train", "--dataset", "digits", "--steps", "5", "--out", occupied)
    assert result.returncode == ExitCode.OUTPUT
    one_error_line(result, "already exists and is not an empty directory")
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    result = run("evaluate", bad)
    assert result.returncode == ExitCode.MODEL
    one_error_line(result, "not a valid model file")


def test_traceback_switch_shows_the_traceback(tmp_path):
    result = run("evaluate", tmp_path / "absent.npz", "--traceback")
    assert result.returncode != 0 and "Traceback" in result.stderr and "ModelFileError" in result.stderr


def test_data_commands(tiny, capsys, tmp_path):
    spec, folder = tiny
    assert main(["data", "verify", "--dataset", "tiny", "--data-dir", str(folder)]) == 0
    assert capsys.readouterr().out.count("ok  ") == 4
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    assert main(["data", "verify", "--dataset", "tiny", "--data-dir", str(folder), "--json"]) == ExitCode.DATA
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [f["problem"] is None for f in report["files"]] == [True, False, True, True]
    assert main(["data", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    names = [d["name"] for d in info["datasets"]]
    assert names[:4] == ["mnist", "fashion-mnist", "kmnist", "qmnist"] and "emnist-letters" in names
    assert {d["name"]: d["digest_kind"] for d in info["datasets"]}["emnist-letters"] == "archive"
    mnist = info["datasets"][0]
    assert mnist["mirrors"][0].startswith("https://") and "yann.lecun.com" in mnist["mirrors"][-1]
    assert main(["data", "info", "--dataset", "fashion-mnist"]) == 0
    assert "Ankle boot" in capsys.readouterr().out


def test_help_and_version():
    for args in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["data", "fetch", "--help"]):
        result = run(*args)
        assert result.returncode == 0 and "usage: mnist-softmax" in result.stdout
    assert "exit codes: 0 ok" in run("train", "--help").stdout
    script = shutil.which("mnist-softmax")
    assert script, "the console script is installed with the package"
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout.startswith("mnist-softmax ")


def test_train_imports_no_scikit_learn(tiny, tmp_path):
    spec, folder = tiny
    code = (
        "import sys\n"
        "from mnist_softmax import datasets\n"
        "from conftest import make_tiny\n"
        f"datasets.DATASETS['tiny'] = make_tiny(__import__('pathlib').Path({str(tmp_path / 'd')!r}))\n"
        "from mnist_softmax.cli import main\n"
        f"code = main(['train', '--dataset', 'tiny', '--data-dir', {str(tmp_path / 'd')!r}, '-q', '--out', "
        f"{str(tmp_path / 'r')!r}])\n"
        "print(code, 'sklearn' in sys.modules, 'scipy' in sys.modules)\n"
    )
    import os

    env = {**os.environ, "PYTHONPATH": os.path.dirname(__file__)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split()[-3:] == ["0", "False", "False"], out.stderr


@pytest.mark.parametrize("argv, helped", [
    (["train", "--lr", "0.1"], "mnist-softmax train --help"),
    (["data", "info", "--zz"], "mnist-softmax data info --help"),
    (["--zz"], "mnist-softmax --help"),
])
def test_an_unknown_option_points_to_its_commands_help(argv, helped, capsys):
    """The help that lists the command's options, not the top level's list of commands."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments" in err and f"(see '{helped}')" in err
