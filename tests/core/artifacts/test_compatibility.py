"""A market fits a model only with the model's tickers and features, in the model's order."""

from __future__ import annotations

import pytest

from ploutos_core.artifacts import check_compatible
from ploutos_core.errors import ManifestError
from ploutos_core.market import build_market
from tests.core.conftest import FEATURES, TinyModel

FIX = "Do this instead"


def test_the_training_market_fits(tiny_model: TinyModel) -> None:
    check_compatible(tiny_model.result.manifest, tiny_model.market, "manifest.json", FIX)


def test_reordered_features_are_refused(tiny_model: TinyModel) -> None:
    swapped = (FEATURES[1], FEATURES[0], *FEATURES[2:])
    market = build_market(tiny_model.features, tiny_model.ohlcv, feature_names=swapped)
    with pytest.raises(ManifestError, match=r"different order: position 0 is 'f0'.*'f1'"):
        check_compatible(tiny_model.result.manifest, market, "manifest.json", FIX)


def test_a_missing_ticker_is_refused(tiny_model: TinyModel) -> None:
    gone = tiny_model.market.tickers[2]
    fewer = build_market(
        {t: f for t, f in tiny_model.features.items() if t != gone},
        tiny_model.ohlcv[tiny_model.ohlcv["ticker"] != gone],
        feature_names=FEATURES,
    )
    with pytest.raises(ManifestError, match=rf"tickers of the model are missing.*'{gone}'.*{FIX}"):
        check_compatible(tiny_model.result.manifest, fewer, "manifest.json", FIX)


def test_unknown_and_missing_features_are_named(tiny_model: TinyModel) -> None:
    names = ("f0", "f1", "g9", "f3", "f4", "f5")
    manifest = tiny_model.result.manifest.model_copy(update={"feature_names": names})
    with pytest.raises(ManifestError) as info:
        check_compatible(manifest, tiny_model.market, "manifest.json", FIX)
    assert "missing from the data: ['g9']" in str(info.value)
    assert "unknown to the model: ['f2']" in str(info.value)


def test_features_of_another_feature_version_are_refused(tiny_model: TinyModel) -> None:
    manifest = tiny_model.result.manifest.model_copy(update={"feature_version": "abc123"})
    with pytest.raises(ManifestError, match=r"version abc123 but the data's features are version"):
        check_compatible(manifest, tiny_model.market, "manifest.json", FIX)
