"""Training throughput: end to end, rollout and update phases, peak memory; and the rollout phase
against the reference environment (per-ticker Python loops under ``SubprocVecEnv``).

    .venv/bin/python benchmarks/bench_train.py                  # CPU, a few minutes
    .venv/bin/python benchmarks/bench_train.py --device cuda    # the same on a GPU
    .venv/bin/python benchmarks/bench_train.py --quick          # fewer timesteps and cases

Universes: the bundled sample (``data/sample_ohlcv.csv``, ~20 tickers, real features) and 500
synthetic tickers (``make_market(500, 2520)``; random N(0, 1) features on each ticker's rows after
the warm-up: throughput does not depend on the feature values, and computing 85 indicators for
500 tickers would dominate the run). PPO settings are ``config/training.yaml``'s (the training
guide's: n_envs 32, n_steps 128, batch 2048, n_epochs 10), each universe with the default policy
(``encoder``: ticker encoder [16] + net_arch [256, 256]), the flat MLP over the whole observation
(``flat``) and the shared-ticker policy (``shared``: the [16] encoder per ticker, a pooled
context, one actor head for every ticker, a [256, 256] critic), and the rollout comparison with
the first two. ``--policies`` and ``--universes`` pick cases, e.g. the shared policy alone at 500
tickers: ``bench_train.py --policies shared --universes 500 --skip-reference``; ``--pooling
max,attention`` runs the shared policy with each pooled summary (default: the config's).

Each case runs in its own process so that its peak memory is its own (Linux ``VmHWM``, reset
after the data is prepared, so it measures training; plus the GPU's peak allocation on CUDA).
The rollout phase is PPO's ``collect_rollouts`` (policy forward, environment step, VecNormalize,
buffer writes); the update phase is PPO's ``train()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "data" / "sample_ohlcv.csv"
LARGE_TICKERS = 500
LARGE_DAYS = 2520
SAMPLE_TARGET = 1_500
ROLLOUT_RATIO_TARGET = 10


# --- data ------------------------------------------------------------------------------------


def sample_market():
    from ploutos_core.data import load_ohlcv
    from ploutos_core.features import compute_features_many
    from ploutos_core.market import build_market

    ohlcv = load_ohlcv(SAMPLE_CSV)
    return build_market(compute_features_many(ohlcv), ohlcv)


def synthetic_market(n_tickers: int, n_days: int = LARGE_DAYS, seed: int = 0):
    import numpy as np
    import pandas as pd

    from ploutos_core.data.sample import make_market
    from ploutos_core.features import FEATURE_NAMES, WARMUP_BARS
    from ploutos_core.market import build_market

    ohlcv = make_market(n_tickers, n_days, seed=seed)
    rng = np.random.default_rng(seed)
    features = {}
    for ticker, rows in ohlcv.groupby("ticker", sort=True, observed=True):
        dates = pd.DatetimeIndex(rows["date"].iloc[WARMUP_BARS:], name="date")
        values = rng.standard_normal((len(dates), len(FEATURE_NAMES)), dtype=np.float32)
        features[str(ticker)] = pd.DataFrame(values, index=dates, columns=list(FEATURE_NAMES))
    return build_market(features, ohlcv)


def load_universe(name: str):
    return sample_market() if name == "sample" else synthetic_market(int(name))


# --- measurements (run inside a case process) ------------------------------------------------


def reset_peak_rss() -> None:
    """Make VmHWM start from the current RSS (Linux), so the peak excludes data preparation."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")


def peak_rss_bytes() -> int:
    try:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def guide_config(**overrides: Any):
    from ploutos_core.config import TrainingConfig, default_config_path, load_config

    return load_config(TrainingConfig, default_config_path("training"), overrides)


def gpu_peak(device: str) -> int | None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return None


def case_train(
    universe: str,
    net_arch: list[int],
    timesteps: int,
    device: str,
    ticker_encoder: list[int] | None = None,
    policy: str = "encoder",
    pooling: str = "max",
) -> dict:
    """End-to-end ``train()`` with the guide's settings, ``policy``, ``net_arch``,
    ``ticker_encoder`` and ``pooling``."""
    import torch

    from ploutos_core.training import train

    market = load_universe(universe)
    config = guide_config(
        total_timesteps=timesteps,
        device=device,
        policy=policy,
        net_arch=net_arch,
        ticker_encoder=ticker_encoder or [],
        pooling=pooling,
        checkpoint_freq=10**12,
    )
    quiet = logging.getLogger("bench")
    quiet.setLevel(logging.WARNING)
    reset_peak_rss()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        result = train(config, market, out, logger=quiet, progress_every=None)
    return {
        "tickers": market.N,
        "timesteps": result.timesteps,
        "wall_s": result.wall_time_s,
        "steps_per_s": result.steps_per_second,
        "rollout_s": result.rollout_time_s,
        "update_s": result.update_time_s,
        "device": result.device,
        "peak_rss": peak_rss_bytes(),
        "gpu_peak": gpu_peak(result.device),
    }


def step_breakdown(model, steps: int = 16) -> dict[str, float]:
    """Milliseconds per vectorized step spent in each part of a rollout step."""
    import numpy as np
    import torch
    from stable_baselines3.common.utils import obs_as_tensor

    env = model.env
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 3, (env.num_envs, *env.action_space.shape)) for _ in range(steps)]

    def sync() -> None:
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)

    def clock(step) -> float:
        sync()
        start = time.perf_counter()
        for action in actions:
            step(action)
        sync()
        return (time.perf_counter() - start) / steps * 1e3

    env.reset()
    environment = clock(env.venv.step)
    normalized = clock(env.step)
    obs, rewards, dones, _ = env.step(actions[0])
    with torch.no_grad():
        obs_tensor = obs_as_tensor(obs, model.device)
        policy = clock(lambda _: model.policy(obs_tensor))
        chosen, values, log_probs = model.policy(obs_tensor)
    model.rollout_buffer.reset()
    buffer = clock(
        lambda action: model.rollout_buffer.add(obs, action, rewards, dones, values, log_probs)
    )
    return {
        "environment": environment,
        "VecNormalize": normalized - environment,
        "policy forward": policy,
        "rollout buffer": buffer,
    }


def time_rollouts(
    venv,
    config,
    policy_kwargs: dict[str, Any],
    device: str,
    rollouts: int,
    *,
    ours: bool = True,
    warm_up: bool = True,
) -> tuple[float, dict[str, float] | None]:
    """Timesteps per second of ``collect_rollouts`` over ``venv`` (the best of ``rollouts``: other
    processes on the machine only ever slow a rollout down), and (``ours``) where a step's time
    goes.

    ``ours``: set up as ``train()`` sets it up (Float32VecNormalize, batched action
    distribution, ``rollout_thread_count`` torch threads, no distribution argument checks);
    otherwise SB3's defaults. ``warm_up``: run one rollout before timing.
    """
    import contextlib

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from ploutos_core.training.callbacks import rollout_thread_count
    from ploutos_core.training.distributions import (
        distribution_checks_off,
        use_batched_distribution,
    )
    from ploutos_core.training.model import policy_class
    from ploutos_core.training.normalization import Float32VecNormalize

    normalize = Float32VecNormalize if ours else VecNormalize
    env = normalize(venv, clip_obs=config.clip_obs, clip_reward=config.clip_obs, gamma=config.gamma)
    n_steps = config.n_steps
    model = PPO(
        policy_class(config),
        env,
        n_steps=n_steps,
        batch_size=config.batch_size,
        policy_kwargs=policy_kwargs,
        seed=config.seed,
        device=device,
    )
    if ours:
        use_batched_distribution(model.policy)
        torch.set_num_threads(rollout_thread_count(model.policy))
    _, callback = model._setup_learn(config.n_envs * n_steps * (rollouts + 1))
    callback.on_training_start(locals(), globals())
    with distribution_checks_off() if ours else contextlib.nullcontext():
        if warm_up:
            model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
        times = []
        for _ in range(rollouts):
            start = time.perf_counter()
            model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
            times.append(time.perf_counter() - start)
        breakdown = step_breakdown(model) if ours else None
    env.close()
    return n_steps * config.n_envs / min(times), breakdown


def reference_vec_env(market, config):
    """The guide's setup: one reference env per sub-environment, each in its own process."""
    from functools import partial

    from stable_baselines3.common.vec_env import SubprocVecEnv

    sys.path.insert(0, str(ROOT))
    from tests.support.reference_env import ReferencePortfolioEnv, ticker_series

    series = ticker_series(market)
    factories = [
        partial(ReferencePortfolioEnv, series, market.dates, config.env, seed=config.seed + i)
        for i in range(config.n_envs)
    ]
    return SubprocVecEnv(factories, start_method="fork")


def case_rollout(
    universe: str,
    env_kind: str,
    rollouts: int,
    device: str,
    ours_policy: bool = True,
    warm_up: bool = True,
    ticker_encoder: list[int] | None = None,
    policy: str = "encoder",
    pooling: str = "max",
) -> dict:
    """The rollout phase alone, on our ``PortfolioVecEnv`` or on the reference environment."""
    from ploutos_core.env import PortfolioVecEnv
    from ploutos_core.market.split import split_periods
    from ploutos_core.training import policy_kwargs, select_device

    device = str(select_device(device))
    market = load_universe(universe)
    config = guide_config(
        device=device, policy=policy, ticker_encoder=ticker_encoder or [], pooling=pooling
    )
    split = split_periods(market.dates, config.split)
    train_market = market.period(split.train_start, split.train_end)
    if env_kind == "ours":
        venv = PortfolioVecEnv(train_market, config.env, n_envs=config.n_envs, seed=config.seed)
    else:
        venv = reference_vec_env(train_market, config)
    reset_peak_rss()
    kwargs = policy_kwargs(config, train_market.N, len(train_market.feature_names))
    rate, breakdown = time_rollouts(
        venv, config, kwargs, device, rollouts, ours=ours_policy, warm_up=warm_up
    )
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "tickers": market.N,
        "steps_per_s": rate,
        "breakdown_ms": breakdown,
        "peak_rss": peak_rss_bytes(),
        "child_peak_rss": children or None,
        "device": device,
    }


CASES = {"train": case_train, "rollout": case_rollout}


# --- orchestration ---------------------------------------------------------------------------


def run_case(kind: str, **kwargs: Any) -> dict:
    """Run one case in a fresh interpreter and return its figures."""
    spec = json.dumps({"kind": kind, **kwargs})
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / "storage/numba_cache")),
    }
    done = subprocess.run(
        [sys.executable, __file__, "--case", spec],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"case {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"


POLICIES = ("encoder", "flat", "shared")


def policy_spec(
    policy: str, net_arch: list[int], encoder: list[int], pooling: str = "max"
) -> dict[str, Any]:
    """A case's policy as ``case_train``/``case_rollout`` keyword arguments."""
    return {"policy": policy, "net_arch": net_arch, "ticker_encoder": encoder, "pooling": pooling}


def policy_label(
    policy: str, net_arch: list[int], ticker_encoder: list[int], pooling: str = "max"
) -> str:
    if policy == "flat":
        return f"flat {net_arch}"
    if policy == "shared":
        return f"shared {ticker_encoder}/{net_arch} {pooling}"
    return f"{ticker_encoder}+{net_arch}"


def print_train(label: str, policy: str, r: dict) -> None:
    rollout = r["timesteps"] / r["rollout_s"] if r["rollout_s"] else float("nan")
    update = r["timesteps"] / r["update_s"] if r["update_s"] else float("nan")
    phases = r["rollout_s"] + r["update_s"]
    print(
        f"{label:<10} {r['tickers']:>4} {policy:<32} {r['device']:<7} "
        f"{r['timesteps']:>8,} {r['steps_per_s']:>9,.0f} {rollout:>10,.0f} {update:>9,.0f} "
        f"{100 * r['rollout_s'] / phases:>5.0f}/{100 * r['update_s'] / phases:<4.0f} "
        f"{mib(r['peak_rss']):>10} {mib(r['gpu_peak']):>10}"
    )


def compare_rollouts(spec: dict[str, Any], device: str, rollouts: int) -> None:
    """Our rollout phase against the reference environment's, with the same policy."""
    large = str(LARGE_TICKERS)
    common = {
        "universe": large,
        "device": device,
        "ticker_encoder": spec["ticker_encoder"],
        "policy": spec["policy"],
    }
    ours = run_case("rollout", env_kind="ours", rollouts=rollouts, **common)
    ours_sb3 = run_case(
        "rollout", env_kind="ours", rollouts=rollouts, ours_policy=False, **common
    )
    # A reference rollout takes long: time one, without a warm-up rollout (its one-time costs
    # are small next to it). Its steps get slower as the portfolios fill up, so a rollout
    # shorter than the guide's 128 steps would flatter it.
    reference = run_case(
        "rollout", env_kind="reference", rollouts=1, ours_policy=False, warm_up=False, **common
    )
    ratio = ours["steps_per_s"] / reference["steps_per_s"]
    policy = policy_label(spec["policy"], [256, 256], spec["ticker_encoder"])
    print(
        f"\nrollout phase at {LARGE_TICKERS} tickers (n_envs 32, VecNormalize, policy "
        f"{policy} on {ours['device']}), timesteps/s:\n"
        f"  PortfolioVecEnv, as train() runs it      {ours['steps_per_s']:>8,.0f}  "
        f"(peak RSS {mib(ours['peak_rss'])})\n"
        f"  PortfolioVecEnv, SB3's default policy    {ours_sb3['steps_per_s']:>8,.0f}\n"
        f"  reference, SubprocVecEnv x32, SB3 policy {reference['steps_per_s']:>8,.0f}  "
        f"(peak RSS {mib(reference['peak_rss'])} + workers up to "
        f"{mib(reference['child_peak_rss'])} each)\n"
        f"  ratio {ratio:.1f}x (target >= {ROLLOUT_RATIO_TARGET}x)\n"
        f"  one PortfolioVecEnv rollout step (32 sub-envs), ms: "
        + ", ".join(f"{k} {v:.1f}" for k, v in ours["breakdown_ms"].items())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--quick", action="store_true", help="fewer timesteps and cases")
    parser.add_argument(
        "--skip-reference", action="store_true", help="skip the reference environment"
    )
    parser.add_argument(
        "--policies",
        default=",".join(POLICIES),
        help=f"comma-separated policies to run, of {', '.join(POLICIES)} (default: all)",
    )
    parser.add_argument(
        "--universes",
        default=f"sample,{LARGE_TICKERS}",
        help=f"comma-separated universes: sample (~20 tickers) and/or {LARGE_TICKERS}",
    )
    parser.add_argument(
        "--pooling",
        help="policy shared's pooled summaries, comma-separated: max and/or attention "
        "(default: the config's)",
    )
    parser.add_argument(
        "--sample-steps", type=int, help="timesteps of each sample-universe case (a tiny run)"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:
        spec = json.loads(args.case)
        print(json.dumps(CASES[spec.pop("kind")](**spec)))
        return 0

    rollout = 32 * 128
    sample_steps = args.sample_steps or rollout * (4 if args.quick else 8)
    large_steps = rollout * (1 if args.quick else 2)
    if args.device.startswith("cuda"):
        large_steps = rollout * (4 if args.quick else 12)
    guide = guide_config()
    arch, widths = list(guide.net_arch), list(guide.ticker_encoder)
    chosen = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(POLICIES))
    if unknown:
        parser.error(f"unknown policies {unknown}; choose from {', '.join(POLICIES)}")
    universes = {u.strip() for u in args.universes.split(",") if u.strip()}
    poolings = [p.strip() for p in (args.pooling or guide.pooling).split(",") if p.strip()]
    specs = {
        "encoder": [policy_spec("encoder", arch, widths)],
        "flat": [policy_spec("flat", arch, [])],
        "shared": [policy_spec("shared", arch, widths, pooling) for pooling in poolings],
    }
    large_policies = [spec for p in POLICIES if p in chosen for spec in specs[p]]
    sample_policies = list(large_policies)
    if not args.quick and "flat" in chosen:
        sample_policies.append(policy_spec("flat", [64, 64], []))
    print(
        f"bench_train: device {args.device}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; PPO settings from config/training.yaml "
        f"(n_envs 32, n_steps 128, batch 2048, n_epochs 10; default policy "
        f"{policy_label(**specs[guide.policy][0])})"
    )
    print(
        f"{'universe':<10} {'N':>4} {'policy':<32} {'device':<7} {'steps':>8} "
        f"{'e2e ts/s':>9} {'rollout/s':>10} {'update/s':>9} {'% r/u':<10} "
        f"{'peak RSS':>10} {'GPU peak':>10}"
    )
    sample_rates = {}
    for spec in sample_policies if "sample" in universes else []:
        r = run_case(
            "train", universe="sample", timesteps=sample_steps, device=args.device, **spec
        )
        sample_rates[policy_label(**spec)] = r["steps_per_s"]
        print_train("sample", policy_label(**spec), r)
    large_runs = {}
    for spec in large_policies if str(LARGE_TICKERS) in universes else []:
        large_runs[policy_label(**spec)] = large = run_case(
            "train",
            universe=str(LARGE_TICKERS),
            timesteps=large_steps,
            device=args.device,
            **spec,
        )
        print_train("synthetic", policy_label(**spec), large)

    meets = [a for a, rate in sample_rates.items() if rate >= SAMPLE_TARGET]
    if sample_rates:
        print(
            f"\nsample universe end to end: target >= {SAMPLE_TARGET:,} timesteps/s; "
            + (f"met by {', '.join(meets)}" if meets else "met by none of the policies")
        )
    for policy, large in large_runs.items():
        phases = large["rollout_s"] + large["update_s"]
        updates = large["timesteps"] / rollout
        print(
            f"{LARGE_TICKERS} tickers, {policy}: {100 * large['update_s'] / phases:.0f}% of the "
            f"time in PPO's update ({large['update_s'] / updates:.1f} s per update of "
            f"{rollout:,} samples x 10 epochs), {100 * large['rollout_s'] / phases:.0f}% "
            f"collecting rollouts ({large['rollout_s'] / updates:.2f} s per rollout)"
        )

    if args.skip_reference or str(LARGE_TICKERS) not in universes:
        return 0
    rollouts = 1 if args.quick else 2
    for spec in large_policies:
        if spec["policy"] != "shared":
            compare_rollouts(spec, args.device, rollouts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
