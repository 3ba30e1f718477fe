"""The web UI in a real browser: a person materializes the whole chain by clicking.

Starts dagster-webserver and dagster-daemon on 127.0.0.1 with a temporary DAGSTER_HOME (the
project's committed dagster.yaml) and a tiny market, then drives headless Chromium with
Playwright. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.pipeline.conftest import write_market
from tests.support.configs import TINY_TRAINING
from tests.support.servers import REPO, dagster_servers, make_home
from tests.support.waiting import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "ui"
ASSETS = ("raw_ohlcv_csv", "raw_ohlcv", "features", "trained_model", "backtest")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]



@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[str, dg.DagsterInstance]]:
    home = make_home(tmp_path / "home")
    training = tmp_path / "tiny_training.yaml"
    training.write_text(yaml.safe_dump(TINY_TRAINING))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PLOUTOS_DATA": str(write_market(tmp_path / "ohlcv.csv")),
        "PLOUTOS_STORAGE": str(tmp_path / "storage"),
        "PLOUTOS_TRAINING_CONFIG": str(training),
    }
    with (
        dagster_servers(env, ARTIFACTS / "logs") as url,
        dg.DagsterInstance.from_config(str(home)) as instance,
    ):
        yield url, instance


def test_materialize_the_chain_from_the_web_ui(ui: tuple[str, dg.DagsterInstance]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, instance = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def materialized(asset: str) -> bool:
        return instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())

        def open_asset(asset: str) -> None:
            page.goto(f"{url}/assets/{asset}")
            expect(page.get_by_text("Definition").first).to_be_visible(timeout=60_000)

        def click_materialize(label: str = r"^Materialize$") -> None:
            button = page.get_by_role("button").filter(has_text=re.compile(label)).first
            expect(button).to_be_enabled(timeout=60_000)
            button.click()

        try:
            page.goto(f"{url}/assets")
            for asset in ASSETS:
                link = page.locator(f"a[href='/assets/{asset}']").first
                expect(link).to_be_visible(timeout=60_000)
            page.screenshot(path=ARTIFACTS / "1_assets.png")

            open_asset("raw_ohlcv")
            click_materialize()
            wait_for(lambda: materialized("raw_ohlcv"), "raw_ohlcv")
            tickers = instance.get_dynamic_partitions("tickers")
            assert len(tickers) == 3

            open_asset("features")
            click_materialize(r"^Materialize")
            page.get_by_role("button", name="All", exact=True).click()
            expect(page.get_by_text(f"{len(tickers)} partitions")).to_be_visible()
            page.screenshot(path=ARTIFACTS / "2_features_backfill.png")
            page.get_by_role("button", name="Launch backfill").click()
            wait_for(
                lambda: instance.get_materialized_partitions(dg.AssetKey("features"))
                == set(tickers),
                "the features backfill",
            )

            open_asset("trained_model")
            click_materialize()
            wait_for(lambda: materialized("trained_model"), "trained_model")
            wait_for(lambda: materialized("backtest"), "the automatic backtest")

            open_asset("backtest")
            expect(page.get_by_text("strategy_sharpe").first).to_be_visible(timeout=60_000)
            page.screenshot(path=ARTIFACTS / "3_backtest_metrics.png")
            row = page.locator("tr").filter(has_text="equity_plot").first
            row.get_by_text("[Show Markdown]").click()
            plot = page.locator("img[src^='data:image/png;base64,']").first
            expect(plot).to_be_visible(timeout=60_000)
            assert plot.evaluate("img => img.naturalWidth") > 100
            page.screenshot(path=ARTIFACTS / "4_backtest_equity_plot.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
            raise
        finally:
            browser.close()
    wait_for(lambda: all(run.is_finished for run in instance.get_runs()), "the runs to finish")
    statuses = {run.run_id: run.status for run in instance.get_runs()}
    assert len(statuses) == 4
    assert set(statuses.values()) == {dg.DagsterRunStatus.SUCCESS}
