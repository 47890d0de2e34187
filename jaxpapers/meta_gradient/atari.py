"""Host-loop Atari actors (ale-py) feeding the jitted meta-gradient learner (the ``full`` path).

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018, Sec. 4: IMPALA on
57 Atari games for 200M frames with the standard preprocessing of Mnih et al. (2015): action repeat
4 with a max over the last two frames, 84×84 grey frames, a stack of 4, rewards clipped to
[−1, 1] for learning, life loss as a terminal signal (optional), up to 30 no-op starts, episodes
cut at 108k frames. Human-start evaluation needs the (unpublished) human start states and is not
available; evaluation uses no-op starts.
"""

from __future__ import annotations

import os
import re
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.metrics import MetricsWriter
from jaxpapers._src.validation import check_positive
from jaxpapers.meta_gradient import core, data, networks

MAX_EPISODE_FRAMES = 108_000


def rom_id(game: str) -> str:
  """``"SpaceInvaders" -> "space_invaders"`` (ale-py's ROM names)."""
  return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


def max_pool_and_resize(frame_a: np.ndarray, frame_b: np.ndarray, size: int = 84) -> np.ndarray:
  """Element-wise max of the last two grey frames (removes flicker), resized to ``size²`` uint8.

  Raises:
    ValueError: if the frames are not equal-shaped 2-D arrays.
  """
  a, b = np.asarray(frame_a), np.asarray(frame_b)
  if a.ndim != 2 or a.shape != b.shape:
    raise ValueError(f"frame_a and frame_b must be equal 2-D grey frames, got {a.shape}, {b.shape}")
  pooled = np.maximum(a, b).astype(np.uint8)
  return np.asarray(Image.fromarray(pooled).resize((size, size), Image.BILINEAR), np.uint8)


def clip_reward(r: float) -> float:
  """Reward clipping to [−1, 1] (learning only; scores use the raw reward)."""
  return float(np.clip(r, -1.0, 1.0))


class AtariStep(NamedTuple):
  """What one agent step returns (frame stack ``[84, 84, stack]`` uint8)."""

  obs: np.ndarray
  reward: float
  raw_reward: float
  terminated: bool
  truncated: bool
  final_obs: np.ndarray
  episode_return: float | None


class AtariEnv:
  """One ALE game with the standard preprocessing; auto-resets like gymnax.

  Args:
    game: e.g. ``"Pong"``.
    seed: emulator and no-op seed.
    frame_skip: action repeat (4).
    stack: frames stacked in the observation (4).
    noop_max: up to this many no-ops after reset (30).
    life_loss_terminal: signal ``terminated`` on a lost life (the game continues).
    max_episode_frames: truncation limit in emulator frames (108k = 30 minutes).
  """

  def __init__(self, game: str, seed: int = 0, *, frame_skip: int = 4, stack: int = 4,
               noop_max: int = 30, life_loss_terminal: bool = True,
               max_episode_frames: int = MAX_EPISODE_FRAMES):
    import ale_py
    from ale_py import roms

    check_positive(frame_skip, "frame_skip")
    check_positive(stack, "stack")
    check_positive(noop_max, "noop_max", allow_zero=True)
    self._ale = ale_py.ALEInterface()
    self._ale.setLoggerMode(ale_py.LoggerMode.Error)
    self._ale.setInt("random_seed", int(seed) % (2**31))
    self._ale.setFloat("repeat_action_probability", 0.0)
    path = roms.get_rom_path(rom_id(game))
    if path is None:
      raise ValueError(f"game {game!r} has no ROM in ale-py")
    self._ale.loadROM(path)
    self.actions = list(self._ale.getMinimalActionSet())
    self.num_actions = len(self.actions)
    self.frame_skip, self.stack, self.noop_max = frame_skip, stack, noop_max
    self.life_loss_terminal = life_loss_terminal
    self.max_episode_frames = max_episode_frames
    self._rng = np.random.default_rng(seed)
    self._buf = [np.zeros((210, 160), np.uint8), np.zeros((210, 160), np.uint8)]
    self._frames: list[np.ndarray] = []
    self._return = 0.0
    self.obs = self.reset()

  def _grab(self, i: int):
    self._ale.getScreenGrayscale(self._buf[i])

  def _obs(self) -> np.ndarray:
    return np.stack(self._frames[-self.stack:], axis=-1)

  def reset(self) -> np.ndarray:
    self._ale.reset_game()
    for _ in range(int(self._rng.integers(0, self.noop_max + 1))):
      self._ale.act(self.actions[0])
      if self._ale.game_over():
        self._ale.reset_game()
    self._grab(0)
    frame = max_pool_and_resize(self._buf[0], self._buf[0])
    self._frames = [frame] * self.stack
    self._lives = self._ale.lives()
    self._return = 0.0
    return self._obs()

  def step(self, action: int) -> AtariStep:
    reward = 0.0
    for i in range(self.frame_skip):
      reward += self._ale.act(self.actions[int(action)])
      if i >= self.frame_skip - 2:
        self._grab(i - (self.frame_skip - 2))
      if self._ale.game_over():
        self._grab(0)
        self._grab(1)
        break
    self._frames = self._frames[1:] + [max_pool_and_resize(*self._buf)]
    obs = self._obs()
    self._return += reward
    game_over = self._ale.game_over()
    lives = self._ale.lives()
    life_lost = lives < self._lives
    self._lives = lives
    truncated = (not game_over) and self._ale.getEpisodeFrameNumber() >= self.max_episode_frames
    terminated = game_over or (self.life_loss_terminal and life_lost)
    finished = None
    if game_over or truncated:
      finished = self._return
      self.obs = self.reset()
    else:
      self.obs = obs
    return AtariStep(self.obs, clip_reward(reward), reward, bool(terminated), bool(truncated), obs,
                     finished)


def make_host_learner(config, num_actions: int, obs_shape):
  """Jitted pieces of the learner for host-collected trajectories.

  Returns ``(agent, act, inner, meta_grad, meta_apply)`` where ``inner`` and ``meta_grad`` are
  :class:`~jaxpapers.meta_gradient.core.MetaLearner`'s ``inner_update`` and ``meta_gradient``.
  """
  agent = networks.make_agent(num_actions, torso=config.torso, hidden=tuple(config.hidden),
                              lstm_size=config.lstm_size,
                              eta_embed_dim=config.eta_embed_dim if config.eta_conditioning else 0,
                              eta_position=config.get("eta_position", "input"))
  opt = core.make_inner_optimizer(config.optimizer, config.learning_rate, decay=config.rms_decay,
                                  eps=config.rms_eps, max_grad_norm=config.max_grad_norm)
  learner = core.make_meta_learner(agent, opt, gamma_ref=config.gamma_ref,
                                   lambda_ref=config.lambda_ref,
                                   baseline_cost=config.baseline_cost,
                                   entropy_cost=config.entropy_cost,
                                   eta_conditioning=config.eta_conditioning,
                                   objective_uses_reference_eta=config.objective_uses_reference_eta)
  meta_opt = core.make_meta_optimizer(config.meta_lr)

  @jax.jit
  def act(key, params, meta, obs, first, core_state):
    logits, core_state = agent.act(params, obs, first, core_state, learner.eta_input(meta))
    return jax.random.categorical(key, logits), logits, core_state

  @jax.jit
  def meta_apply(meta, meta_opt_state, grad):
    return core.meta_step(meta, meta_opt_state, grad, meta_opt)

  return (agent, opt, meta_opt, act, jax.jit(learner.inner_update), jax.jit(learner.meta_gradient),
          meta_apply)


def _collect(envs, key, act, params, meta, obs, first, core_state, t):
  cols = {k: [] for k in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated",
                          "first", "logits")}
  start_core = core_state
  finished = []
  for _ in range(t):
    key, k = jax.random.split(key)
    actions, logits, core_state = act(k, params, meta, jnp.asarray(obs), jnp.asarray(first),
                                      core_state)
    actions = np.asarray(actions)
    steps = [e.step(a) for e, a in zip(envs, actions)]
    cols["obs"].append(obs)
    cols["next_obs"].append(np.stack([s.final_obs for s in steps]))
    cols["actions"].append(actions.astype(np.int32))
    cols["rewards"].append(np.array([s.reward for s in steps], np.float32))
    cols["terminated"].append(np.array([s.terminated for s in steps]))
    cols["truncated"].append(np.array([s.truncated and not s.terminated for s in steps]))
    cols["first"].append(first)
    cols["logits"].append(np.asarray(logits))
    finished += [s.episode_return for s in steps if s.episode_return is not None]
    obs = np.stack([s.obs for s in steps])
    first = np.array([s.terminated or s.truncated for s in steps])
  traj = core.Trajectory(*(jnp.asarray(np.stack(cols[k])) for k in (
      "obs", "next_obs", "actions", "rewards", "terminated", "truncated", "first", "logits")),
      core_state=start_core)
  return traj, obs, first, core_state, finished, key


def train_game(config, game: str, seed: int, *, meta_learning: bool = True,
               writer: MetricsWriter | None = None) -> dict:
  """Trains on one game for ``config.total_env_steps`` agent steps; returns scores and η."""
  b, t = config.num_envs, config.unroll_length
  envs = [AtariEnv(game, seed * 1000 + i, frame_skip=config.frame_skip, noop_max=config.noop_max,
                   life_loss_terminal=config.life_loss_terminal,
                   max_episode_frames=config.max_episode_frames)
          for i in range(b)]
  agent, opt, meta_opt, act, inner, meta_grad, meta_apply = make_host_learner(
      config, envs[0].num_actions, envs[0].obs.shape)
  key = jax.random.key(seed)
  key, k_init = jax.random.split(key)
  obs = np.stack([e.obs for e in envs])
  params = agent.init(k_init, jnp.asarray(obs))
  opt_state = opt.init(params)
  meta = core.init_meta_params(config.gamma_init, config.lambda_init)
  meta_opt_state = meta_opt.init(meta)
  first = np.ones((b,), bool)
  core_state = agent.initial_state(b)
  traj, obs, first, core_state, returns, key = _collect(envs, key, act, params, meta, obs, first,
                                                        core_state, t)
  num_updates = max(1, config.total_env_steps // (b * t))
  start = time.perf_counter()
  for u in range(num_updates):
    new_params, new_opt = inner(meta, params, opt_state, traj)
    new_traj, obs, first, core_state, finished, key = _collect(envs, key, act, new_params, meta,
                                                               obs, first, core_state, t)
    returns += finished
    if meta_learning:
      g, _ = meta_grad(meta, params, opt_state, traj, new_traj)
      meta, meta_opt_state = meta_apply(meta, meta_opt_state, g)
    params, opt_state, traj = new_params, new_opt, new_traj
    if writer is not None and (u + 1) % max(1, num_updates // 100) == 0:
      gm, lm = core.meta_values(meta)
      recent = returns[-20:]
      writer.write((u + 1) * b * t * config.frame_skip, game=game,
                   episode_return=float(np.mean(recent)) if recent else float("nan"),
                   gamma=float(gm), lambda_=float(lm))
  gm, lm = core.meta_values(meta)
  tail = returns[-max(1, len(returns) // 4):] if returns else []
  return {"score": float(np.mean(tail)) if tail else float("nan"), "episodes": len(returns),
          "gamma": float(gm), "lambda": float(lm), "seconds": time.perf_counter() - start}


def train_and_evaluate_atari(config, workdir: str) -> dict:
  """Trains every ``config.atari_games`` × ``config.seeds`` and reports median HNS per variant."""
  if not config.atari_games:
    raise ValueError("config.atari_games must name at least one game")
  table = data.load_reference_scores()
  unknown = [g for g in config.atari_games if g not in table]
  if unknown:
    raise ValueError(f"config.atari_games has games without reference scores: {unknown}")
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  out = {"games": list(config.atari_games), "seeds": list(config.seeds)}
  for variant in config.variants:
    writer = MetricsWriter(os.path.join(workdir, f"atari_{variant}.jsonl"), log=False)
    per_game, eta = {}, {}
    for game in config.atari_games:
      runs = [train_game(config, game, s, meta_learning=variant != "fixed", writer=writer)
              for s in config.seeds]
      per_game[game] = float(np.mean([r["score"] for r in runs]))
      eta[game] = {"gamma": [r["gamma"] for r in runs], "lambda": [r["lambda"] for r in runs]}
    writer.close()
    data.write_game_scores(os.path.join(workdir, f"atari_scores_{variant}.csv"), per_game)
    out[variant] = {"scores": per_game, "eta": eta,
                    "median_human_normalized": data.median_human_normalized(per_game, table)}
  return out
