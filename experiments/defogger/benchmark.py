"""Games generated per second (vmapped JAX generator) against a Python loop over single-game
generator steps, and training sequences per second, measured in the same run.

  python experiments/defogger/benchmark.py --games=64
"""

import time

import jax
import jax.numpy as jnp
from absl import app, flags

from jaxpapers.defogger import config, model, train, world

_GAMES = flags.DEFINE_integer("games", 64, "Games per vmapped generator call.")
_SCALE = flags.DEFINE_enum("scale", "cpu", ["smoke", "cpu", "full"], "Config scale for the model.")


def _timed(fn, *args, repeats=3):
  jax.block_until_ready(fn(*args))
  t = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / repeats


def main(argv):
  del argv
  cfg = config.get_config(_SCALE.value)
  gcfg = train.game_config(cfg)
  batched = jax.jit(lambda k: world.generate_games(k, _GAMES.value, gcfg))
  t_vmap = _timed(batched, jax.random.key(0))
  single = jax.jit(lambda k: world.generate_game(k, gcfg))
  n_loop = max(_GAMES.value // 8, 1)

  def loop(key):
    return [single(k) for k in jax.random.split(key, n_loop)]

  t_loop = _timed(loop, jax.random.key(0)) / n_loop * _GAMES.value
  print(f"generator: {_GAMES.value / t_vmap:.1f} games/s vmapped vs {_GAMES.value / t_loop:.1f} games/s "
        f"one game per call (×{t_loop / t_vmap:.1f})")
  data = train.build_dataset(jax.random.key(1), 8, cfg)
  module = train.make_module(cfg)
  params = model.init(jax.random.key(0), module, 1, data.x.shape[2], data.x.shape[-1])
  opt = train.make_optimizer(cfg)
  opt_state = opt.init(params)
  batch = jax.tree.map(lambda a: a[: cfg.games_per_update], data)

  @jax.jit
  def step(p, s):
    g = jax.grad(train.loss_fn)(p, module, batch, cfg)
    u, s = opt.update(g, s, p)
    return jax.tree.map(jnp.add, p, u), s

  t_step = _timed(lambda p, s: step(p, s)[0], params, opt_state)
  print(f"training: {cfg.games_per_update / t_step:.2f} sequences/s "
        f"({data.x.shape[1]} steps of {data.x.shape[2]}×{data.x.shape[3]}×{data.x.shape[4]})")


if __name__ == "__main__":
  app.run(main)
