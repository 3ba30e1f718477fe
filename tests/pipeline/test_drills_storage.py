"""Failure drills on storage: SIGKILL mid-write, a corrupted CSV, unwritable storage, a full disk.

Real processes and real files: the features backfill and ``ploutos train`` are killed with SIGKILL
(process group and all), the CSV sensor's run meets each kind of bad input, and the storage root
is a path below a regular file or a tiny tmpfs.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from ploutos_core.artifacts.model_dir import FINAL_MODEL, FINAL_STATS, stats_path_for
from ploutos_core.data import content_hash
from ploutos_core.features import FEATURE_NAMES
from ploutos_core.storage import TMP_PREFIX
from ploutos_pipeline.definitions import build_definitions
from ploutos_pipeline.resources import PloutosStorage
from ploutos_pipeline.sensors import csv_change_sensor
from tests.pipeline.conftest import Pipeline, write_market
from tests.support.configs import tiny_training_yaml
from tests.support.servers import BIN, REPO, make_home

POLL_S = 0.02


def _kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float) -> bool:
    """SIGKILL ``process``'s whole group as soon as ``ready()``; False if it had exited first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"{process.args} did not reach the kill point in {timeout} s")
        time.sleep(POLL_S)
    return False


def _leftovers_are_temporary(directory: Path, artifact_suffixes: tuple[str, ...]) -> None:
    """Every name that is not a finished artifact is a temporary one that no reader matches."""
    for path in directory.iterdir():
        if path.name.startswith(TMP_PREFIX):
            assert not path.name.endswith(artifact_suffixes), path


def _assert_features_readable(features_dir: Path) -> list[str]:
    tickers = []
    for path in sorted(features_dir.glob("*.parquet")):
        assert not path.name.startswith(TMP_PREFIX), path
        frame = pq.read_table(path).to_pandas()
        assert list(frame.columns) == list(FEATURE_NAMES) and len(frame) > 0, path
        tickers.append(path.stem)
    _leftovers_are_temporary(features_dir, (".parquet",))
    return tickers


def _failure_description(result: dg.ExecuteInProcessResult) -> str:
    """The message of the failed ``raw_ohlcv`` step, as the run log shows it."""
    assert not result.success
    failure = result.failure_data_for_node("raw_ohlcv")
    assert failure is not None
    assert failure.user_failure_data is not None, failure.error.to_string()
    return failure.user_failure_data.description


# -- 1. SIGKILL while writing features --------------------------------------------------------


@pytest.mark.slow
def test_sigkill_while_writing_features_leaves_only_whole_files(tmp_path: Path) -> None:
    csv = write_market(tmp_path / "ohlcv.csv", n_tickers=16, n_days=420)
    storage = tmp_path / "storage"
    home = make_home(tmp_path / "dagster_home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        defs = build_definitions(str(csv), str(storage))
        defs.resolve_job_def("refresh_raw_ohlcv").execute_in_process(instance=instance)
        tickers = instance.get_dynamic_partitions("tickers")
    assert len(tickers) == 16
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PLOUTOS_DATA": str(csv),
        "PLOUTOS_STORAGE": str(storage),
    }
    command = [
        str(BIN / "dagster"), "asset", "materialize", "-m", "ploutos_pipeline.definitions",
        "--select", "features", "--partition-range", f"{tickers[0]}...{tickers[-1]}",
    ]
    features_dir = storage / "features"
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _kill_when(process, lambda: any(features_dir.glob("*.parquet")), timeout=300)

    _assert_features_readable(features_dir)
    # Whatever the killed writers left behind, aged past the staleness limit, the next run's
    # storage resource removes.
    hours_ago = time.time() - 2 * 3600
    for path in features_dir.glob(f"{TMP_PREFIX}*"):
        os.utime(path, (hours_ago, hours_ago))

    rerun = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _assert_features_readable(features_dir) == sorted(tickers)
    assert not list(features_dir.glob(f"{TMP_PREFIX}*"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("features")) == set(tickers)


def test_each_run_removes_what_killed_runs_left_behind(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    stale = storage / "features" / f"{TMP_PREFIX}AAA.parquet.abc"
    fresh = storage / "features" / f"{TMP_PREFIX}BBB.parquet.def"
    not_ours = storage / "dagster_home" / f"{TMP_PREFIX}instance-file"
    stale.parent.mkdir(parents=True)
    not_ours.parent.mkdir()
    for path, content in ((stale, b"half a file"), (fresh, b"a write"), (not_ours, b"x")):
        path.write_bytes(content)
    hours_ago = time.time() - 2 * 3600
    for path in (stale, not_ours):
        os.utime(path, (hours_ago, hours_ago))

    PloutosStorage(root=str(storage)).setup_for_execution(dg.build_init_resource_context())

    assert not stale.exists() and fresh.exists()
    assert not_ours.exists()  # only the artifact directories are swept


# -- 2. SIGKILL while training -----------------------------------------------------------------


TRAINING_YAML = tiny_training_yaml(total_timesteps=200_000)


def _steps(checkpoint: Path) -> int:
    return int(checkpoint.stem.split("_")[1])


@pytest.mark.slow
def test_sigkill_while_training_leaves_loadable_checkpoints(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    csv = write_market(tmp_path / "ohlcv.csv", n_tickers=3)
    config = tmp_path / "training.yaml"
    config.write_text(TRAINING_YAML)
    killed_dir = tmp_path / "model"
    command = [
        str(BIN / "ploutos"), "train", "--config", str(config), "--data", str(csv),
        "--device", "cpu", "--no-progress-bar",
    ]
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(
            [*command, "--output", str(killed_dir)], cwd=tmp_path, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    killed = _kill_when(process, lambda: any(killed_dir.glob("checkpoint_*.zip")), timeout=300)
    assert killed, "training finished before the kill; raise total_timesteps"

    assert not (killed_dir / FINAL_MODEL).exists() and not (killed_dir / FINAL_STATS).exists()
    checkpoints = sorted(killed_dir.glob("checkpoint_*.zip"), key=_steps)
    for model_path in checkpoints:
        assert stats_path_for(model_path).exists(), f"{model_path} without its statistics"
        PPO.load(model_path, device="cpu")
    for stats_path in killed_dir.glob("*.pkl"):
        with stats_path.open("rb") as file:
            pickle.load(file)
    json.loads((killed_dir / "manifest.json").read_text())
    _leftovers_are_temporary(killed_dir, (".zip", ".pkl", ".json"))

    resumed_dir = tmp_path / "resumed"
    newest = checkpoints[-1]
    resumed = subprocess.run(
        [
            *command, "--output", str(resumed_dir), "--resume", str(newest),
            "--timesteps", str(_steps(newest) + 256),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert PPO.load(resumed_dir / FINAL_MODEL, device="cpu").num_timesteps > _steps(newest)
    with (resumed_dir / FINAL_STATS).open("rb") as file:
        pickle.load(file)


# -- 3. A corrupted CSV arriving ---------------------------------------------------------------


def _edit(text: str, line: int, column: str, value: str) -> str:
    """``text`` with ``column`` of (1-based) ``line`` set to ``value``."""
    lines = text.splitlines()
    position = lines[0].split(",").index(column)
    fields = lines[line - 1].split(",")
    fields[position] = value
    lines[line - 1] = ",".join(fields)
    return "\n".join(lines) + "\n"


def _swap_high_low(text: str, line: int) -> str:
    fields = text.splitlines()[line - 1].split(",")
    return _edit(_edit(text, line, "high", fields[4]), line, "low", fields[3])


def _without_column(text: str, column: str) -> str:
    lines = [line.split(",") for line in text.splitlines()]
    position = lines[0].index(column)
    kept = [[f for i, f in enumerate(fields) if i != position] for fields in lines]
    return "".join(",".join(fields) + "\n" for fields in kept)


def _rename_first_ticker(text: str) -> str:
    ticker = text.splitlines()[1].split(",")[1]
    return text.replace(f",{ticker},", ",../x,")


def _header(text: str) -> str:
    return text.splitlines()[0] + "\n"


def _duplicate_with_other_close(text: str) -> str:
    fields = text.splitlines()[2].split(",")
    fields[5] = fields[3]  # close = high: a valid row, but not the same as line 3
    return text + ",".join(fields) + "\n"


BAD_CSV: dict[str, tuple[Callable[[str], str | bytes], str]] = {
    "empty": (lambda text: b"", "empty"),
    "header-only": (_header, "header but no data"),
    "binary": (lambda text: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01", "not a readable CSV"),
    "missing-column": (lambda text: _without_column(text, "low"), "missing required column"),
    "non-numeric-price": (lambda text: _edit(text, 5, "close", "$20.5"), "non-numeric price"),
    "non-finite-price": (lambda text: _edit(text, 5, "high", "inf"), "non-finite price"),
    "non-positive-price": (lambda text: _edit(text, 5, "low", "0"), "zero or negative price"),
    "high-below-low": (lambda text: _swap_high_low(text, 5), "high below low"),
    "close-outside-range": (lambda text: _edit(text, 5, "close", "1e6"), "close outside"),
    "conflicting-duplicate": (_duplicate_with_other_close, "conflicting duplicate"),
    "unparseable-date": (lambda text: _edit(text, 5, "date", "2020-13-45"), "unparseable"),
    "unsafe-ticker": (_rename_first_ticker, "unsafe ticker"),
}


def _materialization_ids(instance: dg.DagsterInstance, key: str) -> list[int]:
    records = instance.fetch_materializations(dg.AssetKey(key), limit=1000).records
    return sorted(record.storage_id for record in records)


def _snapshot(pipeline: Pipeline) -> dict[str, object]:
    files = {
        str(path.relative_to(pipeline.storage)): path.read_bytes()
        for path in sorted(pipeline.storage.rglob("*"))
        if path.is_file()
    }
    return {
        "files": files,
        "raw_ohlcv": _materialization_ids(pipeline.instance, "raw_ohlcv"),
        "features": _materialization_ids(pipeline.instance, "features"),
        "partitions": pipeline.tickers(),
    }


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """raw_ohlcv and all features materialized once; each case restores the good CSV after."""
    tmp_path = tmp_path_factory.mktemp("corrupted_csv")
    csv = write_market(tmp_path / "ohlcv.csv")
    storage = tmp_path / "storage"
    with dg.instance_for_test() as instance:
        pipeline = Pipeline(csv, storage, instance, build_definitions(str(csv), str(storage)))
        pipeline.run("refresh_raw_ohlcv")
        pipeline.run_features(pipeline.tickers())
        yield pipeline


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_corrupted_csv_fails_the_sensor_run_and_keeps_every_materialization(
    materialized: Pipeline, case: str
) -> None:
    pipeline = materialized
    good = pipeline.csv.read_bytes()
    previous_digest = content_hash(pipeline.csv)
    before = _snapshot(pipeline)
    assert before["features"] and len(before["raw_ohlcv"]) == 1
    corrupt, words = BAD_CSV[case]
    bad = corrupt(good.decode())
    try:
        pipeline.csv.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
        with dg.build_sensor_context(
            instance=pipeline.instance,
            cursor=previous_digest,
            resources=pipeline.defs.resources,
        ) as context:
            tick = csv_change_sensor(context)
        assert isinstance(tick, dg.SensorResult) and len(tick.run_requests) == 1
        result = pipeline.run(
            "refresh_raw_ohlcv", raise_on_error=False, tags=tick.run_requests[0].tags
        )
    finally:
        pipeline.csv.write_bytes(good)

    description = _failure_description(result)
    assert description.startswith("DataError:"), description
    assert str(pipeline.csv) in description and words in description, description
    assert _snapshot(pipeline) == before


# -- 4. Unwritable storage and a full disk -----------------------------------------------------


def _run_raw_ohlcv(csv: Path, storage: Path) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        defs = build_definitions(str(csv), str(storage))
        return defs.resolve_job_def("refresh_raw_ohlcv").execute_in_process(
            instance=instance, raise_on_error=False
        )


def test_storage_below_a_regular_file_is_a_storage_error_naming_the_path(tmp_path: Path) -> None:
    csv = write_market(tmp_path / "ohlcv.csv")
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the storage directory should be\n")
    storage = blocker / "storage"

    description = _failure_description(_run_raw_ohlcv(csv, storage))

    assert description.startswith("StorageError:"), description
    assert str(storage / "raw_ohlcv" / "raw_ohlcv.parquet") in description, description
    assert f"{blocker} is a file, not a directory" in description, description


@contextlib.contextmanager
def _tmpfs(mount_point: Path, options: str) -> Iterator[Path]:
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_full_disk_is_a_storage_error_and_leaves_nothing_partial(tmp_path: Path) -> None:
    csv = write_market(tmp_path / "ohlcv.csv", n_tickers=36)  # ~420 KB of Parquet
    with _tmpfs(tmp_path / "tiny", "size=256k") as storage:
        description = _failure_description(_run_raw_ohlcv(csv, storage))
        target = storage / "raw_ohlcv" / "raw_ohlcv.parquet"
        assert description.startswith("StorageError:"), description
        assert str(target) in description and "disk is full" in description, description
        assert list(target.parent.iterdir()) == []  # no partial file, no temporary left over


def test_read_only_storage_is_a_storage_error_naming_the_path(tmp_path: Path) -> None:
    csv = write_market(tmp_path / "ohlcv.csv")
    with _tmpfs(tmp_path / "read_only", "ro,size=64k") as storage:
        description = _failure_description(_run_raw_ohlcv(csv, storage))
        assert description.startswith("StorageError:"), description
        assert str(storage / "raw_ohlcv" / "raw_ohlcv.parquet") in description, description
        assert "not writable" in description, description
        assert list(storage.iterdir()) == []
