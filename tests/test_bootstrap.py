"""`make` finds a Python 3.10 or fails with a message that says what to install."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_make_with_missing_python_explains_and_creates_nothing(tmp_path):
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "-C", str(ROOT), "venv", f"VENV={venv}", "PYTHON=/nonexistent/python3.10"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "PYTHON=/nonexistent/python3.10 is not a working Python 3.10" in result.stderr
    assert "dm-launchpad" in result.stderr
    assert not venv.exists()


def test_finder_without_any_python310_names_what_to_install(tmp_path):
    bare_path = tmp_path / "bin"  # a PATH with no python3.10, and an empty pyenv root
    bare_path.mkdir()
    env = {"PATH": f"{bare_path}:/usr/bin:/bin", "PYENV_ROOT": str(tmp_path / "pyenv"),
           "HOME": str(tmp_path)}
    if Path("/usr/bin/python3.10").exists():
        pytest.skip("this machine has a system python3.10, which the finder rightly accepts")
    result = subprocess.run(
        [str(ROOT / "scripts" / "find_python310.sh")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    assert "no Python 3.10 interpreter found" in result.stderr
    assert "pyenv install 3.10" in result.stderr


def test_finder_accepts_an_explicit_python310():
    result = subprocess.run(
        [str(ROOT / "scripts" / "find_python310.sh")], capture_output=True, text=True,
        env=dict(os.environ, PYTHON=sys.executable),
    )
    assert result.returncode == 0
    assert result.stdout.strip() == sys.executable


def test_make_does_not_reinstall_an_up_to_date_venv():
    """The stamp is newer than requirements.txt and pyproject.toml: `make venv` is a no-op."""
    result = subprocess.run(
        ["make", "-C", str(ROOT), "--question", "venv"], capture_output=True, text=True
    )
    assert result.returncode == 0, "make considers .venv out of date: it would reinstall"
