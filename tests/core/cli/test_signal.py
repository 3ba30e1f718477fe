"""``ploutos signal``: the promoted model's orders, and clear refusals of the others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.cli import main
from ploutos_core.evaluation.promotion import promote
from ploutos_core.evaluation.trials import trial_key
from ploutos_core.market.dates import iso_day
from tests.core.conftest import TinyModel


@pytest.fixture
def model_dir(tiny_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelDir:
    """A copy of the tiny model; the CSV is read as the tiny model's market (random features)."""
    monkeypatch.setattr("ploutos_core.cli.common.market_from_csv", lambda path: tiny_model.market)
    return ModelDir(shutil.copytree(tiny_model.result.output_dir, tmp_path / "model"))


def _promote(model_dir: ModelDir, last_bar: str) -> None:
    verdict = {
        "promoted": True,
        "trial_key": trial_key(Manifest.read(model_dir.manifest).config),
        "agent": {"sharpe": {"iqm": 1.0}},
        "dsr": 0.99,
        "pbo": None,
    }
    promote(model_dir, verdict, model_dir.path / "verdict.json", last_bar=last_bar)


def test_an_unknown_or_unpromoted_model_is_refused_with_a_message(
    model_dir: ModelDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signal = ["signal", "--data", "ohlcv.csv", "--output", str(tmp_path / "out")]
    assert main([*signal, "--model", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "nowhere is not a model directory" in err and "Traceback" not in err
    assert main([*signal, "--model", str(model_dir.path)]) == 1
    err = capsys.readouterr().err
    assert "was never promoted (no promotion.json)" in err and "production_model" in err
    assert not (tmp_path / "out").exists()
    assert main([*signal, "--model", str(model_dir.path), "--allow-unpromoted"]) == 0
    fresh = pd.read_csv(tmp_path / "out" / "signals.csv")
    assert (fresh["shares"] == 0.0).all()  # research: an all-cash portfolio on the last bar
    assert len(pd.read_parquet(tmp_path / "out" / "paper_ledger.parquet")) == 1


def test_a_promoted_model_writes_the_next_sessions_orders(
    model_dir: ModelDir, tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dates = tiny_model.market.dates
    _promote(model_dir, iso_day(dates[-11]))
    out = tmp_path / "out"
    signal = ["signal", "--model", str(model_dir.path), "--data", "x.csv", "--output", str(out)]
    assert main(signal) == 0
    printed = capsys.readouterr().out
    signals = pd.read_csv(out / "signals.csv")
    assert signals.equals(pd.read_parquet(out / "signals.parquet").astype(signals.dtypes))
    assert sorted(signals["ticker"]) == sorted(tiny_model.market.tickers)
    assert set(signals["bar_date"]) == {iso_day(dates[-1])}
    ledger = pd.read_parquet(out / "paper_ledger.parquet")
    assert len(ledger) == 11 and ledger.index[0] == dates[-11]
    assert f"decided on {iso_day(dates[-1])}" in printed and "| ticker | order |" in printed

    assert main([*signal, "--allow-unpromoted"]) == 0  # promoted: the flag changes nothing
    assert pd.read_csv(out / "signals.csv").equals(signals)
