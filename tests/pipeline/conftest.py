"""A tiny market on disk, a temporary Dagster instance and the code location pointed at both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from ploutos_core.data.sample import make_market
from ploutos_pipeline.definitions import build_definitions
from ploutos_pipeline.partitions import ticker_partitions


@dataclass
class Pipeline:
    csv: Path
    storage: Path
    instance: dg.DagsterInstance
    defs: dg.Definitions

    def run(self, job: str, **kwargs) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, **kwargs)

    def observe(self) -> None:
        self.run("observe_raw_ohlcv_csv")

    def tickers(self) -> list[str]:
        return self.instance.get_dynamic_partitions(ticker_partitions.name)

    def run_features(self, tickers: list[str]) -> dg.ExecuteInProcessResult:
        return self.run(
            "refresh_features",
            tags={
                "dagster/asset_partition_range_start": tickers[0],
                "dagster/asset_partition_range_end": tickers[-1],
            },
        )


def write_market(path: Path, n_tickers: int = 3, n_days: int = 420, seed: int = 7) -> Path:
    frame = make_market(n_tickers, n_days, seed=seed, late_listing=False, delisting=False)
    frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    csv = write_market(tmp_path / "ohlcv.csv")
    storage = tmp_path / "storage"
    with dg.instance_for_test() as instance:
        yield Pipeline(csv, storage, instance, build_definitions(str(csv), str(storage)))
