"""``ploutos backtest``: a model trained by ``ploutos train``, backtested from the same CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from ploutos_core.backtest.plots import PNG_SIGNATURE
from ploutos_core.cli import build_parser, main
from ploutos_core.cli.backtest import DEFAULT_MODEL
from ploutos_core.data.sample import make_market
from tests.support.configs import tiny_training_yaml


def test_ploutos_backtest_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defaults = build_parser().parse_args(["backtest"])
    assert (defaults.model, defaults.output, defaults.top_k) == (DEFAULT_MODEL, Path("."), None)
    csv = tmp_path / "ohlcv.csv"
    make_market(3, 330, seed=9, late_listing=False, delisting=False).to_csv(csv, index=False)
    config = tmp_path / "training.yaml"
    config.write_text(tiny_training_yaml(env={"episode_length": 30}))
    model_dir = tmp_path / "models" / "tiny"
    train = ["train", "--config", str(config), "--data", str(csv), "--output", str(model_dir)]
    assert main([*train, "--no-progress-bar"]) == 0
    capsys.readouterr()
    out_dir = tmp_path / "bt"
    backtest = ["backtest", "--model", str(model_dir / "final_model.zip"), "--data", str(csv)]
    assert main([*backtest, "--output", str(out_dir), "--top-k", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| Metric | Strategy | Buy & hold | Cash |" in printed
    assert f"equity plot: {out_dir / 'backtest_equity.png'}" in printed
    assert (out_dir / "backtest_equity.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(list(out_dir.glob("backtest_trades_*.png"))) <= 1
    assert main(["backtest", "--model", str(tmp_path / "nothing.zip"), "--data", str(csv)]) == 1
    assert "no model at" in capsys.readouterr().err
