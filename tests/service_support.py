"""What the tests that run the real service as processes share: ports and demo data."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_healthy(url: str) -> bool:
    """Whether a service's health URL answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback URL)
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop exactly this child, by its pid: terminate, then kill if it does not exit."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def run_colloque(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real `colloque` command line, as an operator runs it, with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def create_demo_data(env: dict[str, str], patients: int = 0) -> None:
    """`colloque demo` against the database in `env`; the test fails with its output if it does."""
    demo = run_colloque(env, "demo", "--patients", str(patients))
    if demo.returncode != 0:
        pytest.fail(f"`colloque demo` failed:\n{demo.stdout}\n{demo.stderr}", pytrace=False)
