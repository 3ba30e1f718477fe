"""The Parquet IO manager for the per-ticker ``features`` partitions.

Built on Dagster's ``UPathIOManager``: one file per partition, ``<base>/features/<TICKER>.parquet``,
where the base path is any fsspec URL (a local directory by default). A single-run backfill hands
it one dict of frames covering several partitions; each frame goes to its own file. Local files are
written to a temporary name and renamed; on an object store each file is one PUT of the whole
object, atomic too (:mod:`ploutos_core.object_store`).
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from dagster._core.storage.upath_io_manager import escape_dotdot_segments
from pydantic import Field
from upath import UPath

from ploutos_core import object_store
from ploutos_core.storage import parquet_bytes, write_bytes_atomic
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.resources import PloutosStorage


class ParquetPartitionIOManager(dg.UPathIOManager):
    """Reads and writes one Parquet file per partition."""

    extension = ".parquet"

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        return base_path / escape_dotdot_segments(partition.lstrip("/"))

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        data = parquet_bytes(obj)
        with reported_as_failure():
            if path.protocol in object_store.LOCAL_PROTOCOLS:
                write_bytes_atomic(path.path, data)
            else:
                object_store.write_bytes(str(path), data)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        with reported_as_failure():
            data = (
                path.read_bytes()
                if path.protocol in object_store.LOCAL_PROTOCOLS
                else object_store.read_bytes(str(path))
            )
        return pq.read_table(io.BytesIO(data)).to_pandas()

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write a dict of ``{partition_key: frame}`` (a single-run backfill), one file each.

        Files are encoded on a thread per core: pyarrow releases the GIL while it compresses.
        """
        if not (context.has_asset_partitions and isinstance(obj, dict)):
            super().handle_output(context, obj)
            return
        paths = self._get_paths_for_partitions(context)
        missing = sorted(set(paths) - set(obj))
        if missing:
            raise dg.Failure(f"no output was computed for partitions {missing[:10]}")
        for path in {path.parent for path in paths.values()}:
            self.make_directory(path)
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(lambda item: self.dump_to_path(context, obj[item[0]], item[1]),
                          paths.items()))


class FeaturesIOManager(dg.ConfigurableIOManagerFactory):
    """``ParquetPartitionIOManager`` rooted at the storage resource (or at ``base_path``)."""

    storage: PloutosStorage
    base_path: str | None = Field(
        None, description="fsspec URL of the root; defaults to the storage resource's root."
    )

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetPartitionIOManager:
        return ParquetPartitionIOManager(base_path=UPath(self.base_path or self.storage.root))
