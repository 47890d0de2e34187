"""Env-steps/s with learning on MinAtar Breakout: plain learner vs meta-gradient learner.

  python experiments/meta_gradient/benchmark.py --num_envs=64 --updates=50

Both learners run the same kind of jitted ``lax.scan`` chunk as training (acting + V-trace
update; the meta learner adds the meta-gradient through the update and the Adam step on η), in
the same process after compilation. The timed repeats alternate plain/meta so that a changing
machine load hits both alike; the best repeat of each is reported with the meta/plain time ratio
(issue target on 2 CPU cores: ≥ 100k steps/s for the meta learner, overhead ≤ 1.6×). The load
average and the env-steps per CPU-second of this process are printed too, because a shared
machine inflates wall-clock numbers (on an idle machine wall steps/s ≈ cores × per-CPU-second
figure when XLA keeps every core busy).
"""

import os
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from jaxpapers._src.loop import make_chunk
from jaxpapers.meta_gradient import config as mg_config
from jaxpapers.meta_gradient import train

_ENVS = flags.DEFINE_integer("num_envs", 64, "Parallel environments.")
_T = flags.DEFINE_integer("unroll_length", 20, "Trajectory length.")
_UPDATES = flags.DEFINE_integer("updates", 50, "Updates per timed chunk.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats per learner (best is reported).")
_ENV = flags.DEFINE_string("env_name", "Breakout-MinAtar", "gymnax environment.")
_SCALE = flags.DEFINE_enum("scale", "cpu", ["smoke", "cpu", "full"], "Base config (network).")
_HIDDEN = flags.DEFINE_list("hidden", None, "Override config.hidden (e.g. 64).")
_TORSO = flags.DEFINE_string("torso", None, "Override config.torso (auto, conv, mlp).")


def _compile(variant, config):
  learner = train.make_learner(config, variant)
  chunk = make_chunk(learner.step, _UPDATES.value)
  t0 = time.perf_counter()
  state = jax.jit(learner.init)(jax.random.key(0))
  state, _ = chunk(state, jnp.int32(0))
  jax.block_until_ready(state.params)
  return learner, chunk, state, time.perf_counter() - t0


def main(argv):
  del argv
  c = mg_config.get_config(_SCALE.value)
  c.env_name, c.num_envs, c.unroll_length = _ENV.value, _ENVS.value, _T.value
  if _HIDDEN.value:
    c.hidden = tuple(int(h) for h in _HIDDEN.value)
  if _TORSO.value:
    c.torso = _TORSO.value
  c.total_env_steps = 10**9
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, {os.cpu_count()} cpus; "
        f"env {c.env_name}, {c.num_envs} envs x {c.unroll_length} steps, torso {c.torso} "
        f"hidden {tuple(c.hidden)}, {_UPDATES.value} updates per chunk")
  runs = {v: list(_compile(v, c)) for v in ("fixed", "meta_gamma_lambda")}
  best = {v: float("inf") for v in runs}
  cpu = {v: float("inf") for v in runs}
  for r in range(_REPEATS.value):
    for v, run in runs.items():
      _, chunk, state, _ = run
      t0, c0 = time.perf_counter(), time.process_time()
      state, _ = chunk(state, jnp.int32((r + 1) * _UPDATES.value))
      jax.block_until_ready(state.params)
      best[v] = min(best[v], time.perf_counter() - t0)
      cpu[v] = min(cpu[v], time.process_time() - c0)
      run[2] = state
  steps = _UPDATES.value * runs["fixed"][0].env_steps_per_update
  sps = {v: steps / t for v, t in best.items()}
  load = os.getloadavg()
  for v, name in (("fixed", "plain"), ("meta_gamma_lambda", "meta ")):
    print(f"{name} learner: {sps[v]:,.0f} env-steps/s wall, {steps / cpu[v]:,.0f} env-steps per "
          f"CPU-second (compile+first chunk {runs[v][3]:.1f} s)")
  print(f"meta / plain time ratio: wall {best['meta_gamma_lambda'] / best['fixed']:.2f}x, CPU "
        f"{cpu['meta_gamma_lambda'] / cpu['fixed']:.2f}x (target <= 1.6x); meta "
        f"{'meets' if sps['meta_gamma_lambda'] >= 1e5 else 'misses'} the 100k steps/s target; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
  app.run(main)
