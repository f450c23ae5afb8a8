"""The type hints: the compiled module's stub matches what it really has
(mypy's stubtest), and typing/check.py — the docs' uses, and cases the
types must refuse — passes mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def run(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", *args], cwd=PACKAGE,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_stubs_match_the_runtime() -> None:
    run("mypy.stubtest", "chronos", "--allowlist", "stubtest-allowlist.txt")


def test_the_package_and_its_uses_type_check() -> None:
    run("mypy", "python/chronos", "typing/check.py")
