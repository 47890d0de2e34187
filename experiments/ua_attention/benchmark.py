"""Throughput of uncertainty-aware attention (Heo et al., NeurIPS 2018) on this machine.

Measured in one run, so the ratios compare like with like:

* training: sequences/s of the jitted ``lax.scan`` epoch (UA, batch 100);
* MC inference with S = 30 samples: one call with the samples run by ``lax.map``
  (``mc_predict(method="map")``, the default), vmapped over keys (``method="vmap"``) or folded
  into the batch axis (``method="fold"``),
  against a Python loop of 30 jitted single-sample calls, and against a straightforward NumPy
  forward pass looped 30 times (checked to agree with the JAX model on the mean-noise pass).

  python experiments/ua_attention/benchmark.py --num_patients=500 --visits=24 --features=77
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxpapers.ua_attention import data as ua_data
from jaxpapers.ua_attention import model as ua_model
from jaxpapers.ua_attention import train as ua_train

_N = flags.DEFINE_integer("num_patients", 500, "Sequences per batch of inference / epoch.")
_T = flags.DEFINE_integer("visits", 24, "Visits per sequence (24 = 2-hourly PhysioNet).")
_D = flags.DEFINE_integer("features", 77, "Inputs per visit (77 = PhysioNet features).")
_S = flags.DEFINE_integer("samples", 30, "MC samples.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (best is reported).")


def _best(fn, repeats):
  fn()  # compile / warm up
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return min(times)


def _sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def _softplus(a):
  return np.logaddexp(0.0, a)


def numpy_forward(params, x, mask, rng=None, dropout=None):
  """Straightforward NumPy UA forward pass; ``rng`` draws the attention and output noise."""
  p = jax.tree.map(np.asarray, params)
  n, t, _ = x.shape
  v = x @ p["embedding"]["kernel"]
  if dropout is not None:
    v = v * (rng.uniform(size=v.shape) < dropout[0]) / dropout[0]
  cells = p["rnn"]["step"]
  hid = cells["alpha_cell"]["hr"]["kernel"].shape[0]
  outs = {}
  for name in ("alpha_cell", "beta_cell"):
    c = cells[name]
    h = np.zeros((n, hid), np.float32)
    ys = np.zeros((n, t, hid), np.float32)
    for step in reversed(range(t)):
      xt = v[:, step]
      r = _sigmoid(xt @ c["ir"]["kernel"] + c["ir"]["bias"] + h @ c["hr"]["kernel"])
      z = _sigmoid(xt @ c["iz"]["kernel"] + c["iz"]["bias"] + h @ c["hz"]["kernel"])
      cand = np.tanh(xt @ c["in"]["kernel"] + c["in"]["bias"]
                     + r * (h @ c["hn"]["kernel"] + c["hn"]["bias"]))
      new = (1 - z) * cand + z * h
      m = mask[:, step, None]
      h = np.where(m, new, h)
      ys[:, step] = h * m
    outs[name] = ys
  g, hh = outs["alpha_cell"], outs["beta_cell"]
  if dropout is not None:
    g = g * (rng.uniform(size=g.shape) < dropout[1]) / dropout[1]
    hh = hh * (rng.uniform(size=hh.shape) < dropout[1]) / dropout[1]
  a_mu = (g @ p["alpha_mu"]["kernel"] + p["alpha_mu"]["bias"])[..., 0]
  b_mu = hh @ p["beta_mu"]["kernel"] + p["beta_mu"]["bias"]
  if rng is not None:
    a_sig = _softplus(g @ p["alpha_sigma"]["kernel"] + p["alpha_sigma"]["bias"])[..., 0]
    b_sig = _softplus(hh @ p["beta_sigma"]["kernel"] + p["beta_sigma"]["bias"])
    a_mu = a_mu + a_sig * rng.standard_normal(a_mu.shape)
    b_mu = b_mu + b_sig * rng.standard_normal(b_mu.shape)
  a_mu = np.where(mask, a_mu, -np.inf)
  alpha = np.exp(a_mu - a_mu.max(1, keepdims=True))
  alpha = alpha / alpha.sum(1, keepdims=True)
  ctx = np.sum(alpha[..., None] * np.tanh(b_mu) * v, axis=1)
  if dropout is not None:
    ctx = ctx * (rng.uniform(size=ctx.shape) < dropout[2]) / dropout[2]
  return (ctx @ p["output"]["kernel"] + p["output"]["bias"])[:, 0]


def main(argv):
  del argv
  n, t, d, s = _N.value, _T.value, _D.value, _S.value
  print(f"device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s); "
        f"N={n}, T={t}, D={d}, S={s}")
  syn = ua_data.make_synthetic_ehr(jax.random.key(0), n, t, d, min_visits=min(3, t))
  x, mask, y = syn.x, syn.mask, syn.y
  model = ua_model.RetainModel(variant="ua")
  params = ua_model.init_params(jax.random.key(1), model, x[:2], mask[:2])

  # Sanity: the NumPy baseline computes the same function (mean-noise, no dropout).
  ref = jax.jit(lambda p: ua_model.apply_model(jax.random.key(0), model, p, x, mask,
                                               sample=False).logit)(params)
  np_logit = numpy_forward(params, np.asarray(x), np.asarray(mask))
  np.testing.assert_allclose(np_logit, np.asarray(ref), rtol=1e-3, atol=1e-4)

  # Training throughput.
  opt = ua_train._adam(1e-4)
  state = ua_train.TrainState(params, opt.init(params), jnp.zeros((), jnp.int32))

  def epoch():
    out = ua_train.train_epoch(jax.random.key(2), state, x, mask, y, model=model, optimizer=opt,
                               batch_size=100, weight_decay=0.002)
    jax.block_until_ready(out)

  t_train = _best(epoch, _REPEATS.value)
  seqs = (n // 100) * 100
  print(f"training: {seqs / t_train:,.0f} sequences/s ({t_train * 1e3:.1f} ms per epoch of {seqs})")

  # MC inference.
  vmapped = jax.jit(lambda k: ua_model.mc_predict(k, model, params, x, mask, num_samples=s,
                                                  method="vmap").prob)
  mapped = jax.jit(lambda k: ua_model.mc_predict(k, model, params, x, mask, num_samples=s,
                                                 method="map").prob)
  folded = jax.jit(lambda k: ua_model.mc_predict(k, model, params, x, mask, num_samples=s,
                                                 method="fold").prob)
  single = jax.jit(lambda k: jax.nn.sigmoid(
      ua_model.apply_model(k, model, params, x, mask, dropout=True, sample=True).logit))
  keys = jax.random.split(jax.random.key(3), s)

  def loop():
    probs = [single(k) for k in keys]
    jax.block_until_ready(jnp.mean(jnp.stack(probs), 0))

  rng = np.random.default_rng(0)
  xn, mn = np.asarray(x), np.asarray(mask)

  def numpy_loop():
    np.mean([_sigmoid(numpy_forward(params, xn, mn, rng, (0.95, 0.75, 0.95))) for _ in range(s)], 0)

  t_vmap = _best(lambda: jax.block_until_ready(vmapped(jax.random.key(4))), _REPEATS.value)
  t_map = _best(lambda: jax.block_until_ready(mapped(jax.random.key(4))), _REPEATS.value)
  t_fold = _best(lambda: jax.block_until_ready(folded(jax.random.key(4))), _REPEATS.value)
  t_loop = _best(loop, _REPEATS.value)
  t_np = _best(numpy_loop, 1)
  print(f"MC inference, S={s} (sequences/s, time per {n} sequences):")
  for name, t_ in (("one call, samples in lax.map (default)", t_map),
                   ("one call, samples vmapped over keys", t_vmap),
                   ("one call, samples folded into the batch", t_fold),
                   (f"Python loop of {s} jitted calls", t_loop),
                   (f"NumPy forward looped {s} times", t_np)):
    print(f"  {name:44s} {n / t_:10,.0f} seq/s  {t_ * 1e3:9.1f} ms  "
          f"speed-up vs loop {t_loop / t_:5.2f}x, vs NumPy {t_np / t_:5.2f}x")


if __name__ == "__main__":
  app.run(main)
