"""Start the real `make cluster` services (deploy/cluster.sh) for a test, and always stop them.

The cluster runs on free ports of 127.0.0.1 in a fresh directory; `cluster.sh down` runs in every
case (also when `up` failed half-way), then the directory is removed. A test is skipped, with the
reason, only when a server cannot be installed here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psutil
import pytest

from tests.support.servers import BIN, REPO, free_port

SCRIPT = REPO / "deploy" / "cluster.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def skip_unless_installable() -> None:
    """Skip when PostgreSQL 15, Redis, moto or dagster-celery are missing and cannot be had."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 is not installed ({PG_BIN} missing)")
    if shutil.which("redis-server") is None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                "apt-get update -qq && apt-get install -y -qq redis-server",
                shell=True, capture_output=True, timeout=300, check=True,
            )
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed and apt-get could not install it")
    if not (BIN / "moto_server").exists():
        pytest.skip("moto_server is not installed (pip install -e '.[cluster]')")
    for module in ("dagster_celery", "dagster_postgres", "psycopg2"):
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"{module} is not installed (pip install -e '.[cluster]')")


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``values`` (an instance resolves its ``{env: ...}`` config)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]  # what the cluster's processes see (cluster env file + code location)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['PLOUTOS_WEB_PORT']}"

    def script(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(SCRIPT), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result

    def pid(self, service: str) -> int:
        return int((self.root / "run" / f"{service}.pid").read_text())

    def worker_pids(self, queue: str) -> set[int]:
        """The processes of a worker: dagster-celery and the celery it runs (steps run there)."""
        parent = psutil.Process(self.pid(f"worker-{queue}"))
        return {parent.pid, *(child.pid for child in parent.children(recursive=True))}

    def stop_postgres(self) -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.root / "pg" / "data"), "-m", "fast",
                   "-w", "stop"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    @contextlib.contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        with (
            environment({k: v for k, v in self.env.items() if k.startswith(("PLOUTOS_PG_",))}),
            dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"]) as instance,
        ):
            yield instance


@contextlib.contextmanager
def running_cluster(code_env: dict[str, str]) -> Iterator[Cluster]:
    """`deploy/cluster.sh up` on free ports; ``code_env`` (PLOUTOS_DATA, ...) for every process."""
    skip_unless_installable()
    # PostgreSQL runs as the postgres user: its directory must be reachable (pytest's are 0700).
    root = Path(tempfile.mkdtemp(prefix="ploutos-cluster-", dir="/tmp"))
    root.chmod(0o755)
    env = {
        **os.environ,
        **code_env,
        "PLOUTOS_CLUSTER_DIR": str(root),
        "PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
        "PLOUTOS_PG_PORT": str(free_port()),
        "PLOUTOS_REDIS_PORT": str(free_port()),
        "PLOUTOS_S3_PORT": str(free_port()),
        "PLOUTOS_WEB_PORT": str(free_port()),
    }
    cluster = Cluster(root, env)
    try:
        cluster.script("up", timeout=420)
        cluster.env = {**env, **read_env(root / "env")}
        yield cluster
    finally:
        try:
            cluster.script("down", timeout=180)
        finally:
            shutil.rmtree(root, ignore_errors=True)
