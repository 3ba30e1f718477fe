"""Start dagster-webserver and dagster-daemon on 127.0.0.1 for a test, and always stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from ploutos_core.paths import PROJECT_ROOT

BIN = Path(sys.executable).parent
REPO = PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_home(home: Path) -> Path:
    """A DAGSTER_HOME with the project's committed instance config, its SQLite storage created.

    Creating the storage here keeps the webserver and the daemon from racing to create the same
    tables when they start together.
    """
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "storage" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return home


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def dagster_servers(env: dict[str, str], logs: Path, daemon: bool = True) -> Iterator[str]:
    """Run the webserver (and the daemon) with ``env``; yield the UI's base URL."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    module = ["-m", "ploutos_pipeline.definitions"]
    commands = {
        "webserver": [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *module],
    }
    if daemon:
        commands["daemon"] = [str(BIN / "dagster-daemon"), "run", *module]
    processes: list[subprocess.Popen] = []
    url = f"http://127.0.0.1:{port}"
    try:
        for name, command in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                processes.append(
                    subprocess.Popen(
                        command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            if name == "webserver":
                _wait_http(f"{url}/server_info", processes[0], logs / "webserver.log")
        yield url
    finally:
        for process in processes:
            _stop(process)
