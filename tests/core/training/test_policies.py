"""The shared-ticker policy: equivariance, size, masking, save/load/resume, another universe."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO

from ploutos_core.artifacts import Manifest, check_compatible, load_trained_model
from ploutos_core.backtest.run import run_backtest
from ploutos_core.config import BacktestConfig, TrainingConfig
from ploutos_core.env.layout import PORTFOLIO_VALUES, POSITION_VALUES, observation_size
from ploutos_core.errors import ConfigError, ManifestError
from ploutos_core.market import MarketData
from ploutos_core.training import train
from ploutos_core.training.model import policy_kwargs
from ploutos_core.training.policies import MASKED_LOGIT, POOLINGS, SharedTickerPolicy
from tests.support.configs import tiny_training
from tests.support.markets import random_feature_market

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FEATURES = tuple(f"f{i}" for i in range(6))
F = len(FEATURES)


def make_policy(n_tickers: int, config: TrainingConfig | None = None) -> SharedTickerPolicy:
    config = config or tiny_training(policy="shared")
    size = observation_size(n_tickers, F)
    torch.manual_seed(0)
    return SharedTickerPolicy(
        spaces.Box(-np.inf, np.inf, (size,), np.float32),
        spaces.MultiDiscrete([3] * n_tickers),
        lambda _: 1e-3,
        **policy_kwargs(config, n_tickers, F),
    )


def join(features, positions, tradable, portfolio) -> torch.Tensor:
    """An observation batch from its parts (the inverse of ``ObservationLayout.split``)."""
    batch = features.shape[0]
    return torch.cat(
        [
            features.reshape(batch, -1),
            positions.transpose(1, 2).reshape(batch, -1),
            tradable,
            portfolio,
        ],
        dim=1,
    )


def random_parts(n_tickers: int, batch: int = 6, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, n_tickers, F, generator=gen)
    positions = torch.randn(batch, n_tickers, POSITION_VALUES, generator=gen)
    tradable = torch.ones(batch, n_tickers)
    portfolio = torch.randn(batch, PORTFOLIO_VALUES, generator=gen)
    return features, positions, tradable, portfolio


def test_a_policy_kind_needs_its_ticker_layers() -> None:
    assert tiny_training().policy == "encoder"
    for policy in ("encoder", "shared"):
        with pytest.raises(ConfigError, match="ticker_encoder is \\[\\]"):
            tiny_training(policy=policy, ticker_encoder=[])
    assert tiny_training(policy="flat", ticker_encoder=[]).policy == "flat"


@pytest.mark.parametrize("pooling", POOLINGS)
def test_swapping_two_tickers_swaps_their_actions(pooling: str) -> None:
    policy = make_policy(5, tiny_training(policy="shared", pooling=pooling))
    features, positions, tradable, portfolio = random_parts(5)
    tradable[:, 3] = 0
    order = torch.tensor([4, 1, 2, 0, 3])
    obs = join(features, positions, tradable, portfolio)
    swapped = join(features[:, order], positions[:, order], tradable[:, order], portfolio)
    with torch.no_grad():
        logits, value = policy.action_logits(obs), policy.predict_values(obs)
        logits_swapped = policy.action_logits(swapped)
        value_swapped = policy.predict_values(swapped)
        actions, _, _ = policy(obs, deterministic=True)
        actions_swapped, _, _ = policy(swapped, deterministic=True)
    torch.testing.assert_close(logits_swapped, logits[:, order])
    torch.testing.assert_close(value_swapped, value)
    assert torch.equal(actions_swapped, actions[:, order])


def test_each_tickers_head_reads_its_code_beside_the_context() -> None:
    """The head's first layer, split into a per-ticker and a per-observation product, is the
    layer on ``[code, context]`` as its docstring says; so are its gradients."""
    policy = make_policy(5, tiny_training(policy="shared", ticker_encoder=[8]))
    features, positions, tradable, portfolio = random_parts(5)
    tradable[:, 2] = 0
    obs = join(features, positions, tradable, portfolio)
    codes, mask, context = policy._encode(obs)
    joined = torch.cat([codes, context.unsqueeze(1).expand(-1, 5, -1)], dim=2)
    expected = policy.action_net(policy.actor_head(joined))[mask]
    logits = policy._logits(codes, mask, context)[mask]
    torch.testing.assert_close(logits, expected)
    first = policy.actor_head[0].weight
    (grad_split,) = torch.autograd.grad(logits.square().sum(), first, retain_graph=True)
    (grad_joined,) = torch.autograd.grad(expected.square().sum(), first)
    torch.testing.assert_close(grad_split, grad_joined)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_the_parameter_count_does_not_depend_on_the_universe(pooling: str) -> None:
    config = tiny_training(policy="shared", net_arch=[256, 256], pooling=pooling)
    counts = {n: sum(p.numel() for p in make_policy(n, config).parameters()) for n in (2, 20, 500)}
    assert len(set(counts.values())) == 1, counts


@pytest.mark.parametrize("pooling", POOLINGS)
def test_an_untradable_ticker_holds_and_does_not_enter_the_context(pooling: str) -> None:
    policy = make_policy(4, tiny_training(policy="shared", pooling=pooling))
    features, positions, tradable, portfolio = random_parts(4)
    tradable[:, 1] = 0
    obs = join(features, positions, tradable, portfolio)
    features[:, 1] += 100.0
    positions[:, 1] -= 50.0
    changed = join(features, positions, tradable, portfolio)
    with torch.no_grad():
        logits = policy.action_logits(obs)
        probs = logits.softmax(-1)
        probs_changed = policy.action_logits(changed).softmax(-1)
        values = policy.predict_values(obs), policy.predict_values(changed)
        _, _, log_prob = policy(obs)
        entropy = policy.get_distribution(obs).entropy()
    assert torch.all(logits[:, 1, 1:] == MASKED_LOGIT)
    assert torch.all(probs[:, 1, 0] == 1.0)
    torch.testing.assert_close(probs_changed, probs)
    torch.testing.assert_close(values[1], values[0])
    assert torch.isfinite(log_prob).all() and torch.isfinite(entropy).all()
    # No tradable ticker at all: everything holds, nothing is NaN.
    tradable[:] = 0
    with torch.no_grad():
        none = policy.action_logits(join(features, positions, tradable, portfolio))
    assert torch.isfinite(none).all() and torch.all(none.argmax(-1) == 0)


def test_the_context_is_the_mean_and_max_of_the_tradable_codes() -> None:
    policy = make_policy(6, tiny_training(policy="shared", pooling="max"))
    features, positions, tradable, portfolio = random_parts(6)
    tradable[0, [1, 4]] = 0
    tradable[1, :] = 0
    with torch.no_grad():
        codes, mask, context = policy._encode(join(features, positions, tradable, portfolio))
    size = policy.code_size
    for row in range(codes.shape[0]):
        chosen = codes[row, mask[row]]
        if len(chosen):
            mean, peak = chosen.mean(dim=0), chosen.max(dim=0).values
        else:
            mean = peak = torch.zeros(size)
        torch.testing.assert_close(context[row, :size], mean)
        torch.testing.assert_close(context[row, size : 2 * size], peak)
        torch.testing.assert_close(context[row, 2 * size :], portfolio[row])


def test_attention_pools_the_tradable_codes_by_their_softmax_scores() -> None:
    """Ilse et al. (2018), eq. 9: ``a_k = softmax_k(w^T tanh(V h_k))`` over the tradable
    tickers, the pooled code ``sum_k a_k h_k``; computed here by hand for each row."""
    policy = make_policy(6, tiny_training(policy="shared", pooling="attention"))
    features, positions, tradable, portfolio = random_parts(6)
    tradable[0, [1, 4]] = 0
    tradable[1, :] = 0
    tradable[2, 1:] = 0
    with torch.no_grad():
        codes, mask, context = policy._encode(join(features, positions, tradable, portfolio))
    size, attention = policy.code_size, policy.attention
    v, w = attention.hidden, attention.score
    for row in range(codes.shape[0]):
        chosen = codes[row, mask[row]]
        if len(chosen):
            scores = torch.tanh(chosen @ v.weight.T + v.bias) @ w.weight.T.squeeze(1) + w.bias
            a = torch.exp(scores - scores.max())
            pooled = (a / a.sum()) @ chosen
        else:
            pooled = torch.zeros(size)
        torch.testing.assert_close(
            context[row, :size], chosen.mean(dim=0) if len(chosen) else torch.zeros(size)
        )
        torch.testing.assert_close(context[row, size : 2 * size], pooled)
    # One tradable ticker: its weight is 1 and the pooled code is its code.
    torch.testing.assert_close(context[2, size : 2 * size], codes[2, 0])
    weights = attention.weights(codes, mask)
    assert torch.all(weights[~mask] == 0)
    torch.testing.assert_close(weights[[0, 2, 3]].sum(dim=1), torch.ones(3))


def test_an_unknown_pooling_is_refused() -> None:
    with pytest.raises(ConfigError, match="pooling"):
        tiny_training(policy="shared", pooling="sum")
    config = tiny_training(policy="shared")
    kwargs = {**policy_kwargs(config, 2, F), "pooling": "sum"}
    with pytest.raises(ValueError, match="pooling must be one of"):
        SharedTickerPolicy(
            spaces.Box(-np.inf, np.inf, (observation_size(2, F),), np.float32),
            spaces.MultiDiscrete([3, 3]),
            lambda _: 1e-3,
            **kwargs,
        )


def test_a_policy_saved_before_the_pooling_argument_pools_by_max() -> None:
    """SB3 rebuilds a saved policy from its saved keyword arguments; a model saved before
    ``pooling`` existed has none and was built with max pooling."""
    kwargs = policy_kwargs(tiny_training(policy="shared"), 3, F)
    assert kwargs.pop("pooling") == "attention"
    policy = SharedTickerPolicy(
        spaces.Box(-np.inf, np.inf, (observation_size(3, F),), np.float32),
        spaces.MultiDiscrete([3] * 3),
        lambda _: 1e-3,
        **kwargs,
    )
    assert policy.pooling == "max" and policy.attention is None


def test_the_policy_acts_on_another_number_of_tickers() -> None:
    policy = make_policy(4)
    with torch.no_grad():
        for n in (1, 3, 9):
            logits = policy.action_logits(join(*random_parts(n)))
            assert logits.shape == (6, n, 3)


# Training, resume, backtest on another universe ------------------------------------------------


def select(market: MarketData, tickers: list[str]) -> MarketData:
    """``market`` restricted to ``tickers``, in that order (the same calendar)."""
    columns = [market.tickers.index(t) for t in tickers]
    return MarketData(
        dates=market.dates,
        tickers=tuple(tickers),
        feature_names=market.feature_names,
        features=np.ascontiguousarray(market.features[:, columns]),
        open=np.ascontiguousarray(market.open[:, columns]),
        close=np.ascontiguousarray(market.close[:, columns]),
        tradable=np.ascontiguousarray(market.tradable[:, columns]),
        feature_version=market.feature_version,
    )


def shared_config(**overrides: object) -> TrainingConfig:
    values = {
        "policy": "shared",
        "total_timesteps": 512,
        "checkpoint_freq": 256,
        "split": {"test_fraction": 0.2, "embargo_days": 5},
    }
    return tiny_training(**{**values, **overrides})


@pytest.fixture(scope="module")
def universe() -> MarketData:
    return random_feature_market(9, 300, FEATURES, seed=5)


@pytest.fixture(scope="module")
def shared_model(universe: MarketData, tmp_path_factory: pytest.TempPathFactory):
    market = select(universe, list(universe.tickers[:4]))
    config = shared_config()
    result = train(config, market, tmp_path_factory.mktemp("shared") / "model")
    return result, market, config


def weights(path: Path) -> dict[str, torch.Tensor]:
    return PPO.load(path, device="cpu").policy.state_dict()


def test_a_shared_model_saves_loads_and_records_its_policy(shared_model) -> None:
    result, market, _ = shared_model
    assert result.manifest.policy == "shared"
    assert Manifest.read(result.model_dir.manifest).policy == "shared"
    model = PPO.load(result.model_path, device="cpu")
    assert isinstance(model.policy, SharedTickerPolicy)
    obs = np.zeros((2, observation_size(market.N, F)), np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (2, market.N)


def test_a_shared_model_resumes_from_a_checkpoint(shared_model, tmp_path: Path) -> None:
    result, market, config = shared_model
    checkpoint = result.checkpoints[0]
    resumed = train(config, market, tmp_path / "resumed", resume=checkpoint)
    assert resumed.timesteps >= config.total_timesteps
    assert isinstance(PPO.load(resumed.model_path, device="cpu").policy, SharedTickerPolicy)
    encoder = config.model_copy(update={"policy": "encoder"})
    with pytest.raises(ConfigError, match="policy 'shared' but the config says 'encoder'"):
        train(encoder, market, tmp_path / "refused", resume=checkpoint)
    by_max = config.model_copy(update={"pooling": "max"})
    with pytest.raises(ConfigError, match="pooling 'attention' but the config says 'max'"):
        train(by_max, market, tmp_path / "refused_pooling", resume=checkpoint)


def test_the_same_seed_gives_the_same_weights(shared_model, tmp_path: Path) -> None:
    result, market, config = shared_model
    again = train(config, market, tmp_path / "again")
    first, second = weights(result.model_path), weights(again.model_path)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_a_shared_model_backtests_on_another_universe(
    shared_model, universe: MarketData, tmp_path: Path
) -> None:
    result, market, _ = shared_model
    # Three new tickers and two of the model's, in another order.
    tickers = [universe.tickers[i] for i in (7, 2, 5, 0, 8)]
    other = select(universe, tickers)
    trained = load_trained_model(result.model_path)
    act = trained.policy(deterministic=True)
    obs = np.zeros((3, observation_size(other.N, F)), np.float32)
    assert act(obs).shape == (3, other.N)
    report = run_backtest(result.model_path, other, BacktestConfig(top_k=1), tmp_path / "bt")
    assert report.paths["metrics"].exists()
    assert np.isfinite(report.metrics["strategy"]["total_return"])


def test_another_universe_is_refused_for_other_policies_and_other_features(
    shared_model, universe: MarketData
) -> None:
    result, _, _ = shared_model
    other = select(universe, [universe.tickers[i] for i in (6, 1)])
    check_compatible(result.manifest, other, "manifest.json", "fix")
    encoder = result.manifest.model_copy(
        update={"config": result.manifest.config.model_copy(update={"policy": "encoder"})}
    )
    with pytest.raises(ManifestError, match="tickers"):
        check_compatible(encoder, other, "manifest.json", "fix")
    with pytest.raises(ManifestError, match="tickers"):
        check_compatible(result.manifest, other, "manifest.json", "fix", same_tickers=True)
    renamed = dataclasses.replace(other, feature_names=tuple(f"g{i}" for i in range(F)))
    with pytest.raises(ManifestError, match="features"):
        check_compatible(result.manifest, renamed, "manifest.json", "fix")
    versioned = result.manifest.model_copy(update={"feature_version": "v1"})
    with pytest.raises(ManifestError, match="version v1 but the data's features are version v2"):
        check_compatible(versioned, dataclasses.replace(other, feature_version="v2"), "m", "fix")
