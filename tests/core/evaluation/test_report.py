"""ploutos_core.evaluation.report: report.html and the plots beside verdict.json."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import replace

import pytest
from matplotlib.figure import Figure

from ploutos_core.backtest.plots import PNG_SIGNATURE, figure_png
from ploutos_core.evaluation.plots import PLOT_NAMES
from ploutos_core.evaluation.report import (
    PLOT_FILES,
    REPORT_FILE,
    render_report,
    write_verdict_report,
)
from tests.support.evaluation import BOOTSTRAP, synthetic_results, synthetic_verdict


@pytest.fixture(scope="module")
def results():
    return synthetic_results(0.001, 8, n_folds=2, n_seeds=2, bars=40)


@pytest.fixture()
def verdict(results, tmp_path):
    return synthetic_verdict(results, tmp_path / "trials.json")


def tiny_png() -> bytes:
    return figure_png(Figure(figsize=(1, 1)), dpi=10)


def ci(e) -> str:
    return f"{e['iqm']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]"


def test_report_holds_the_verdict_table_statistics_and_gate_reasons(verdict) -> None:
    page = render_report(verdict, {name: tiny_png() for name in PLOT_NAMES})
    for name, m in verdict.methods.items():
        row = re.search(rf"<tr><td>{name}</td>(.*?)</tr>", page).group(1)
        cells = re.findall(r"<td>(.*?)</td>", row)
        assert cells[:2] == [ci(m["sharpe"]), ci(m["excess_sharpe"])]
        assert cells[2] == f"{100 * m['total_return']:.2f}%"
    p = verdict.prob_improvement["buy_and_hold"]
    assert f"<td>buy_and_hold</td><td>{p['point']:.2f}</td>" in page
    assert f"<td>{verdict.psr:.3f}</td>" in page and f"<td>{verdict.dsr:.3f}</td>" in page
    assert f"N = {verdict.n_trials} trials" in page and "n/a (fewer than 2 trials)" in page
    for multiplier, entry in verdict.cost_sensitivity.items():
        verdict_cell = "yes" if entry["beats_buy_and_hold"] else "no"
        expected = f"<td>{multiplier}x</td><td>{ci(entry)}</td>"
        assert f"{expected}<td>{ci(entry['buy_and_hold'])}</td><td>{verdict_cell}</td>" in page
    assert verdict.reasons and not verdict.promoted and "Not promoted" in page
    for reason in verdict.reasons:
        assert f"<li>{html.escape(reason)}</li>" in page  # "DSR 0.81 < 0.95" escaped
    assert page.count("data:image/png;base64,") == len(PLOT_NAMES)

    promoted = render_report(replace(verdict, promoted=True, reasons=[]), {})
    assert "<b>Promoted</b>" in promoted and "<li>" not in promoted


def test_report_of_results_without_buy_and_hold_costs_says_n_a(verdict) -> None:
    entry = {**verdict.cost_sensitivity["0"], "buy_and_hold": None, "beats_buy_and_hold": None}
    page = render_report(replace(verdict, cost_sensitivity={"0": entry}), {})
    assert f"<td>0x</td><td>{ci(entry)}</td><td>n/a</td><td>n/a</td>" in page


def test_report_and_plots_are_written_beside_the_verdict(verdict, results, tmp_path) -> None:
    written = write_verdict_report(tmp_path / "eval", verdict, results, BOOTSTRAP)
    assert written.paths["report"] == tmp_path / "eval" / REPORT_FILE
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == sorted(
        [REPORT_FILE, *PLOT_FILES.values()]
    )  # no temporary file left behind
    page = written.paths["report"].read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(e) for e in embedded] == [
        written.paths[name].read_bytes() for name in PLOT_NAMES
    ]
    assert set(written.thumbnails) == set(PLOT_NAMES)
    for name in PLOT_NAMES:
        assert written.thumbnails[name].startswith(PNG_SIGNATURE)
        assert len(written.thumbnails[name]) < len(written.paths[name].read_bytes())
