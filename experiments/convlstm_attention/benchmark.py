"""Clips per second, training and inference, for every variant; ratios against standard ConvLSTM
measured in the same run.

  python experiments/convlstm_attention/benchmark.py --scale=cpu --repeats=5
  python experiments/convlstm_attention/benchmark.py --scale=full   # the reference net, on a GPU
"""

import time

import jax
import jax.numpy as jnp
from absl import app, flags

from jaxpapers.convlstm_attention import config, model, train

_SCALE = flags.DEFINE_enum("scale", "cpu", ["smoke", "cpu", "full"], "Network/clip size.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per measurement (after one warm-up).")
_VARIANTS = flags.DEFINE_list("variants", ["convlstm", "new", "a", "b", "c", "d"],
                              "Variants to time, in this order (the first is the baseline).")


def _time(fn, *args, repeats):
  jax.block_until_ready(fn(*args))  # compile + warm-up
  start = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / repeats


def main(argv):
  del argv
  base = config.get_config(_SCALE.value)
  base.seeds = [0]
  rows = []
  print(f"device: {jax.devices()[0].device_kind}; {model.check_network(base)} network; clips "
        f"{base.batch_size}×{base.num_frames}×{base.size}×{base.size}×3")
  for variant in _VARIANTS.value:
    cfg = base.copy_and_resolve_references()
    cfg.model, cfg.variant = "convlstm_net", variant
    init, step, _ = train.make_train(cfg)
    state = init(jax.random.key(0))
    clips = jax.random.uniform(jax.random.key(1), (cfg.batch_size, cfg.num_frames, cfg.size, cfg.size, 3))
    fwd = jax.jit(lambda p, s, x, cfg=cfg: train.network_logits(p, s, x, cfg)[0])
    train_step = jax.jit(step)
    t_inf = _time(fwd, state.params, state.bn_state, clips, repeats=_REPEATS.value)
    t_train = _time(lambda s: train_step(s, jnp.int32(0))[0], state, repeats=_REPEATS.value)
    rows.append((variant, cfg.batch_size / t_train, cfg.batch_size / t_inf,
                 model.cell_param_count(state.params)))
    print(f"{variant}: train {rows[-1][1]:.2f} clips/s, inference {rows[-1][2]:.1f} clips/s",
          flush=True)  # as it goes: a long GPU run keeps what it measured
  ref_train, ref_inf = rows[0][1], rows[0][2]
  print(f"| variant | cell params | train clips/s | × {rows[0][0]} | inference clips/s | "
        f"× {rows[0][0]} |")
  print("|---|---|---|---|---|---|")
  for v, tr, inf, n in rows:
    print(f"| {v} | {n:,} | {tr:.2f} | {tr / ref_train:.2f} | {inf:.1f} | {inf / ref_inf:.2f} |")


if __name__ == "__main__":
  app.run(main)
