"""One call of our exact volume sampler beside DPPy's Gram-Schmidt projection-DPP sampler.

  pip install -e '.[bench]'   # dppy>=0.3.3
  python experiments/volume_sampling/dppy_benchmark.py --ns=1000,10000,100000 --d=10 \
      --reps=30 --out=/tmp/dppy_benchmark.json

Both sample the same law: a size-``d`` subset ``S`` with ``P(S) ∝ det(X_S^T X_S)`` (volume
sampling at ``k = d``), i.e. the projection DPP with correlation kernel ``X (X^T X)^{-1} X^T``.
DPPy: ``FiniteDPP('correlation', projection=True, A_zono=X.T).sample_exact(mode='GS')``; its
first call computes a QR of ``X`` and caches the eigenvectors, so the ``dppy_gs`` column (every
later call on the same object) is DPPy's cost *without* the ``O(n d^2)`` basis, and
``dppy_gs_fresh`` (a new object per call) is its cost with it. Ours is one call of the public
``samplers.dpp_volume_sample(key, X, d)`` (``ours``: validation + basis + chain rule, the
compiled program cached after the first call) and of ``jax.jit(dpp_volume_sample)``
(``ours_jit``). Each repetition times ``ours``, ``ours_jit`` and ``dppy_gs`` back to back (the
order rotates), so they see the same machine load; a second interleaved pass times ``ours``
beside ``dppy_gs_fresh`` (whose SciPy QR leaves busy BLAS threads behind); medians over
``--reps``. The first (compiling) call of
``ours`` is reported separately as ``compile_ms``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import time
import warnings

import jax
import numpy as np
from absl import app, flags

from jaxpapers.volume_sampling import samplers

_NS = flags.DEFINE_list("ns", ["1000", "10000", "100000"], "Numbers of rows n.")
_D = flags.DEFINE_integer("d", 10, "Number of columns d (sample size k = d).")
_REPS = flags.DEFINE_integer("reps", 30, "Interleaved timing repetitions (median is reported).")
_X64 = flags.DEFINE_bool("x64", True, "Run ours in float64 like DPPy.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the design and of both samplers.")
_OUT = flags.DEFINE_string("out", None, "Write a JSON record of the table here.")


def _import_dppy():
  try:
    from dppy.finite_dpps import FiniteDPP
  except ImportError:
    return None, None
  try:
    version = importlib.metadata.version("dppy")
  except importlib.metadata.PackageNotFoundError:
    version = "unknown"
  return FiniteDPP, version


def _timed(fn):
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def bench(n: int, d: int, reps: int, seed: int, FiniteDPP) -> dict:
  rng = np.random.default_rng(seed)
  X_np = rng.standard_t(3.0, (n, d))  # heavy tails: very non-uniform leverage scores
  X = jax.numpy.asarray(X_np)
  keys = list(jax.random.split(jax.random.key(seed), reps + 1))  # indexed outside the timing
  rs = np.random.RandomState(seed)

  compile_s = _timed(lambda: jax.block_until_ready(samplers.dpp_volume_sample(keys[-1], X, d)))
  jitted = jax.jit(samplers.dpp_volume_sample, static_argnums=2)
  jax.block_until_ready(jitted(keys[-1], X, d))
  dpp = FiniteDPP("correlation", projection=True, A_zono=X_np.T)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # DPPy warns that A_zono is meant for its MCMC sampler
    first = dpp.sample_exact(mode="GS", random_state=rs)
  assert len(first) == d

  def fresh():
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      FiniteDPP("correlation", projection=True, A_zono=X_np.T).sample_exact(
          mode="GS", random_state=rs)

  runs = {
      "ours": lambda r: jax.block_until_ready(samplers.dpp_volume_sample(keys[r], X, d)),
      "ours_jit": lambda r: jax.block_until_ready(jitted(keys[r], X, d)),
      "dppy_gs": lambda r: dpp.sample_exact(mode="GS", random_state=rs),
  }
  # Two interleaved passes: DPPy's fresh object runs SciPy's (multi-threaded) QR, whose idle
  # BLAS threads would otherwise tax whichever timed call comes next; pass 2 pairs it with
  # ours alone.
  times = _interleaved(runs, reps)
  dpp.flush_samples()
  times.update(_interleaved({"ours_pass2": runs["ours"], "dppy_gs_fresh": lambda r: fresh()}, reps))
  med = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
  return {"n": n, "d": d, "reps": reps, "compile_ms": 1e3 * compile_s,
          **{f"{name}_ms": v for name, v in med.items()},
          "ratio_dppy_over_ours": med["dppy_gs"] / med["ours"],
          "ratio_dppy_over_ours_jit": med["dppy_gs"] / med["ours_jit"],
          "ratio_dppy_fresh_over_ours": med["dppy_gs_fresh"] / med["ours_pass2"]}


def _interleaved(runs, reps):
  """``{name: [seconds] * reps}``; each repetition runs every entry once, order rotating."""
  names = list(runs)
  times = {name: [] for name in names}
  for r in range(reps):
    for j in range(len(names)):
      name = names[(r + j) % len(names)]
      times[name].append(_timed(lambda name=name, r=r: runs[name](r)))
  return times


def main(argv):
  del argv
  FiniteDPP, dppy_version = _import_dppy()
  if FiniteDPP is None:
    sys.exit("dppy is not importable: install the optional extra, pip install -e '.[bench]' "
             "(or pip install 'dppy>=0.3.3'), then rerun this benchmark.")
  jax.config.update("jax_enable_x64", _X64.value)  # process-wide: no per-call context switch
  header = {
      "device": jax.devices()[0].device_kind, "platform": platform.platform(),
      "cpu_count": os.cpu_count(), "loadavg_start": list(os.getloadavg()),
      "jax": jax.__version__, "dppy": dppy_version, "numpy": np.__version__,
      "x64": _X64.value, "argv": sys.argv,
  }
  print(f"device: {header['device']}; cpus={header['cpu_count']}; load average "
        f"{header['loadavg_start'][0]:.1f}; x64={_X64.value}; jax {jax.__version__}; "
        f"dppy {dppy_version}")
  print("| n | d | ours ms | ours jit ms | DPPy GS ms | DPPy/ours | DPPy/ours jit "
        "| ours (pass 2) ms | DPPy GS fresh ms | fresh/ours | ours compile ms | reps |")
  print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  rows = []
  for n in map(int, _NS.value):
    row = bench(n, _D.value, _REPS.value, _SEED.value, FiniteDPP)
    rows.append(row)
    print(f"| {n} | {row['d']} | {row['ours_ms']:.3f} | {row['ours_jit_ms']:.3f} "
          f"| {row['dppy_gs_ms']:.3f} | {row['ratio_dppy_over_ours']:.2f} "
          f"| {row['ratio_dppy_over_ours_jit']:.2f} | {row['ours_pass2_ms']:.3f} "
          f"| {row['dppy_gs_fresh_ms']:.3f} "
          f"| {row['ratio_dppy_fresh_over_ours']:.2f} | {row['compile_ms']:.0f} "
          f"| {row['reps']} |", flush=True)
  header["loadavg_end"] = list(os.getloadavg())
  if _OUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, "w") as f:
      json.dump({**header, "rows": rows}, f, indent=2)
    print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
