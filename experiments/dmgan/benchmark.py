"""Generator steps per second of DMWGAN-PL on the MNIST architecture (stacked generators).

Khayatkhoei, Singh & Elgammal, NeurIPS 2018. A generator step = sample c ~ r and z, run the
stacked generators, the critic and the encoder head, backpropagate ``-D + λ CE`` and apply Adam
(batch 32). With ``--full_iteration`` also one whole iteration (5 critic steps + G/Q/prior steps).
The baseline, timed in the same run, is one full-width generator (WGAN-GP); the issue's target
is that n_g = 20 generators at 1/4 width cost ≤ 2x that. Also times the trace+compile of the
stacked step against a Python loop over generators (whose program grows with n_g).

The stack runs only the generator each sample selected (``networks.generate``: per-sample
gathered kernels for the transposed convolutions, one masked GEMM per dense layer); transposed
convolutions run as stride-1 sub-pixel convolutions. ``--explain`` also times what these replace:
the full-width baseline with ``lax.conv_transpose`` and the n_g = 20 stack vmapped over all
generators (grouped convolutions, whose backward pass is very slow on XLA:CPU).

  python experiments/dmgan/benchmark.py --steps=4 --repeats=3 [--full_iteration] [--explain]
"""

import time

import jax
import jax.numpy as jnp
import optax
from absl import app, flags

from jaxpapers._src.loop import make_chunk
from jaxpapers.dmgan import core, data, networks

_STEPS = flags.DEFINE_integer("steps", 4, "Generator iterations per timed chunk.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed chunks (best is reported).")
_NG = flags.DEFINE_list("num_generators", ["1", "10", "20"], "n_g values at 1/4 width.")
_EXPLAIN = flags.DEFINE_bool("explain", False, "Also time the replaced implementations "
                             "(lax.conv_transpose baseline, all-generators vmapped stack).")
_FULL = flags.DEFINE_bool("full_iteration", False, "Also time full iterations (5 critic steps + "
                          "G/Q/prior steps); slow on CPU, where the critic dominates.")


class _LaxDeconvGenerator(networks.ConvGenerator):
  """The image generator with ``lax.conv_transpose`` (input-dilated convolutions)."""

  def apply(self, params, z):
    s_h, s_w, chans, _ = self._dims()
    h = jax.nn.relu(networks.dense(params["dense0"], z))
    h = jax.nn.relu(networks.dense(params["dense1"], h)).reshape(z.shape[0], s_h, s_w, chans[0])
    for i in range(len(chans)):
      p = params[f"deconv{i}"]
      h = jax.lax.conv_transpose(h, p["w"], (2, 2), "SAME", dimension_numbers=networks._DN) + p["b"]
      h = jnp.tanh(h) if i == len(chans) - 1 else jax.nn.relu(h)
    return h


class _AllGenerators:
  """A generator without ``apply_selected``: ``networks.generate`` vmaps it over the whole stack
  (every generator on every sample, then per-sample selection)."""

  def __init__(self, generator):
    self.init, self.apply, self.latent_dim = generator.init, generator.apply, generator.latent_dim


def _time_generator_updates(cfg, generator, critic):
  # The generator update alone: G_c(z) for c ~ r, -D + λ CE(Q, c), its gradient and Adam.
  g_opt = cfg.optimizers()[0]
  gen = networks.init_generators(jax.random.key(0), generator, cfg.num_generators)
  crit = critic.init(jax.random.key(1))
  enc = networks.init_encoder(jax.random.key(2), critic.feature_dim, cfg.num_generators)
  logits = jnp.zeros((cfg.num_generators,))

  def body(carry, key):
    g, s = carry
    kz, kc = jax.random.split(key)
    z = core.sample_latents(kz, cfg.batch_size)
    c = core.sample_components(kc, logits, cfg.batch_size)
    grads = jax.grad(lambda p: core.generator_loss(p, generator, crit, critic, enc, z, c,
                                                   cfg.mi_weight)[0])(g)
    u, s = g_opt.update(grads, s, g)
    return (optax.apply_updates(g, u), s), None

  run = jax.jit(lambda carry, key: jax.lax.scan(body, carry, jax.random.split(key, _STEPS.value))[0])
  carry = (gen, g_opt.init(gen))
  t0 = time.perf_counter()
  compiled = run.lower(carry, jax.random.key(3)).compile()
  compile_s = time.perf_counter() - t0
  carry = compiled(carry, jax.random.key(3))
  jax.block_until_ready(carry)
  best, best_cpu = float("inf"), float("inf")
  for r in range(_REPEATS.value):
    t0, c0 = time.perf_counter(), time.process_time()
    carry = compiled(carry, jax.random.key(4 + r))
    jax.block_until_ready(carry)
    best = min(best, time.perf_counter() - t0)
    best_cpu = min(best_cpu, time.process_time() - c0)
  return _STEPS.value / best, _STEPS.value / best_cpu, compile_s


def _time_iterations(cfg, generator, critic, sample):
  step = core.make_train_step(cfg, generator, critic, sample)
  chunk = make_chunk(step, _STEPS.value)
  state = core.init_state(jax.random.key(0), cfg, generator, critic)
  t0 = time.perf_counter()
  compiled = chunk.lower(state, jnp.int32(0)).compile()
  compile_s = time.perf_counter() - t0
  state, _ = compiled(state, jnp.int32(0))
  jax.block_until_ready(state)
  best, best_cpu = float("inf"), float("inf")
  for r in range(_REPEATS.value):
    t0, c0 = time.perf_counter(), time.process_time()
    state, _ = compiled(state, jnp.int32((r + 1) * _STEPS.value))
    jax.block_until_ready(state)
    best = min(best, time.perf_counter() - t0)
    best_cpu = min(best_cpu, time.process_time() - c0)
  return _STEPS.value / best, _STEPS.value / best_cpu, compile_s


def _loop_generate_trace_seconds(n_g, generator):
  # A per-generator Python loop: trace cost grows with n_g (what the stacked pytree avoids).
  params = networks.init_generators(jax.random.key(0), generator, n_g)
  z = jnp.zeros((32, 100))
  c = jnp.zeros((32,), jnp.int32)

  def looped(p, z, c):
    outs = jnp.stack([generator.apply(jax.tree.map(lambda a: a[g], p), z) for g in range(n_g)])
    return outs[c, jnp.arange(z.shape[0])]

  t0 = time.perf_counter()
  jax.jit(looped).lower(params, z, c)
  loop_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  jax.jit(lambda p, z, c: networks.generate(generator, p, z, c)).lower(params, z, c)
  return loop_s, time.perf_counter() - t0


def main(argv):
  del argv
  print(f"device: {jax.devices()[0].device_kind}; batch 32; wall-clock, best of "
        f"{_REPEATS.value} chunks of {_STEPS.value}", flush=True)
  g_full, critic = networks.mnist_models(width=1.0)
  g_q, _ = networks.mnist_models(width=0.25)
  base_cfg = core.variant_config("wgan_gp")
  base, base_cpu, base_c = _time_generator_updates(base_cfg, g_full, critic)
  print(f"generator update, baseline 1 full-width generator: {base:.2f} steps/s wall, "
        f"{base_cpu:.2f} per CPU-second (compile {base_c:.1f} s)", flush=True)
  for n in map(int, _NG.value):
    cfg = core.variant_config("dmwgan_pl", n) if n > 1 else core.variant_config("wgan_gp")
    rate, rate_cpu, comp = _time_generator_updates(cfg, g_q, critic)
    print(f"generator update, n_g={n:2d} at 1/4 width: {rate:.2f} steps/s wall, cost "
          f"{base / rate:.2f}x baseline wall, {base_cpu / rate_cpu:.2f}x CPU time "
          f"(compile {comp:.1f} s)", flush=True)
  if _EXPLAIN.value:
    lax_g = _LaxDeconvGenerator(g_full.out_shape, g_full.latent_dim, g_full.hidden, g_full.channels,
                                g_full.width, g_full.kernel)
    rate, rate_cpu, _ = _time_generator_updates(base_cfg, lax_g, critic)
    print(f"explain: baseline with lax.conv_transpose: {rate:.2f} steps/s wall, "
          f"{base / rate:.2f}x / {base_cpu / rate_cpu:.2f}x the sub-pixel baseline's wall/CPU time",
          flush=True)
    rate, rate_cpu, _ = _time_generator_updates(core.variant_config("dmwgan_pl", 20),
                                                _AllGenerators(g_q), critic)
    print(f"explain: n_g=20 vmapped over all generators: {rate:.3f} steps/s wall, cost "
          f"{base / rate:.2f}x baseline wall, {base_cpu / rate_cpu:.2f}x CPU time", flush=True)
  if _FULL.value:
    x = jax.random.uniform(jax.random.key(1), (256, 28, 28, 1), minval=-1, maxval=1)
    sample = data.array_sampler(x)
    base, base_cpu, _ = _time_iterations(base_cfg, g_full, critic, sample)
    print(f"full iteration, baseline 1 full-width generator: {base:.3f} it/s wall", flush=True)
    for n in map(int, _NG.value):
      cfg = core.variant_config("dmwgan_pl", n) if n > 1 else core.variant_config("wgan_gp")
      rate, rate_cpu, _ = _time_iterations(cfg, g_q, critic, sample)
      print(f"full iteration, n_g={n:2d} at 1/4 width: {rate:.3f} it/s wall, cost "
            f"{base / rate:.2f}x baseline wall, {base_cpu / rate_cpu:.2f}x CPU time", flush=True)
  for n in (1, 20):
    loop_s, vmap_s = _loop_generate_trace_seconds(n, g_q)
    print(f"trace of generate, n_g={n:2d}: python loop {loop_s * 1e3:.0f} ms, stacked "
          f"{vmap_s * 1e3:.0f} ms", flush=True)


if __name__ == "__main__":
  app.run(main)
