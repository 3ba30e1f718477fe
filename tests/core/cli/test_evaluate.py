"""``ploutos evaluate``: a tiny configuration judged end to end from a CSV (real features)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ploutos_core.cli import build_parser, main
from ploutos_core.cli.evaluate import _seeds
from ploutos_core.data.sample import make_market
from tests.support.configs import tiny_training_yaml

EVALUATION = {
    "folds": {"n_folds": 3, "min_train_days": 150, "test_days": 40, "purge_days": 5},
    "seeds": [4, 5, 6],
    "baselines": ["buy_and_hold", "cash", "random", "momentum", "mean_reversion"],
    "cost_multipliers": [1.0, 2.0],
    "bootstrap": {"reps": 200},
}


def test_seed_selection() -> None:
    assert _seeds([4, 5, 6], 2) == [4, 5]
    assert _seeds([4, 5], 4) == [4, 5, 6, 7]


def test_ploutos_evaluate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defaults = build_parser().parse_args(["evaluate"])
    assert (defaults.trials, defaults.seeds, defaults.folds) == (None, None, None)
    csv = tmp_path / "ohlcv.csv"
    make_market(3, 480, seed=9, late_listing=False, delisting=False).to_csv(csv, index=False)
    training = tmp_path / "training.yaml"
    training.write_text(
        tiny_training_yaml(n_envs=2, n_steps=64, batch_size=64, env={"episode_length": 30})
    )
    evaluation = tmp_path / "evaluation.yaml"
    evaluation.write_text(yaml.safe_dump(EVALUATION))
    out = tmp_path / "runs" / "tiny"
    argv = ["evaluate", "--config", str(training), "--evaluation", str(evaluation)]
    argv += ["--data", str(csv), "--output", str(out), "--timesteps", "128"]
    assert main([*argv, "--seeds", "1", "--folds", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"verdict:     {out / 'verdict.json'}" in printed
    assert f"report:      {out / 'report.html'}" in printed
    for plot in ("intervals", "fold_equity", "profile"):
        assert (out / f"verdict_{plot}.png").read_bytes().startswith(b"\x89PNG")
    assert "Not promoted" in (out / "report.html").read_text()
    assert "promoted:    no" in printed
    verdict = json.loads((out / "verdict.json").read_text())
    assert (verdict["n_folds"], verdict["seeds"], verdict["n_trials"]) == (2, [4], 1)
    assert verdict["promoted"] is False
    assert sorted(p.name for p in (out / "folds").glob("*.json")) == [
        "fold0_seed4.json",
        "fold1_seed4.json",
    ]
    assert (out / "folds" / "fold0_seed4" / "model" / "final_model.zip").exists()
    trials = json.loads((tmp_path / "runs" / "trials.json").read_text())
    assert len(trials["datasets"]) == 1
    assert main([*argv, "--seeds", "0"]) == 1
    assert "--seeds must be >= 1" in capsys.readouterr().err
