"""Helpers shared by the server fixtures: free loopback ports, waiting for a port, binaries."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name: str, package: str) -> str:
    """The path of a server binary, or a test failure naming the Debian package to install."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {package}", pytrace=False)
    return path


def wait_for_port(port: int, process: subprocess.Popen, log: Path | None = None,
                  greeting: bytes | None = None, deadline_s: float = 20.0) -> None:
    """Poll until the port accepts connections (and sends `greeting`, when given); fail with
    the server's log when the process dies or the deadline passes."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if greeting is None or sock.recv(256).startswith(greeting):
                    return
        except OSError:
            pass
        time.sleep(0.05)  # polling interval, not a timing assumption
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    pytest.fail(f"server on 127.0.0.1:{port} did not come up (exit {process.poll()}):\n{tail}",
                pytrace=False)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
