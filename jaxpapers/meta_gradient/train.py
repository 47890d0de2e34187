"""A fully jitted meta-gradient actor-critic on gymnax environments (PureJaxRL pattern).

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018, Algorithm 1 /
Sec. 4: each iteration applies the inner update to the pending trajectory ``τ``
(``θ' = θ + f(τ, θ, η)``), acts with ``θ'`` to collect ``τ'``, ascends ``J'(τ', θ', η')`` in η
through the update, and keeps ``τ'`` as the next training batch.

``make_train(config)(key)`` runs the whole training as one ``lax.scan`` (jit/vmap it over seeds);
:func:`make_learner` exposes ``init``/``step`` so that :func:`train_and_evaluate` can run it in
chunks with a progress bar and metrics outside jit.
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.loop import run_chunked
from jaxpapers._src.metrics import MetricsWriter
from jaxpapers._src.prng import as_key
from jaxpapers._src.validation import check_in, check_positive
from jaxpapers.meta_gradient import core, envs, haiku_networks, networks

VARIANTS = ("fixed", "meta_gamma", "meta_lambda", "meta_gamma_lambda")
NETWORKS = ("flax", "haiku")


class TrainState(NamedTuple):
  """Everything a training run carries from one update to the next."""

  params: Any
  opt_state: Any
  meta: core.MetaParams
  meta_opt_state: Any
  trace: Any
  env_state: Any
  obs: jax.Array
  first: jax.Array
  core_state: Any
  traj: core.Trajectory
  episode_return: jax.Array
  has_traj: jax.Array
  learn_mask: core.MetaParams
  key: jax.Array


class Learner(NamedTuple):
  """``init(key) -> TrainState`` and ``step(state, update_index) -> (state, metrics)``.

  ``num_updates`` steps are run; the first only collects the first trajectory.
  """

  init: Any
  step: Any
  num_updates: int
  env_steps_per_update: int


def validate_config(config: ml_collections.ConfigDict, variant: str):
  """Checks a training config; raises ``ValueError`` naming the bad field."""
  check_in(variant, "variant", VARIANTS)
  check_in(config.env_name, "config.env_name", envs.ENVS)
  for name in ("num_envs", "unroll_length", "total_env_steps", "learning_rate", "meta_lr",
               "max_grad_norm"):
    check_positive(config[name], f"config.{name}")
  for name in ("learning_rate", "meta_lr", "max_grad_norm", "rms_eps", "baseline_cost",
               "entropy_cost"):
    v = config[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
      raise ValueError(f"config.{name} must be a finite number >= 0, got {v!r}")
  if not 0.0 <= config.rms_decay < 1.0:
    raise ValueError(f"config.rms_decay must be in [0, 1), got {config.rms_decay}")
  for name in ("gamma_ref", "lambda_ref"):
    try:
      core.check_reference(**{"gamma_ref": 0.99, "lambda_ref": 1.0, name: config[name]})
    except ValueError as e:
      raise ValueError(f"config.{e}") from None
  for name in ("gamma_init", "lambda_init"):
    if not 0.0 < config[name] < 1.0:
      raise ValueError(f"config.{name} must be in (0, 1), got {config[name]}")
  if not 0.0 <= config.trace_decay <= 1.0:
    raise ValueError(f"config.trace_decay must be in [0, 1], got {config.trace_decay}")
  if not isinstance(config.eta_conditioning, bool):
    raise ValueError(f"config.eta_conditioning must be a bool, got {config.eta_conditioning!r}")
  if config.eta_conditioning and not config.eta_embed_dim > 0:
    raise ValueError("config.eta_conditioning=True needs config.eta_embed_dim > 0, got "
                     f"{config.eta_embed_dim}")
  check_in(config.get("eta_position", "input"), "config.eta_position", networks.ETA_POSITIONS)
  check_in(config.get("network", "flax"), "config.network", NETWORKS)
  if config.get("network", "flax") == "haiku" and config.torso not in ("auto", "mlp"):
    raise ValueError(f"config.network='haiku' supports config.torso='mlp' only, got "
                     f"{config.torso!r}")
  if config.total_env_steps < config.num_envs * config.unroll_length:
    raise ValueError("config.total_env_steps must be at least num_envs * unroll_length = "
                     f"{config.num_envs * config.unroll_length}, got {config.total_env_steps}")


def variant_mask(variant: str) -> jax.Array:
  """``[learn γ, learn λ]`` as floats for a variant name."""
  check_in(variant, "variant", VARIANTS)
  return jnp.array([variant in ("meta_gamma", "meta_gamma_lambda"),
                    variant in ("meta_lambda", "meta_gamma_lambda")], jnp.float32)


def make_learner(config: ml_collections.ConfigDict, variant: str = "meta_gamma_lambda") -> Learner:
  """Builds the pure init/step functions of one run.

  Args:
    config: see :func:`jaxpapers.meta_gradient.config.get_config`.
    variant: ``"fixed"`` (γ, λ fixed at their initial values), ``"meta_gamma"``, ``"meta_lambda"``
      or ``"meta_gamma_lambda"`` (which meta-parameters are learned).
  """
  validate_config(config, variant)
  spec = envs.make_env(config.env_name)
  env, env_params = spec.env, spec.params
  torso = spec.torso if config.torso == "auto" else config.torso
  embed = config.eta_embed_dim if config.eta_conditioning else 0
  eta_position = config.get("eta_position", "input")
  if config.get("network", "flax") == "haiku":
    if torso != "mlp":
      raise ValueError(f"config.network='haiku' supports the mlp torso only; {config.env_name} "
                       f"uses {torso!r} (set config.torso='mlp')")
    agent = haiku_networks.make_haiku_agent(spec.num_actions, hidden=tuple(config.hidden),
                                            lstm_size=config.lstm_size, eta_embed_dim=embed,
                                            eta_position=eta_position)
  else:
    agent = networks.make_agent(spec.num_actions, torso=torso, hidden=tuple(config.hidden),
                                lstm_size=config.lstm_size, eta_embed_dim=embed,
                                eta_position=eta_position)
  b, t = config.num_envs, config.unroll_length
  num_updates = config.total_env_steps // (b * t)
  lr = (optax.linear_schedule(config.learning_rate, 0.0, num_updates) if config.anneal_lr
        else config.learning_rate)
  optimizer = core.make_inner_optimizer(config.optimizer, lr, decay=config.rms_decay,
                                        eps=config.rms_eps, max_grad_norm=config.max_grad_norm)
  learner = core.make_meta_learner(
      agent, optimizer, gamma_ref=config.gamma_ref, lambda_ref=config.lambda_ref,
      baseline_cost=config.baseline_cost, entropy_cost=config.entropy_cost,
      eta_conditioning=config.eta_conditioning,
      objective_uses_reference_eta=config.objective_uses_reference_eta)
  meta_opt = core.make_meta_optimizer(config.meta_lr)
  is_meta = variant != "fixed"
  mu = float(config.trace_decay)

  def rollout(key, params, meta, env_state, obs, first, core_state, ep_ret):
    eta_in = learner.eta_input(meta)

    def one(carry, k):
      env_state, obs, first, core_state, ep_ret = carry
      k_act, k_env = jax.random.split(k)
      logits, new_core = agent.act(params, obs, first, core_state, eta_in)
      action = jax.random.categorical(k_act, logits)
      obs2, env_state, reward, term, trunc, info = jax.vmap(
          env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, b), env_state, action,
                                             env_params)
      term = term.astype(bool)
      trunc = jnp.logical_and(trunc.astype(bool), jnp.logical_not(term))
      done = jnp.logical_or(term, trunc)
      ep_ret = ep_ret + reward
      finished = jnp.where(done, ep_ret, 0.0)
      step = (obs, info["final_observation"], action, reward.astype(jnp.float32), term, trunc,
              first, logits, finished, done)
      return (env_state, obs2, done, new_core, jnp.where(done, 0.0, ep_ret)), step

    carry = (env_state, obs, first, core_state, ep_ret)
    carry, xs = jax.lax.scan(one, carry, jax.random.split(key, t))
    o, no, a, r, te, tr, fi, lg, fin, dn = xs
    traj = core.Trajectory(o, no, a, r, te, tr, fi, lg, core_state)
    stats = {"return_sum": fin.sum(), "return_count": dn.sum()}
    return traj, carry, stats

  def dummy_traj(obs, core_state):
    z = jnp.zeros((t, b), jnp.float32)
    f = jnp.zeros((t, b), bool)
    o = jnp.zeros((t,) + obs.shape, obs.dtype)
    return core.Trajectory(o, o, jnp.zeros((t, b), jnp.int32), z, f, f, f,
                           jnp.zeros((t, b, spec.num_actions), jnp.float32), core_state)

  def init(key, learn_mask=None, params=None) -> TrainState:
    """Resets the environments and the networks; the first ``step`` only collects ``τ``.

    ``learn_mask`` (``[2]`` floats, γ then λ) overrides which meta-parameters this run learns, so
    one compiled meta-learner can also run the fixed baseline (mask ``[0, 0]``) under ``vmap``.
    ``params`` replaces the network's initial parameters (same tree as ``agent.init``'s, e.g. a
    flax agent's copied into a haiku one with ``haiku_params_from_flax``).
    """
    if learn_mask is None:
      learn_mask = variant_mask(variant)
    learn_mask = jnp.asarray(learn_mask, jnp.float32)
    key = as_key(key)
    k_env, k_net, k_run = jax.random.split(key, 3)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, b), env_params)
    core_state = agent.initial_state(b)
    fresh = agent.init(k_net, obs)
    if params is None:
      params = fresh
    elif jax.tree.structure(params) != jax.tree.structure(fresh):
      raise ValueError("params must have the tree structure of the agent's init, got "
                       f"{jax.tree.structure(params)} vs {jax.tree.structure(fresh)}")
    meta = core.init_meta_params(config.gamma_init, config.lambda_init)
    trace = core.zero_trace(params) if (is_meta and mu > 0) else ()
    return TrainState(params, optimizer.init(params), meta, meta_opt.init(meta), trace, env_state,
                      obs, jnp.ones((b,), bool), core_state, dummy_traj(obs, core_state),
                      jnp.zeros((b,)), jnp.asarray(False),
                      core.MetaParams(learn_mask[0], learn_mask[1]), k_run)

  def step(state: TrainState, i):
    key = jax.random.fold_in(state.key, i)

    def fun(m):
      p, o, metrics = learner.inner_update_with_metrics(m, state.params, state.opt_state,
                                                        state.traj)
      return p, (o, metrics)

    if is_meta and mu == 0.0:
      new_params, vjp_fn, (new_opt, metrics) = jax.vjp(fun, state.meta, has_aux=True)
    else:
      new_params, (new_opt, metrics) = fun(state.meta)
    new_traj, carry, stats = rollout(key, new_params, state.meta, state.env_state, state.obs,
                                     state.first, state.core_state, state.episode_return)
    env_state, obs, first, core_state, ep_ret = carry
    meta, meta_opt_state, trace = state.meta, state.meta_opt_state, state.trace
    if is_meta:
      g_theta, objective = learner.objective_grad(new_params, new_traj, state.meta)
      if mu == 0.0:
        g_meta = vjp_fn(g_theta)[0]
      else:
        direction = learner.update_direction(state.meta, state.params, state.opt_state,
                                             state.traj)
        trace = core.accumulate_trace(state.trace, direction, mu)
        g_meta = learner.meta_gradient_from_trace(g_theta, trace)
      g_meta = jax.tree.map(lambda g, m: g * m, g_meta, state.learn_mask)
      stepped, meta_opt_state = core.meta_step(state.meta, state.meta_opt_state, g_meta, meta_opt)
      meta = jax.tree.map(lambda new, old, m: jnp.where(m > 0, new, old), stepped, state.meta,
                          state.learn_mask)
      metrics["meta_objective"] = objective
      metrics["meta_grad_gamma"] = g_meta.gamma_logit
      metrics["meta_grad_lambda"] = g_meta.lambda_logit
    # The very first step has no pending trajectory: it only acts (one compiled program).
    def keep_old(new, old):
      return jax.tree.map(lambda a, c: jnp.where(state.has_traj, a, c), new, old)

    new_params, new_opt = keep_old((new_params, new_opt), (state.params, state.opt_state))
    meta, meta_opt_state, trace = keep_old((meta, meta_opt_state, trace),
                                           (state.meta, state.meta_opt_state, state.trace))
    gamma, lambda_ = core.meta_values(meta)
    metrics.update(stats, gamma=gamma, lambda_=lambda_, updated=state.has_traj)
    new_state = TrainState(new_params, new_opt, meta, meta_opt_state, trace, env_state, obs, first,
                           core_state, new_traj, ep_ret, jnp.asarray(True), state.learn_mask,
                           state.key)
    return new_state, metrics

  return Learner(init, step, num_updates, b * t)


def make_train(config: ml_collections.ConfigDict, variant: str = "meta_gamma_lambda"):
  """``train(key) -> (final_state, metrics)``: the whole run as one ``lax.scan``.

  Pure and jit/vmap-compatible: ``jax.jit(jax.vmap(make_train(cfg)))(jax.random.split(key, n))``
  trains ``n`` seeds at once. ``metrics`` holds one entry per update.
  """
  learner = make_learner(config, variant)

  def train(key):
    state = learner.init(key)
    return jax.lax.scan(learner.step, state, jnp.arange(learner.num_updates, dtype=jnp.int32))

  return train


def episode_score(history: dict, last_fraction: float = 0.25) -> np.ndarray:
  """Mean return of the episodes finished in the last ``last_fraction`` of updates, per seed.

  ``history`` has ``return_sum``/``return_count`` of shape ``[updates, seeds]``.
  """
  if not 0.0 < last_fraction <= 1.0:
    raise ValueError(f"last_fraction must be in (0, 1], got {last_fraction}")
  s, c = np.asarray(history["return_sum"]), np.asarray(history["return_count"])
  n = s.shape[0]
  start = n - max(1, int(round(n * last_fraction)))
  tot, cnt = s[start:].sum(0), c[start:].sum(0)
  return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _chunk_size(num_updates: int, chunk_size: int) -> int:
  """A chunk size near ``chunk_size`` that divides ``num_updates`` when one exists in
  ``[chunk_size/2, chunk_size]``, so that no second (remainder) chunk program is compiled."""
  chunk_size = max(1, min(chunk_size, num_updates))
  for c in range(chunk_size, (chunk_size + 1) // 2 - 1, -1):
    if c > 0 and num_updates % c == 0:
      return c
  return chunk_size


def run_variants(config, variants, seeds, *, workdir: str | None = None,
                 progress: bool = False) -> dict:
  """Trains every (variant, seed) pair: at most two compiled programs, each vmapped over its pairs.

  The meta variants share the meta-learner's program (``learn_mask`` selects which of γ, λ
  move); the ``"fixed"`` runs use the plain learner (no meta-gradient), which does the same
  parameter updates as the meta program with ``learn_mask = [0, 0]`` at about half the cost.
  Metrics go to ``<workdir>/metrics_<variant>.jsonl``.

  Returns:
    ``{variant: {...}}`` with per-seed ``score`` (see :func:`episode_score`), final ``gamma`` and
    ``lambda`` per seed, ``curve`` of (env steps, mean episode return over seeds), the γ/λ
    trajectories, ``env_steps`` per run and the wall ``seconds`` of the variant's program.
  """
  variants, seeds = list(variants), [int(s) for s in seeds]
  if not variants or not seeds:
    raise ValueError("variants and seeds must be non-empty")
  for v in variants:
    check_in(v, "variant", VARIANTS)
  out = {}
  groups = [("fixed", [v for v in variants if v == "fixed"]),
            ("meta_gamma_lambda", [v for v in variants if v != "fixed"])]
  for program, members in groups:
    if not members:
      continue
    learner = make_learner(config, program)
    pairs = [(v, s) for v in members for s in seeds]
    keys = jnp.stack([as_key(s) for _, s in pairs])
    masks = jnp.stack([variant_mask(v) for v, _ in pairs])
    step = jax.vmap(learner.step, in_axes=(0, None))
    start = time.perf_counter()
    state = jax.jit(jax.vmap(learner.init))(keys, masks)
    n = learner.num_updates
    chunk = _chunk_size(n, config.chunk_size)
    state, hist = run_chunked(step, state, n, chunk_size=chunk,
                              desc=f"{config.env_name}/{'+'.join(members)}", progress=progress)
    jax.block_until_ready(state.params)
    seconds = time.perf_counter() - start
    hist = {k: np.asarray(v) for k, v in hist.items()}
    gm, lm = (np.asarray(x) for x in core.meta_values(state.meta))
    for vi, variant in enumerate(members):
      cols = slice(vi * len(seeds), (vi + 1) * len(seeds))
      h = {k: v[:, cols] for k, v in hist.items()}
      writer = MetricsWriter(os.path.join(workdir, f"metrics_{variant}.jsonl") if workdir
                             else None, log=False)
      curve = []
      for c0 in range(0, n, chunk):
        c1 = min(c0 + chunk, n)
        tot, cnt = h["return_sum"][c0:c1].sum(), h["return_count"][c0:c1].sum()
        mean_ret = float(tot / cnt) if cnt > 0 else float("nan")
        env_steps = c1 * learner.env_steps_per_update
        curve.append((env_steps, mean_ret))
        writer.write(env_steps, episode_return=mean_ret, gamma=float(h["gamma"][c1 - 1].mean()),
                     lambda_=float(h["lambda_"][c1 - 1].mean()))
      writer.close()
      out[variant] = {
          "score": episode_score(h, config.eval_fraction).tolist(),
          "gamma": gm[cols].tolist(),
          "lambda": lm[cols].tolist(),
          "curve": curve,
          "gamma_curve": h["gamma"].mean(1).tolist(),
          "lambda_curve": h["lambda_"].mean(1).tolist(),
          "env_steps": n * learner.env_steps_per_update,
          "seconds": seconds,
      }
  return {v: out[v] for v in variants}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs every ``config.variants`` on ``config.seeds`` and writes ``<workdir>/metrics_*.jsonl``.

  Returns:
    ``{variant: run_variants(...)[variant]}`` plus ``"env_name"`` and the seeds.
  """
  if not config.variants:
    raise ValueError("config.variants must name at least one variant")
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  out = {"env_name": config.env_name, "seeds": list(config.seeds)}
  out.update(run_variants(config, config.variants, config.seeds, workdir=workdir,
                          progress=config.progress))
  return out
