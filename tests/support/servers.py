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
from dataclasses import dataclass
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


@dataclass
class S3Server:
    """A moto S3 server on 127.0.0.1 (an S3 API for tests only) with one bucket."""

    endpoint: str
    bucket: str
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        """What a client needs to reach it: boto reads these."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "ploutos-test",
            "AWS_SECRET_ACCESS_KEY": "ploutos-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials(self.env))

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix``, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stop(self) -> None:
        _stop(self.process)


def _boto_credentials(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def forget_s3_clients() -> None:
    """Drop fsspec's cached S3 filesystems: a new one reads the endpoint from the environment."""
    with contextlib.suppress(ImportError):
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()


@contextlib.contextmanager
def moto_s3(logs: Path, bucket: str = "ploutos", timeout: float = 30) -> Iterator[S3Server]:
    """``moto_server -H 127.0.0.1 -p PORT`` with ``bucket`` created; always stopped."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "moto.log", "w") as log:
        process = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = S3Server(f"http://127.0.0.1:{port}", bucket, process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start:\n{(logs / 'moto.log').read_text()}")
            time.sleep(0.1)
        server.client().create_bucket(Bucket=bucket)
        yield server
    finally:
        server.stop()
