"""Ploutos core: data, features, trading environment, training and backtest, without Dagster."""

__version__ = "0.1.0"
