"""Samples per second of our vmapped samplers vs straightforward NumPy versions of the same algorithms.

  python experiments/volume_sampling/benchmark.py --ns=10000,100000,1000000 --ds=10,50

For each (n, d) with k = 4d, times (after compilation; best of ``--repeats``):
  * ``volume_fast``: reverse iterative volume sampling with uniform proposals (Python loop in NumPy);
  * ``volume_dpp``: size-d projection DPP + uniform padding;
  * ``leveraged``: determinantal rejection sampling (s = max(k, 4d^2)) + volume-sampling k of s,
    after the one-time O(nd^2) leverage scores (timed separately as ``prepare``);
  * DPPy's projection-DPP sampler at k = d when ``dppy`` happens to be installed (optional).
Ratios are ours / NumPy in samples per second, measured in the same run on the same machine.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxpapers.volume_sampling import samplers

_NS = flags.DEFINE_list("ns", ["10000"], "Numbers of rows n.")
_DS = flags.DEFINE_list("ds", ["10"], "Numbers of columns d (k = 4d).")
_BATCH = flags.DEFINE_integer("batch", 64, "Keys per vmapped call.")
_NP_SAMPLES = flags.DEFINE_integer("numpy_samples", 3, "Samples timed for each NumPy baseline.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timing repeats (best is kept).")
_X64 = flags.DEFINE_bool("x64", True, "Run our samplers in float64 like the NumPy baselines.")
_METHODS = flags.DEFINE_list("methods", ["volume_fast", "volume_dpp", "leveraged"],
                             "Samplers to time (the NumPy volume_fast loop is slow for n >= 1e5).")


# ----------------------------------------------------------------------------- NumPy baselines


def np_fast_volume(rng, X, k, z=None):
  """Reverse iterative volume sampling with uniform proposals and Sherman-Morrison (NumPy)."""
  n, d = X.shape
  z = np.linalg.inv(X.T @ X) if z is None else z.copy()
  perm = np.arange(n)
  size = n
  stop = min(n, max(k, 2 * d))
  while size > stop:
    j = rng.integers(size)
    x = X[perm[j]]
    zx = z @ x
    h = 1.0 - x @ zx
    if rng.random() < h:
      perm[j], perm[size - 1] = perm[size - 1], perm[j]
      size -= 1
      z += np.outer(zx, zx) / h
  kept = perm[:stop]
  while len(kept) > k:  # exact steps below 2d
    g = X[kept].T @ X[kept]
    h = 1.0 - np.einsum("ij,ji->i", X[kept], np.linalg.solve(g, X[kept].T))
    h = np.clip(h, 0, None)
    kept = np.delete(kept, rng.choice(len(kept), p=h / h.sum()))
  return np.sort(kept)


def np_dpp_volume(rng, X, k, basis=None):
  """Size-d projection DPP by the chain rule plus uniform padding (NumPy)."""
  n, d = X.shape
  u = np.linalg.qr(X)[0] if basis is None else basis
  r = np.sum(u * u, axis=1)
  chosen = np.zeros((d, d))
  core = []
  for j in range(d):
    p = np.clip(r, 0, None)
    i = rng.choice(n, p=p / p.sum())
    v = u[i] - chosen[:, :j] @ (chosen[:, :j].T @ u[i])
    c = v / np.linalg.norm(v)
    chosen[:, j] = c
    r = r - (u @ c) ** 2
    r[i] = 0.0
    core.append(i)
  rest = np.setdiff1d(np.arange(n), core)
  return np.sort(np.concatenate([core, rng.choice(rest, k - d, replace=False)]))


def np_prepare(X):
  q_mat, r = np.linalg.qr(X)
  q = np.sum(q_mat * q_mat, axis=1) / X.shape[1]
  return q, np.cumsum(q), 2 * np.sum(np.log(np.abs(np.diag(r))))


def np_leveraged(rng, X, k, prep):
  """Determinantal rejection sampling, then volume-sample k of the s rows by the DPP route."""
  q, cdf, logdet = prep
  n, d = X.shape
  s = max(k, 4 * d * d)
  while True:
    idx = np.minimum(np.searchsorted(cdf, rng.random(s) * cdf[-1], side="right"), n - 1)
    rows = X[idx] / np.sqrt(q[idx])[:, None]
    sign, ld = np.linalg.slogdet(rows.T @ rows / s)
    if sign > 0 and np.log(rng.random()) < ld - logdet:
      break
  return idx[np_dpp_volume(rng, rows, k)]


# ----------------------------------------------------------------------------- timing


def _best(fn, repeats):
  best = np.inf
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - t)
  return best


def bench(n, d, batch, np_samples, repeats):
  k = 4 * d
  rng = np.random.default_rng(0)
  X_np = rng.standard_t(3.0, (n, d))
  X = jnp.asarray(X_np)
  keys = jax.random.split(jax.random.key(0), batch)
  rows = []

  prepare = jax.jit(samplers.prepare_leveraged)  # under jit: no eager rank check, pure O(nd^2)
  prepare(X)
  t_prep = _best(lambda: prepare(X).q, repeats)
  t_prep_np = _best(lambda: np_prepare(X_np)[0], repeats)
  rows.append(("prepare (one-time, s)", t_prep, t_prep_np))
  state = prepare(X)
  prep = np_prepare(X_np)
  basis = np.linalg.qr(X_np)[0]
  z = np.linalg.inv(X_np.T @ X_np)

  ours = {
      "volume_fast": jax.jit(jax.vmap(lambda key, X: samplers.fast_volume_sample(key, X, k),
                                      in_axes=(0, None))),
      "volume_dpp": jax.jit(jax.vmap(lambda key, X: samplers.dpp_volume_sample(key, X, k),
                                     in_axes=(0, None))),
      "leveraged": jax.jit(jax.vmap(
          lambda key, X, st: samplers.leveraged_volume_sample(key, X, k, state=st),
          in_axes=(0, None, None))),
  }
  baselines = {
      "volume_fast": lambda: np_fast_volume(rng, X_np, k, z),
      "volume_dpp": lambda: np_dpp_volume(rng, X_np, k, basis),
      "leveraged": lambda: np_leveraged(rng, X_np, k, prep),
  }
  for name, fn in ours.items():
    if name not in _METHODS.value:
      continue
    args = (keys, X, state) if name == "leveraged" else (keys, X)
    jax.block_until_ready(fn(*args))  # compile
    t_ours = _best(lambda fn=fn, args=args: fn(*args).indices, repeats) / batch
    t_np = _best(lambda name=name: [baselines[name]() for _ in range(np_samples)],
                 1) / np_samples
    rows.append((f"{name} (per sample, s)", t_ours, t_np))
  try:
    from dppy.finite_dpps import FiniteDPP  # optional
  except ImportError:
    FiniteDPP = None
  if FiniteDPP is not None:
    dpp = FiniteDPP("correlation", projection=True, K_eig_dec=(np.ones(d), basis))
    t = time.perf_counter()
    for _ in range(np_samples):
      dpp.sample_exact(mode="GS")
    t_dppy = (time.perf_counter() - t) / np_samples
    size_d = jax.jit(jax.vmap(lambda key, X: samplers.dpp_volume_sample(key, X, d),
                              in_axes=(0, None)))
    jax.block_until_ready(size_d(keys, X))
    rows.append(("k=d vs DPPy (per sample, s)",
                 _best(lambda: size_d(keys, X).indices, repeats) / batch, t_dppy))
  return rows


def main(argv):
  del argv
  with jax.enable_x64(_X64.value):
    print(f"device: {jax.devices()[0].device_kind}; batch={_BATCH.value}; x64={_X64.value}")
    print(f"{'n':>8} {'d':>3} {'what':<28} {'ours':>10} {'numpy':>10} {'speed-up':>9}")
    for n in map(int, _NS.value):
      for d in map(int, _DS.value):
        for what, ours, base in bench(n, d, _BATCH.value, _NP_SAMPLES.value, _REPEATS.value):
          print(f"{n:>8} {d:>3} {what:<28} {ours:>10.3g} {base:>10.3g} {base / ours:>8.1f}x",
                flush=True)


if __name__ == "__main__":
  app.run(main)
