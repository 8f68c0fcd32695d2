"""A fresh machine with no network: the package as pip installs it trains, reports, evaluates, predicts and draws
on MNIST at once, from the copy it ships, with an empty cache and every mirror unreachable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """This checkout built into a wheel and installed into a folder of its own (its dependencies come from
    this environment), as `pip install .` would install it."""
    work = tmp_path_factory.mktemp("fresh")
    wheels, target = work / "wheels", work / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(wheels), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("mnist_softmax-*.whl"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    return work, target


def offline_env(work: Path, target: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_SOFTMAX_")}
    env.update(PYTHONPATH=str(target), HOME=str(work / "home"), XDG_CACHE_HOME=str(work / "home" / ".cache"),
               MNIST_SOFTMAX_MIRRORS="http://127.0.0.1:9/")  # a closed port: a download attempt fails at once
    return env


def test_fresh_install_works_with_no_network(installed, tmp_path, mnist_dir):
    work, target = installed
    env = offline_env(work, target)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "mnist_softmax", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=tmp_path)

    where = subprocess.run([sys.executable, "-c", "import mnist_softmax; print(mnist_softmax.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path).stdout
    assert where.startswith(str(target)), where  # the installed copy, not this checkout
    trained = cli("train", "--json", "--no-plots")
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads(trained.stdout)
    assert metrics["test_accuracy"] >= 0.925 and metrics["dataset"] == "mnist"
    run_dir = tmp_path / metrics["run_dir"]
    model = run_dir / "model.npz"
    assert not (work / "home" / ".cache" / "mnist-softmax" / "mnist" / "train-images-idx3-ubyte.gz").exists()

    reported = cli("report", run_dir)
    assert reported.returncode == 0, reported.stderr
    assert (run_dir / "report.html").stat().st_size > 10_000
    evaluated = cli("evaluate", model, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)

    from PIL import Image

    from mnist_softmax import load_dataset

    digit = load_dataset("mnist", mnist_dir).test_images[0]  # a 7
    Image.fromarray(255 - np.asarray(digit)).resize((112, 112)).save(tmp_path / "seven.png")
    predicted = cli("predict", model, tmp_path / "seven.png", "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout.splitlines()[0])["prediction"] == 7
    drawn = cli("app", model, "--out", tmp_path / "draw.html")
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "draw.html").stat().st_size > 20_000
    verified = cli("data", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_parallel_runs_in_the_same_second_get_their_own_folders(tmp_path):
    """A seed sweep started at once: every run gets a folder of its own (names are reserved by mkdir)."""
    procs = [subprocess.Popen([sys.executable, "-m", "mnist_softmax", "train", "--dataset", "digits", "--seed",
                               str(seed), "--no-plots", "--json"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    folders = {json.loads(out)["run_dir"] for out, _ in outputs}
    assert len(folders) == 3 and all((tmp_path / f / "model.npz").is_file() for f in folders)


def test_failed_run_leaves_no_reserved_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnist_softmax", "train", "--dataset", "digits",
                             "--learning-rate", "1e30", "--average", "0"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 6, result.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_import_from_a_folder_on_the_command_line(tiny, tmp_path, isolated_cache, capsys):
    from mnist_softmax.cli import main

    spec, folder = tiny
    assert main(["data", "fetch", "--dataset", "tiny", "--from", str(folder)]) == 0
    assert "tiny: all files present and verified" in capsys.readouterr().out
    assert (isolated_cache / "tiny" / "train-images-idx3-ubyte.gz").is_file()
    assert main(["data", "fetch", "--dataset", "tiny", "--from", str(tmp_path / "nowhere")]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_top_level_help_names_every_command():
    result = subprocess.run([sys.executable, "-m", "mnist_softmax", "--help"], capture_output=True, text=True)
    from mnist_softmax.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert name in result.stdout, name
