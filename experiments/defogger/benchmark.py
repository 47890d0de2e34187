"""Games generated per second (vmapped JAX generator) against one game per call, and training
sequences per second of the split unroll (convolutions batched over all steps, only the LSTMs in
``lax.scan``) against scanning the whole step, measured in the same run.

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
  xs, bases = train.model_inputs(data.x, cfg), train.delta_base(data, cfg)
  params = model.init(jax.random.key(0), module, 1, data.x.shape[2], xs.shape[-1])
  opt = train.make_optimizer(cfg)
  opt_state = opt.init(params)
  n = cfg.games_per_update

  def stepwise_unroll(p, x, b):  # reference: the whole step (convolutions included) in the scan
    def step(st, inp):
      return module.apply(p, st, *inp)
    _, outs = jax.lax.scan(step, module.initial_state(x.shape[0], x.shape[2]),
                           (jnp.swapaxes(x, 0, 1), jnp.swapaxes(b, 0, 1)))
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), outs)

  def make_step(unroll_fn):
    def loss(p):
      return sum(jnp.mean(o ** 2) for o in unroll_fn(p, xs[:n], bases[:n]))

    @jax.jit
    def step(p, s):
      u, s = opt.update(jax.grad(loss)(p), s, p)
      return jax.tree.map(jnp.add, p, u), s
    return step

  split = make_step(lambda p, x, b: model.unroll(module, p, x, b))
  whole = make_step(stepwise_unroll)
  t_split = _timed(lambda p, s: split(p, s)[0], params, opt_state)
  t_whole = _timed(lambda p, s: whole(p, s)[0], params, opt_state, repeats=1)
  print(f"training: {n / t_split:.2f} sequences/s with the convolutions outside the time scan vs "
        f"{n / t_whole:.2f} sequences/s scanning the whole step (×{t_whole / t_split:.1f}; "
        f"{data.x.shape[1]} steps of {data.x.shape[2]}×{data.x.shape[3]}×{xs.shape[-1]})")


if __name__ == "__main__":
  app.run(main)
