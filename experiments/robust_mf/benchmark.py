"""Speed of RMFNL's sparse path (Yao & Kwok, NeurIPS 2018) against baselines measured in the same run.

1. RMFNL sparse (COO, O(|Ω| r) per APG iteration) vs RMF-MM dense (O(m n r)) run with identical
   settings to the same objective, on problems of growing m·n/|Ω|.
2. One sparse APG iteration in JAX vs the same iteration written with scipy.sparse CSR products.
3. Time per APG iteration at |Ω| and 2|Ω| (linearity).
4. A MovieLens-10M-sized synthetic problem (69,878 × 10,677, 10M entries): time per APG iteration
   and a few MM steps.

  python experiments/robust_mf/benchmark.py --sizes=200,400,800 --big_nnz=10000000

Recorded run (defaults, 2 shared CPU cores, load ≈ 4, 2 min 11 s wall in all):

  m=n  |Ω|    m·n/|Ω|  dense s  sparse s  ratio  (both runs hit 30 MM steps × 200 APG iterations)
  200  8000   5        0.83     2.28      0.37   H 4501.9 / 4501.7
  400  16000  10       2.65     4.25      0.62   H 9045.6 / 9044.3
  800  32000  20       12.05    7.74      1.56   H 18075.7 / 18551.8
  one APG iteration at |Ω| = 1M: scipy.sparse 77.9 ms, JAX 66.2 ms (×1.18)
  |Ω| 1M → 2M: 24.0 → 46.3 ms per APG iteration (×1.93)
  MovieLens-10M-sized (69,878 × 10,677, |Ω| = 10M): 0.240 s per APG iteration; 3 MM steps
  (60 APG iterations, compile included) 23.8 s
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from absl import app, flags

from jaxpapers.robust_mf import data, reproductions, rmfnl

_SIZES = flags.DEFINE_list("sizes", ["200", "400", "800"], "m = n of the sparse-vs-dense runs.")
_NNZ_PER_ROW = flags.DEFINE_integer("nnz_per_row", 40, "Observed entries per row (fixed).")
_BIG_NNZ = flags.DEFINE_integer("big_nnz", 10_000_000, "|Ω| of the MovieLens-10M-sized problem "
                                "(0 to skip).")
_LIN_NNZ = flags.DEFINE_integer("lin_nnz", 1_000_000, "|Ω| of the linearity check.")
_SECTIONS = flags.DEFINE_list("sections", ["dense", "scipy", "linear", "big"],
                              "Which parts to run.")


def _time(fn):
  jax.block_until_ready(fn())  # compile + warm-up
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - start


def sparse_vs_dense():
  print("## RMFNL ℓ1 sparse vs dense layout (same solver and relaxed-MM settings, compile excluded;")
  print("## RMF-MM itself (LADMPSAP) is compared in experiments/robust_mf/rmf_mm_benchmark.py)")
  print("Both runs use the same relaxed-MM schedule, but float rounding makes their early-stopping")
  print("points differ, so the per-APG-iteration time ratio is the like-for-like figure.")
  print("m=n    |Ω|      m·n/|Ω|  dense s  sparse s  ratio  it_dense it_sparse ms/it d  ms/it s"
        "  it-ratio  H_dense     H_sparse")
  for m in map(int, _SIZES.value):
    density = min(0.5, _NNZ_PER_ROW.value / m)
    p = data.synthetic(jax.random.key(0), m, m, 5, density=density, outlier_ratio=0.1)
    key = jax.random.key(1)
    kw = dict(max_outer=30, max_inner=200, inner_tol=1e-4, outer_tol=1e-4)
    dense = data.obs_lib.to_dense(p.train)
    rd, td = _time(lambda: rmfnl.fit_dense_l1(key, dense, 5, check_every=5, **kw))
    rs, ts = _time(lambda: rmfnl.fit(key, p.train, 5, "l1", rho0=0.004, **kw))
    hd = float(rd.objectives[int(rd.num_steps)])
    hs = float(rs.objectives[int(rs.num_steps)])
    itd, its = int(rd.apg_iterations.sum()), int(rs.apg_iterations.sum())
    pd, ps = 1e3 * td / max(itd, 1), 1e3 * ts / max(its, 1)
    print(f"{m:<6d} {p.train.nnz:<8d} {m * m / p.train.nnz:<8.1f} {td:<8.3f} {ts:<9.3f} "
          f"{td / ts:<6.2f} {itd:<8d} {its:<9d} {pd:<8.3f} {ps:<8.3f} {pd / ps:<9.2f} "
          f"{hd:<11.2f} {hs:.2f}")


def scipy_iteration(rows, cols, vals, shape, u, v, weights, row_curv, col_curv, lam, step):
  """One APG step (∇D + clip) with scipy.sparse CSR products: the NumPy/SciPy baseline."""
  csr = sp.csr_matrix((vals, (rows, cols)), shape=shape)
  resid = vals

  def it(s):
    # (data, indices, indptr) reuses the COO order: valid because (rows, cols) are sorted.
    s_csr = sp.csr_matrix((s, csr.indices, csr.indptr), shape=shape)
    du = (s_csr @ v - lam * u) / row_curv[:, None]
    dv = (s_csr.T @ u - lam * v) / col_curv[:, None]
    grad = resid - np.einsum("ij,ij->i", du[rows], v[cols]) - np.einsum("ij,ij->i", u[rows],
                                                                         dv[cols])
    return np.clip(s + step * grad, -weights, weights)

  return it


def jax_vs_scipy(nnz=1_000_000, m=20_000, n=5_000):
  print(f"\n## one sparse APG iteration, |Ω| = {nnz:,}: JAX (jit, segment_sum) vs scipy.sparse")
  rng = np.random.default_rng(0)
  flat = np.unique(rng.integers(0, m * n, int(nnz * 1.05)))[:nnz]
  rows, cols = (flat // n).astype(np.int32), (flat % n).astype(np.int32)  # sorted by row
  vals = rng.normal(size=rows.size)
  u, v = rng.normal(size=(m, 5)), rng.normal(size=(n, 5))
  obs = data.obs_lib.SparseObservations(jnp.asarray(rows), jnp.asarray(cols),
                                        jnp.asarray(vals, jnp.float32), (m, n))
  sur = rmfnl.build_surrogate(obs, jnp.asarray(u, jnp.float32), jnp.asarray(v, jnp.float32),
                              rmfnl.default_lambda((m, n)), "l1")
  it = scipy_iteration(rows, cols, vals.astype(np.float32), (m, n), u.astype(np.float32),
                       v.astype(np.float32), np.asarray(sur.weights), np.asarray(sur.row_curv),
                       np.asarray(sur.col_curv), float(sur.lam), 1e-3)
  s = np.zeros(rows.size, np.float32)
  it(s)
  start = time.perf_counter()
  for _ in range(5):
    s = it(s)
  t_scipy = (time.perf_counter() - start) / 5
  step = jax.jit(lambda s, obs, sur: jnp.clip(s + 1e-3 * rmfnl.dual_grad(obs, sur, s),
                                              -sur.weights, sur.weights))
  sj = jax.block_until_ready(step(jnp.zeros(rows.size, jnp.float32), obs, sur))
  start = time.perf_counter()
  for _ in range(5):
    sj = step(sj, obs, sur)
  jax.block_until_ready(sj)
  t_jax = (time.perf_counter() - start) / 5
  print(f"scipy {1e3 * t_scipy:.1f} ms  jax {1e3 * t_jax:.1f} ms  speed-up ×{t_scipy / t_jax:.2f}")


def linearity():
  base = _LIN_NNZ.value
  print(f"\n## time per APG iteration vs |Ω| ({base:,} vs {2 * base:,})")
  key = jax.random.key(0)
  t1, t2 = reproductions.iteration_seconds(
      [reproductions.make_iteration(key, 20_000, 5_000, base),
       reproductions.make_iteration(key, 20_000, 5_000, 2 * base)])
  print(f"{1e3 * t1:.1f} ms -> {1e3 * t2:.1f} ms: ×{t2 / t1:.2f} (linear: ≤ 2.3)")


def movielens_10m_sized():
  nnz = _BIG_NNZ.value
  if nnz <= 0:
    return
  m, n = 69_878, 10_677
  print(f"\n## MovieLens-10M-sized synthetic problem: {m:,} × {n:,}, |Ω| = {nnz:,}, r = 5")
  start = time.perf_counter()
  ks = jax.random.split(jax.random.key(0), 7)
  # Indices drawn with replacement (a few repeated pairs are harmless for timing and fitting).
  rows = jax.random.randint(ks[0], (nnz,), 0, m)
  cols = jax.random.randint(ks[1], (nnz,), 0, n)
  u, v = jax.random.normal(ks[2], (m, 5)), jax.random.normal(ks[3], (n, 5))
  clean = jnp.sum(u[rows] * v[cols], axis=-1)
  out = jax.random.uniform(ks[4], (nnz,)) < 0.1
  vals = clean + 0.1 * jax.random.normal(ks[5], (nnz,)) + jnp.where(
      out, jax.random.uniform(ks[6], (nnz,), minval=-10, maxval=10), 0.0)
  obs = data.obs_lib.SparseObservations(rows, cols, jax.block_until_ready(vals), (m, n))
  print(f"generated in {time.perf_counter() - start:.1f} s")
  key = jax.random.key(1)
  (t,) = reproductions.iteration_seconds([reproductions.make_iteration(key, m, n, nnz)], 3)
  print(f"APG iteration: {t:.3f} s")
  start = time.perf_counter()
  res = jax.block_until_ready(rmfnl.fit(key, obs, 5, "l1", rho0=0.004, max_outer=3,
                                        max_inner=20, inner_tol=1e-3))
  sec = time.perf_counter() - start
  h = np.asarray(res.objectives)[: int(res.num_steps) + 1]
  print(f"3 MM steps ({int(res.apg_iterations.sum())} APG iterations, compile included): "
        f"{sec:.1f} s; objective {h[0]:.4g} -> {h[-1]:.4g}")


def main(argv):
  del argv
  print(f"devices: {jax.devices()}")
  parts = {"dense": sparse_vs_dense, "scipy": jax_vs_scipy, "linear": linearity,
           "big": movielens_10m_sized}
  for name in _SECTIONS.value:
    parts[name]()


if __name__ == "__main__":
  app.run(main)
