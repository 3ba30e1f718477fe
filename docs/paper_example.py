"""Generate the README's "From model to orders" example from the bundled sample data.

Trains the demo's tiny model (``config/demo_training.yaml``: 8,192 timesteps, seconds of PPO, not
a model anyone should trade), starts a paper portfolio on a bar of its test period 60 sessions
before the data's end (the model is not promoted: the start is chosen for the example, as
``ploutos signal --allow-unpromoted`` would), books the sessions, decides the next session's
orders, writes ``docs/paper_ledger.png`` and prints the signals table and the paper metrics.

    PYTHONPATH=. .venv/bin/python docs/paper_example.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ploutos_core.artifacts import load_trained_model
from ploutos_core.backtest.plots import equity_png
from ploutos_core.cli.common import market_from_csv
from ploutos_core.config import (
    PaperConfig,
    TrainingConfig,
    default_config_path,
    load_config,
    read_yaml,
)
from ploutos_core.market.dates import iso_day
from ploutos_core.paths import DEFAULT_DATA
from ploutos_core.signals import decide_orders, run_paper, signals_markdown
from ploutos_core.training import train

PAPER_SESSIONS = 60
PLOT = Path(__file__).parent / "paper_ledger.png"


def main() -> None:
    market = market_from_csv(DEFAULT_DATA)
    config = load_config(
        TrainingConfig,
        default_config_path("training"),
        read_yaml(default_config_path("demo_training")),
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, market, Path(tmp) / "model", progress_every=None)
        trained = load_trained_model(result.model_path)
        start = iso_day(market.dates[-1 - PAPER_SESSIONS])
        assert start > trained.manifest.train_period.end, "the paper start must be out of sample"
        ledger = run_paper(trained, market, start, PaperConfig())
        orders = decide_orders(trained, ledger)
    last = ledger.sessions[-1]
    portfolio, benchmark = ledger.through(last)
    curves = {"Paper portfolio": portfolio.equity, "Buy & hold (equal weight)": benchmark.equity}
    title = f"Paper ledger, demo model ({config.total_timesteps:,} timesteps): {start} to {last}"
    PLOT.write_bytes(equity_png(portfolio.dates, curves, title))
    print(signals_markdown(orders, limit=8))
    print(f"\ndecided on {orders['bar_date'][0]} for {orders['fill_session'][0]}")
    for name, value in ledger.metrics(last).items():
        print(f"{name}: {value:.4f}")
    print(f"buy_and_hold total_return: {benchmark.equity[-1] / benchmark.equity[0] - 1:.4f}")


if __name__ == "__main__":
    main()
