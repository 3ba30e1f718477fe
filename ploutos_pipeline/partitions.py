"""The ``tickers`` dynamic partitions: one partition per ticker, registered by ``raw_ohlcv``."""

import dagster as dg

ticker_partitions = dg.DynamicPartitionsDefinition(name="tickers")
