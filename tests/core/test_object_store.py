"""Working copies of an S3 location against a real moto server; the same calls on a local path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ploutos_core import object_store
from ploutos_core.errors import StorageError
from ploutos_core.object_store import upload_order, working_copy
from tests.support.servers import BIN, S3Server, forget_s3_clients, moto_s3

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not (BIN / "moto_server").exists(), reason="moto[server] (the cluster extra) is missing"
    ),
]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(autouse=True)
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PLOUTOS_SCRATCH", str(tmp_path / "scratch"))
    forget_s3_clients()
    yield
    forget_s3_clients()


def _scratch(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "scratch").glob("*"))


def test_urls_and_paths() -> None:
    assert object_store.is_url("s3://bucket/prefix")
    assert not object_store.is_url("/tmp/storage")
    assert not object_store.is_url("file:///tmp/storage")
    assert object_store.join("s3://bucket/prefix/", "models", "m1") == "s3://bucket/prefix/models/m1"
    assert object_store.join("/tmp/storage", "models") == "/tmp/storage/models"


def test_single_objects_round_trip(s3: S3Server) -> None:
    url = s3.url("single", "a.json")
    assert not object_store.exists(url)
    object_store.write_bytes(url, b'{"x": 1}')
    assert object_store.exists(url)
    assert json.loads(object_store.read_bytes(url)) == {"x": 1}
    assert object_store.file_names(s3.url("single")) == ["a.json"]
    assert object_store.file_names(s3.url("nothing-here")) == []
    with pytest.raises(StorageError, match="single/b.json"):
        object_store.read_bytes(s3.url("single", "b.json"))


def test_working_copy_uploads_what_changed_and_leaves_no_scratch(
    s3: S3Server, tmp_path: Path
) -> None:
    location = s3.url("copy")
    object_store.write_bytes(f"{location}/kept.txt", b"old")
    object_store.write_bytes(f"{location}/sub/read.txt", b"read")
    with working_copy(location, fetch=["kept.txt", "sub/*.txt", "absent.txt"]) as copy:
        assert copy.remote and copy.path.is_relative_to(tmp_path / "scratch")
        assert (copy.path / "kept.txt").read_bytes() == b"old"
        assert (copy.path / "sub" / "read.txt").read_bytes() == b"read"
        assert not (copy.path / "absent.txt").exists()
        (copy.path / "kept.txt").write_bytes(b"new")
        (copy.path / "model").mkdir()
        (copy.path / "model" / "manifest.json").write_text("{}")
        (copy.path / "registry.json.lock").write_text("")
        assert copy.location_of(copy.path / "model") == f"{location}/model"
    assert s3.keys("copy/") == [
        "copy/kept.txt", "copy/model/manifest.json", "copy/sub/read.txt",
    ]  # fmt: skip
    assert object_store.read_bytes(f"{location}/kept.txt") == b"new"
    assert _scratch(tmp_path) == []


def test_a_failed_block_uploads_nothing_unless_asked(s3: S3Server, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), working_copy(s3.url("failed")) as copy:
        (copy.path / "final_model.zip").write_bytes(b"partial")
        raise RuntimeError("training failed")
    assert s3.keys("failed/") == []
    with pytest.raises(KeyboardInterrupt), working_copy(
        s3.url("interrupted"), upload_on_error=True
    ) as copy:
        (copy.path / "interrupted_model.zip").write_bytes(b"saved on interruption")
        (copy.path / "tensorboard").mkdir()
        (copy.path / "tensorboard" / "events.out").write_bytes(b"curves")
        raise KeyboardInterrupt
    assert s3.keys("interrupted/") == [
        "interrupted/interrupted_model.zip", "interrupted/tensorboard/events.out",
    ]  # fmt: skip
    assert _scratch(tmp_path) == []


def test_upload_order_puts_statistics_then_models_then_the_manifest() -> None:
    files = [
        "m/manifest.json", "m/final_model.zip", "m/vecnormalize.pkl",
        "m/checkpoint_256_steps.zip", "m/tensorboard/events", "training_config.json",
    ]  # fmt: skip
    assert upload_order(files) == [
        ["m/tensorboard/events", "m/vecnormalize.pkl", "training_config.json"],
        ["m/checkpoint_256_steps.zip", "m/final_model.zip"],
        ["m/manifest.json"],
    ]


def test_fetched_model_brings_its_statistics_and_manifest(s3: S3Server) -> None:
    directory = s3.url("models", "m1")
    for name in ("final_model.zip", "vecnormalize.pkl", "manifest.json", "checkpoint_9_steps.zip"):
        object_store.write_bytes(f"{directory}/{name}", name.encode())
    with object_store.fetched_model(f"{directory}/final_model.zip") as model:
        assert sorted(p.name for p in model.parent.iterdir()) == [
            "final_model.zip", "manifest.json", "vecnormalize.pkl",
        ]  # fmt: skip
    assert not model.exists()


def test_a_local_location_is_used_in_place(tmp_path: Path) -> None:
    with working_copy(tmp_path / "models", fetch=["x"]) as copy:
        assert copy.path == tmp_path / "models" and not copy.remote
        assert copy.location_of(copy.path / "a") == str(tmp_path / "models" / "a")
    with object_store.fetched_model(tmp_path / "final_model.zip") as model:
        assert model == tmp_path / "final_model.zip"


def test_server_down_names_the_url_and_keeps_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_s3(tmp_path / "moto-down") as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        forget_s3_clients()
        url = server.url("models", "m2")
        with pytest.raises(StorageError) as raised, working_copy(url) as copy:
            (copy.path / "final_model.zip").write_bytes(b"a complete model")
            (copy.path / "manifest.json").write_text("{}")
            server.stop()
    message = str(raised.value)
    assert url in message and "did not answer" in message
    assert "Traceback" not in message
    (kept,) = _scratch(tmp_path)
    assert str(kept) in message
    assert (kept / "final_model.zip").read_bytes() == b"a complete model"
