"""Dynamic partitions: ``tickers`` (registered by ``raw_ohlcv``) and paper ``sessions``."""

import dagster as dg

ticker_partitions = dg.DynamicPartitionsDefinition(name="tickers")

session_partitions = dg.DynamicPartitionsDefinition(name="sessions")
"""The ``sessions`` dynamic partitions: one per trading day after the production model's
promotion, registered by ``paper_sessions_sensor`` as bars arrive."""
