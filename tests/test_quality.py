"""The lint and type checks pass: ruff on the code, tests, benches and docs; mypy on the package (pyproject config)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("command", [
    pytest.param(("ruff", "check", "src", "tests", "bench", "docs"), id="ruff"),
    pytest.param(("mypy",), id="mypy"),
])
def test_check_passes(command):
    result = _run(*command)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"
