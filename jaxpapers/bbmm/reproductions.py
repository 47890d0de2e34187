"""Registered reproductions of Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process
Inference with GPU Acceleration", NeurIPS 2018 (BBMM), at CPU scale.

* ``mll_accuracy``: the BBMM log likelihood against a float64 Cholesky reference (the issue's
  synthetic protocol: d = 8, RBF ℓ = 0.5, σ² = 0.01), with our defaults and with GPyTorch's defaults.
* ``exact_gp_rmse``: an exact GP trained by BBMM reaches the test RMSE of one trained by
  Cholesky (elevators subset).
* ``speedup_vs_cholesky``: time of one MLL + gradient, BBMM vs dense Cholesky, same run (CPU).
* ``preconditioner_iterations``: the pivoted-Cholesky preconditioner cuts CG iterations.
* ``accuracy_suite``: MLL and single-draw gradient errors at default settings on every case of
  a suite (synthetic σ² grid, UCI sets, RBF / Matérn-5/2 ARD, n = 2k–10k); see
  :mod:`jaxpapers.bbmm.accuracy`.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.spatial

from jaxpapers._src import checkpoint, fileio, registry
from jaxpapers.bbmm import accuracy, kernels, likelihood, train
from jaxpapers.bbmm import cg as cg_lib
from jaxpapers.bbmm import config as config_lib
from jaxpapers.bbmm import data as data_lib
from jaxpapers.bbmm import operators as ops
from jaxpapers.bbmm import precond as precond_lib

_SEEDS = {"smoke": (0,), "cpu": (0, 1), "full": (0, 1, 2, 3, 4)}


def _real(name: str, n: int, seed: int):
  """z-scored rows of a UCI set; raises DatasetNotFoundError (the row is ``skipped``) without it.

  There is no silent fallback to synthetic data: a row never reports other data under the real
  data set's name.
  """
  key = jax.random.key(seed)
  x, y = data_lib.load_uci(name)
  idx = np.asarray(jax.random.permutation(key, x.shape[0]))[:n]
  x, y = x[idx], y[idx]
  sx = np.where(x.std(0) > 0, x.std(0), 1.0)
  return (x - x.mean(0)) / sx, (y - y.mean()) / y.std(), name


def _exact_mll_f64(x, y, lengthscale, scale, noise, with_logdet=False):
  d2 = scipy.spatial.distance.cdist(x / lengthscale, x / lengthscale, "sqeuclidean")
  k = scale * np.exp(-0.5 * d2) + noise * np.eye(x.shape[0])
  c = scipy.linalg.cho_factor(k, lower=True)
  a = scipy.linalg.cho_solve(c, y)
  logdet = 2 * float(np.sum(np.log(np.diag(c[0]))))
  mll = float(-0.5 * y @ a - 0.5 * logdet - 0.5 * len(y) * np.log(2 * np.pi))
  return (mll, logdet) if with_logdet else mll


# ----------------------------------------------------------------------------- mll_accuracy

_MLL_N = {"smoke": 400, "cpu": 2000, "full": 20000}
_MLL_DRAWS = 4


def _run_mll(scale, seeds, workdir):
  # The protocol of the GPyTorch measurement quoted in the issue: inputs uniform on [0, 1]^8,
  # RBF ℓ = 0.5, scale 1, σ² = 0.01; float32 BBMM against a float64 SciPy Cholesky.
  n = _MLL_N[scale]
  ls, sc, noise = 0.5, 1.0, 0.01
  errs_ours, errs_gpy, errs_ld, iters = [], [], [], []
  for seed in seeds:
    x, y = data_lib.synthetic(jax.random.key(seed), n, 8, lengthscale=ls, noise=noise)
    exact, exact_ld = _exact_mll_f64(np.asarray(x, np.float64), np.asarray(y, np.float64), ls,
                                     sc, noise, with_logdet=True)
    p = ops.GPParams(kernels.init_params("rbf", 8, ls, sc, jnp.float32),
                     jnp.asarray(noise, jnp.float32), jnp.zeros((), jnp.float32))
    op = ops.ExactOperator("rbf", materialize=True)
    for draw in range(_MLL_DRAWS):  # independent probe draws: the error of a single estimate
      key = jax.random.fold_in(jax.random.key(seed), draw)
      ours, info = likelihood.bbmm_mll(key, op, p, x, y, likelihood.Settings())
      gpy, _ = likelihood.bbmm_mll(key, op, p, x, y, likelihood.GPYTORCH_DEFAULTS)
      errs_ours.append(abs(float(ours) - exact) / abs(exact))
      errs_gpy.append(abs(float(gpy) - exact) / abs(exact))
      errs_ld.append(abs(float(info.logdet) - exact_ld) / abs(exact_ld))
      iters.append(int(info.num_iters))
  return {"n": n, "draws_per_seed": _MLL_DRAWS, "rel_err_ours": float(np.mean(errs_ours)),
          "rel_err_ours_max": float(np.max(errs_ours)),
          "rel_err_logdet_ours": float(np.mean(errs_ld)),
          "rel_err_gpytorch_defaults": float(np.mean(errs_gpy)), "cg_iters": iters,
          "settings": f"synthetic d=8, RBF ℓ=0.5, s=1, σ²=0.01; float32 BBMM ({likelihood.Settings()}) "
                      "vs float64 Cholesky"}


registry.register(registry.Reproduction(
    paper="bbmm", name="mll_accuracy",
    claim="BBMM's MLL matches exact Cholesky (target here: within 0.5 %, where GPyTorch's "
          "defaults are not: 2.3 % off at n = 20k, 35 % at 40k on an H100)",
    paper_value="exact up to solver tolerance (target ≤ 0.5 %)",
    run=_run_mll,
    check=lambda m, scale: m["rel_err_ours"] <= 0.005,
    summary=lambda m: (f"MLL rel. err {100 * m['rel_err_ours']:.2f} % mean, "
                       f"{100 * m.get('rel_err_ours_max', float('nan')):.2f} % max over "
                       f"{m.get('draws_per_seed', 1)} probe draws per seed (GPyTorch defaults "
                       f"{100 * m['rel_err_gpytorch_defaults']:.2f} %, same code; our log|K̂| "
                       f"{100 * m['rel_err_logdet_ours']:.2f} %) at n={m['n']}"),
    seeds=_SEEDS,
    scale_note={s: f"n = {_MLL_N[s]}, synthetic d = 8, RBF ℓ = 0.5, σ² = 0.01" for s in _MLL_N},
    run_as={"quick": "cpu"}, budget_s={"smoke": 5, "quick": 15, "cpu": 15},
))


# ----------------------------------------------------------------------------- exact_gp_rmse

# cpu: 3000 training points, more than the default preconditioner rank (1000), so BBMM is not
# trivially exact (at n ≤ rank the pivoted-Cholesky preconditioner is K̂ itself).
_RMSE = {"smoke": ("yacht", 0, 8), "cpu": ("elevators", 3000, 30), "full": ("elevators", 0, 100)}


def _run_rmse(scale, seeds, workdir):
  dataset, max_train, steps = _RMSE[scale]
  rows = []
  for seed in seeds:
    c = config_lib.get_config("smoke" if scale == "smoke" else "cpu")
    c.seed = seed
    if not data_lib_available(dataset):
      data_lib.load_uci(dataset)  # raises DatasetNotFoundError naming the folders searched
    c.max_train = max_train
    c.num_steps = steps
    c.models = ("bbmm", "cholesky")
    c.chunk_size = steps
    out = train.train_and_evaluate(c, f"{workdir}/seed{seed}")
    rows.append((out["bbmm"]["rmse"], out["cholesky"]["rmse"], out["bbmm"]["train_time_s"],
                 out["cholesky"]["train_time_s"], out["bbmm"]["nll"], out["cholesky"]["nll"],
                 out["n_train"], c.dataset))
  r = np.asarray([row[:6] for row in rows])
  return {"dataset": rows[0][7], "n_train": rows[0][6], "steps": steps,
          "nll_bbmm": float(r[:, 4].mean()), "nll_cholesky": float(r[:, 5].mean()),
          "rmse_bbmm": float(r[:, 0].mean()), "rmse_cholesky": float(r[:, 1].mean()),
          "rel_diff": float(np.mean(np.abs(r[:, 0] - r[:, 1]) / r[:, 1])),
          "train_s_bbmm": float(r[:, 2].mean()), "train_s_cholesky": float(r[:, 3].mean())}


def data_lib_available(name: str) -> bool:
  from jaxpapers._src import data as shared

  return shared.has_dataset(data_lib.DATASET_FOLDER, [data_lib.UCI_FILES[name]])


registry.register(registry.Reproduction(
    paper="bbmm", name="exact_gp_rmse",
    claim="An exact GP trained with BBMM matches the test error of one trained with Cholesky",
    paper_value="same test error as Cholesky (GPyTorch Fig. 3)",
    run=_run_rmse,
    check=lambda m, scale: m["rel_diff"] <= 0.05,
    seeds={"smoke": (0,), "cpu": (0, 1), "full": (0, 1, 2)},
    summary=lambda m: (f"RMSE {m['rmse_bbmm']:.4f} (BBMM) vs {m['rmse_cholesky']:.4f} "
                       f"(Cholesky), {100 * m['rel_diff']:.2f} % apart; {m['dataset']} "
                       f"n={m['n_train']}; NLL {m['nll_bbmm']:.3f} vs {m['nll_cholesky']:.3f}"),
    scale_note={"smoke": "yacht (197 train), 8 Adam steps",
                "cpu": "elevators, 3000 train, 30 Adam steps",
                "full": "elevators, full 64 % split, 100 steps"},
    datasets=("uci-gp-mat",), run_as={"quick": "cpu"},
    budget_s={"smoke": 10, "quick": 90, "cpu": 90},
))


# ----------------------------------------------------------------------------- speed

_SPEED_N = {"smoke": 500, "cpu": 3000, "full": 10000}


def _time(fn, *args, reps=3):
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return best


def _run_speed(scale, seeds, workdir):
  n = _SPEED_N[scale]
  ratios, t_b, t_c = [], [], []
  for seed in seeds:
    x, y, source = _real("kin40k", n, seed)
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    p = ops.GPParams(kernels.init_params("rbf", x.shape[1], 1.0, 1.0, jnp.float32),
                     jnp.asarray(0.1, jnp.float32), jnp.zeros((), jnp.float32))
    op = ops.ExactOperator("rbf", materialize=True)
    settings = likelihood.Settings()
    bb = jax.jit(jax.value_and_grad(
        lambda q, k: likelihood.bbmm_mll(k, op, q, xj, yj, settings)[0]))
    ch = jax.jit(jax.value_and_grad(lambda q: likelihood.cholesky_mll(op, q, xj, yj)))
    tb = _time(bb, p, jax.random.key(seed))
    tc = _time(ch, p)
    t_b.append(tb)
    t_c.append(tc)
    ratios.append(tc / tb)
  return {"n": n, "source": source, "t_bbmm_s": float(np.mean(t_b)),
          "t_cholesky_s": float(np.mean(t_c)), "speedup": float(np.mean(ratios)),
          "device": jax.devices()[0].platform}


PAPER_SPEEDUP = 20.0  # GPyTorch paper: BBMM up to 20× faster than Cholesky, on a GPU


def check_speed(m, scale):
  """The paper's figure is a GPU figure at its data sets' sizes: only the ``full`` tier on a GPU
  can reach it (``pass`` at ≥ 20×, else ``fail``). On a CPU, or at a smaller tier, BBMM slower
  than Cholesky is a ``fail`` and anything faster is ``inconclusive``: 20× is not testable there."""
  if scale == "smoke":
    return bool(np.isfinite(m["speedup"]))
  if not np.isfinite(m["speedup"]):
    return "fail"  # a NaN timing is never inconclusive-by-default
  if scale == "full" and m["device"] == "gpu":
    return "pass" if m["speedup"] >= PAPER_SPEEDUP else "fail"
  return "fail" if m["speedup"] < 1.0 else "inconclusive"


registry.register(registry.Reproduction(
    paper="bbmm", name="speedup_vs_cholesky",
    claim="BBMM exact-GP inference is faster than Cholesky (up to 20× on a GPU; judged against "
          "20× only on a GPU at full scale)",
    paper_value=PAPER_SPEEDUP,
    run=_run_speed,
    check=check_speed,
    summary=lambda m: (f"{m['speedup']:.2f}× ({m['t_cholesky_s']:.3f} s Cholesky / "
                       f"{m['t_bbmm_s']:.3f} s BBMM per MLL+grad, n={m['n']}, {m['device']})"),
    seeds=_SEEDS,
    scale_note={s: f"n = {_SPEED_N[s]} kin40k points, float32, CPU" for s in _SPEED_N},
    datasets=("uci-gp-mat",), budget_s={"smoke": 5, "cpu": 35},
))


# ----------------------------------------------------------------------------- preconditioner

_PRE_N = {"smoke": 300, "cpu": 1500, "full": 5000}


def _run_precond(scale, seeds, workdir):
  n = _PRE_N[scale]
  rows = []
  for seed in seeds:
    for name in ("synthetic", "kin40k"):
      if name == "synthetic":
        x, y = data_lib.synthetic(jax.random.key(seed), n, 2, lengthscale=0.3, noise=0.01)
        x = jnp.asarray(x, jnp.float32)
      elif not data_lib_available("kin40k"):
        continue  # the real-data part is reported as absent, never replaced by other data
      else:
        xn, y, name = _real("kin40k", n, seed)
        x = jnp.asarray(xn, jnp.float32)
      y = jnp.asarray(y, jnp.float32)
      p = ops.GPParams(kernels.init_params("rbf", x.shape[1], 0.3 if name == "synthetic" else 1.0,
                                           1.0, jnp.float32), jnp.asarray(0.01, jnp.float32),
                       jnp.zeros((), jnp.float32))
      rows.append((name, *_iters(p, x, y)))
  syn = [r for r in rows if r[0] == "synthetic"]
  real = [r for r in rows if r[0] != "synthetic"]
  return {"n": n, "iters_synthetic": [r[1:] for r in syn], "iters_real": [r[1:] for r in real],
          "ratio_synthetic": float(np.mean([a / b for _, a, b in syn])),
          "ratio_real": float(np.mean([a / b for _, a, b in real])) if real else None}


@jax.jit
def _iters(p, x, y):
  op = ops.ExactOperator("rbf", materialize=True)
  state = op.prepare(p, x)
  lmat, _ = precond_lib.pivoted_cholesky(op.kernel_diag(state), lambda i: op.kernel_row(state, i),
                                         15)
  pre = precond_lib.make_preconditioner(lmat, p.noise)
  mm = lambda v: op.matmul(state, v)
  plain = cg_lib.mbcg(mm, y[:, None], tol=1e-3, max_iters=2000)
  pc = cg_lib.mbcg(mm, y[:, None], precond=pre.solve, tol=1e-3, max_iters=2000)
  return plain.num_iters[0], pc.num_iters[0]


registry.register(registry.Reproduction(
    paper="bbmm", name="preconditioner_iterations",
    claim="The rank-15 pivoted-Cholesky preconditioner cuts CG iterations (≥ 2× on smooth "
          "low-dimensional data)",
    paper_value="large reductions (GPyTorch Fig. 5)",
    run=_run_precond,
    check=lambda m, scale: m["ratio_synthetic"] >= 2.0,
    summary=lambda m: (f"{m['ratio_synthetic']:.1f}× fewer iterations on 2-D synthetic, "
                       + (f"{m['ratio_real']:.1f}× on kin40k" if m["ratio_real"] is not None
                          else "kin40k absent (../shared/data/uci-gp-mat)")
                       + f" (n={m['n']}, tol 1e-3)"),
    seeds=_SEEDS,
    scale_note={s: f"n = {_PRE_N[s]}, RBF, σ² = 0.01" for s in _PRE_N},
    datasets=("uci-gp-mat",), run_as={"quick": "cpu"}, budget_s={"smoke": 5, "quick": 5, "cpu": 5},
))


# ----------------------------------------------------------------------------- accuracy_suite

def suite_cases(scale):
  """The cases of each scale, declared before any was measured (issue 24's suite)."""
  if scale == "smoke":
    return [accuracy.Case("synthetic", 300, k, 0.01) for k in accuracy.KERNELS]
  sizes = (2000,) if scale == "quick" else (2000, 5000)
  cases = [accuracy.Case("synthetic", n, k, s) for n in sizes for k in accuracy.KERNELS
           for s in (0.1, 0.01, 0.001)]
  if scale == "quick":
    return cases
  cases += [accuracy.Case(d, n, k, 0.01) for d in ("elevators", "kin40k") for n in sizes
            for k in accuracy.KERNELS]
  big = (10000,) if scale == "cpu" else (10000, 20000)
  return cases + [accuracy.Case("synthetic", n, k, 0.01) for n in big for k in accuracy.KERNELS]


_SUITE_DRAWS = 8
SUITE_MLL_TOL = 0.005  # issue 24: mean MLL error ≤ 0.5 % on every case ...
SUITE_GRAD_TOL = 0.01  # ... and single-draw gradient error ≤ 1 %, at default settings


def case_passes(rec: dict) -> bool:
  """Whether one case's record (:func:`~jaxpapers.bbmm.accuracy.run_case`) meets both targets."""
  return rec["mll_err_mean"] <= SUITE_MLL_TOL and rec["grad_err_mean"] <= SUITE_GRAD_TOL


def _run_suite(scale, seeds, workdir, method="bbmm"):
  settings = likelihood.Settings()
  # Cached per case under a folder named by the configuration (settings, draws, method, code
  # version), so an interrupted suite resumes and a changed one never reuses another's cases.
  config = {"settings": settings._asdict(), "draws": _SUITE_DRAWS,
            "code": checkpoint.code_version()}
  if method != "bbmm":
    config["method"] = method
  config_hash = checkpoint.config_hash(config)
  rows = []
  for seed in seeds:
    for case in suite_cases(scale):
      path = (f"{workdir}/{config_hash[:12]}/"
              f"{case.dataset}_{case.n}_{case.kernel}_{case.noise:g}_seed{seed}.json")
      rec = fileio.read_json_for_config(path, config_hash)
      if rec is None:  # finished cases are kept: an interrupted suite resumes where it stopped
        rec = {**accuracy.run_case(case, seed, draws=_SUITE_DRAWS, settings=settings,
                                   method=method),
               "config_hash": config_hash}
        fileio.write_json_atomic(path, rec)
      rows.append({k: v for k, v in rec.items() if k != "config_hash"})
  worst_mll = max(rows, key=lambda r: r["mll_err_mean"])
  worst_grad = max(rows, key=lambda r: r["grad_err_mean"])
  return {"cases": rows, "num_cases": len(rows), "draws": _SUITE_DRAWS,
          "cases_passing": sum(case_passes(r) for r in rows),
          "worst_mll_err_mean": worst_mll["mll_err_mean"],
          "worst_mll_case": _case_name(worst_mll),
          "worst_grad_err_mean": worst_grad["grad_err_mean"],
          "worst_grad_case": _case_name(worst_grad),
          "max_mll_err": max(r["mll_err_max"] for r in rows),
          "max_grad_err": max(r["grad_err_max"] for r in rows),
          "cancellation_range": [min(r["cancellation"] for r in rows),
                                 max(r["cancellation"] for r in rows)]}


def _run_suite_auto(scale, seeds, workdir):
  return auto_suite_figures(_run_suite(scale, seeds, workdir, method="auto"))


def auto_suite_figures(m):
  """Adds to the auto suite's figures which method ran where, at what probe count and speed."""
  rows = m["cases"]
  kept = [r for r in rows if r["method"] == "bbmm"]
  m["cases_bbmm"] = len(kept)
  m["cases_bbmm_adapted"] = sum(r["num_probes"] > likelihood.Settings().num_probes for r in kept)
  m["bbmm_probes"] = sorted({r["num_probes"] for r in kept})
  # Chosen method's seconds against the float32 Cholesky timed in the same choice.
  m["speedup_vs_cholesky"] = [r["cholesky_seconds"] / r["seconds"] for r in kept]
  probed = [r for r in rows if r["method"] == "cholesky_hutchinson"]
  m["cases_hutchinson"] = len(probed)
  m["hutchinson_probes"] = sorted({r["num_probes"] for r in probed})
  m["hutchinson_speedup_vs_cholesky"] = [r["cholesky_seconds"] / r["seconds"] for r in probed]
  m["cholesky_reasons"] = {reason: sum(r["reason"] == reason for r in rows
                                       if r["method"] == "cholesky")
                           for reason in sorted({r["reason"] for r in rows
                                                 if r["method"] == "cholesky"})}
  return m


def _auto_summary(m):
  speed = m["speedup_vs_cholesky"]
  kept = (f"BBMM kept on {m['cases_bbmm']} (probes {m['bbmm_probes']}, "
          f"{min(speed):.2f}–{max(speed):.2f}× the float32 Cholesky)" if speed
          else "BBMM kept on none")
  hyb = m.get("hutchinson_speedup_vs_cholesky", [])
  probed = (f"Cholesky value + probed gradient on {len(hyb)} (probes {m['hutchinson_probes']}, "
            f"{min(hyb):.2f}–{max(hyb):.2f}× the float32 Cholesky)" if hyb
            else "Cholesky value + probed gradient on none")
  exact = m["num_cases"] - m["cases_bbmm"] - len(hyb)
  return (f"{m['cases_passing']}/{m['num_cases']} cases pass; {kept}; {probed}; exact Cholesky "
          f"on {exact} ({m['cholesky_reasons']}); worst mean MLL err "
          f"{100 * m['worst_mll_err_mean']:.2f} % ({m['worst_mll_case']}), worst mean gradient "
          f"err {100 * m['worst_grad_err_mean']:.2f} % ({m['worst_grad_case']}); "
          f"{m['draws']} draws per case vs float64 Cholesky")


def _case_name(r):
  return f"{r['dataset']} n={r['n']} {r['kernel']} σ²={r['noise']:g}"


def _suite_passes(m, scale):
  del scale
  return m["cases_passing"] == m["num_cases"]


# Shared by the two suite rows (forced BBMM and method="auto"): same cases, seeds and targets.
_SUITE_PAPER_VALUE = "exact up to solver tolerance (issue 24's targets: 0.5 % MLL, 1 % gradient)"
_SUITE_SEEDS = {"smoke": (0,), "quick": (0,), "cpu": (0,), "full": (0,)}
_SUITE_NOTE = {s: f"{len(suite_cases(s))} cases: " + ", ".join(sorted(
    {f"{c.dataset} n={c.n}" for c in suite_cases(s)})) for s in ("smoke", "quick", "cpu", "full")}


registry.register(registry.Reproduction(
    paper="bbmm", name="accuracy_suite",
    claim="At default settings BBMM (forced; `auto` would run Cholesky where it is faster) is "
          "within 0.5 % of float64 Cholesky in the MLL (mean over probe "
          "draws) and a single draw's gradient within 1 %, on every case of the suite (synthetic "
          "σ² ∈ {0.1, 0.01, 0.001}, UCI sets; RBF and Matérn-5/2 with ARD; n = 2k/5k/10k)",
    paper_value=_SUITE_PAPER_VALUE,
    run=_run_suite,
    check=_suite_passes,
    summary=lambda m: (f"{m['cases_passing']}/{m['num_cases']} cases pass; worst mean MLL err "
                       f"{100 * m['worst_mll_err_mean']:.2f} % ({m['worst_mll_case']}), worst "
                       f"mean gradient err {100 * m['worst_grad_err_mean']:.1f} % "
                       f"({m['worst_grad_case']}); max single draw MLL "
                       f"{100 * m['max_mll_err']:.2f} %, gradient {100 * m['max_grad_err']:.1f} % "
                       f"({m['draws']} probe draws per case, float32 BBMM vs float64 Cholesky)"
                       + ("; the log-det term's gradient is {:.1f}–{:.1f}× the gradient's norm "
                          "(its probe error is amplified that much)".format(
                              *m["cancellation_range"]) if "cancellation_range" in m else "")),
    seeds=_SUITE_SEEDS, scale_note=_SUITE_NOTE,
    datasets=("uci-gp-mat",), budget_s={"smoke": 20, "quick": 120, "cpu": 900},
))


registry.register(registry.Reproduction(
    paper="bbmm", name="accuracy_suite_auto",
    claim="What `bbmm.mll` / `bbmm.fit` run by default (`method=\"auto\"`: Cholesky, BBMM, "
          "or the Cholesky value with a probed gradient, chosen per problem at equal accuracy, "
          "probe counts sized from each estimator's own spread to the 0.5 % MLL / 1 % gradient "
          "targets) meets those targets on every case of the accuracy suite, and shows where "
          "the probed methods at that accuracy are faster than exact Cholesky",
    paper_value=_SUITE_PAPER_VALUE,
    run=_run_suite_auto,
    check=_suite_passes,
    summary=_auto_summary,
    seeds=_SUITE_SEEDS, scale_note=_SUITE_NOTE,
    datasets=("uci-gp-mat",), budget_s={"smoke": 30, "quick": 180, "cpu": 1500},
))
