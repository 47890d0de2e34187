"""RMF-MM as its authors run it: relaxed MM with a LADMPSAP inner solver (Lin, Xu & Zha 2017/18).

Z. Lin, C. Xu and H. Zha. "Robust Matrix Factorization by Majorization Minimization." IEEE TPAMI
2018 (arXiv 2017); C. Xu, Z. Lin and H. Zha. "Relaxed Majorization-Minimization for
Non-smooth and Non-convex Optimization." AAAI 2016. This is the baseline that Yao & Kwok
(NeurIPS 2018) compare RMFNL against; :func:`jaxpapers.robust_mf.rmfnl.rmf_mm` is *not* this
algorithm (it runs RMFNL's dual APG on dense arrays).

Problem (W the 0/1 observation mask, λ_u = λ_v = λ)::

    min_{U, V}  H(U, V) = ‖W ⊙ (X − U Vᵀ)‖₁ + λ/2 ‖U‖² + λ/2 ‖V‖²,

the ℓ1 objective of :func:`jaxpapers.robust_mf.rmfnl.objective` (same definition of H and λ), so
objective values of the two solvers are directly comparable.

MM surrogate at (U, V), in the increments (ΔU, ΔV), with R = X − U Vᵀ (X zero off W)::

    F(ΔU, ΔV) = ‖W ⊙ (R − ΔU Vᵀ − U ΔVᵀ)‖₁ + λ/2 ‖U + ΔU‖² + λ/2 ‖V + ΔV‖²
                + ½ ‖Λ_u ΔU‖² + ½ ‖Λ_v ΔV‖²,
    Λ_u = diag(√(ρ · #W_(i,:))),  Λ_v = diag(√(ρ · #W_(:,j))),

where #W_(i,:) / #W_(:,j) are the row / column observation counts. ρ = 1 makes F a global upper
bound of H(U + ΔU, V + ΔV) (|Δu_iᵀ Δv_j| ≤ ½(‖Δu_i‖² + ‖Δv_j‖²) summed over W); ρ < 1 is the
*relaxed* majorant of Xu, Lin & Zha (AAAI 2016), kept only when it lowers H. F is the
``ratio``-scaled surrogate of RMFNL's :func:`~jaxpapers.robust_mf.rmfnl.surrogate_value` for the
ℓ1 loss (its ρ), which is what lets the tests check LADMPSAP against RMFNL's dual APG.

LADMPSAP (linearized ADM with parallel splitting and adaptive penalty, Lin, Liu & Li 2015) solves
min F as ``min ‖W ⊙ E‖₁ + g_u(ΔU) + g_v(ΔV)  s.t.  E + ΔU Vᵀ + U ΔVᵀ = R`` with the three blocks
updated in parallel, each linearised with the proximal weight η_E = 3, η_U = 3‖V‖₂²,
η_V = 3‖U‖₂² (3 = the number of blocks), multiplier Y and Ŷ = Y + β (E + ΔU Vᵀ + U ΔVᵀ − R)::

    E⁺  = W ⊙ shrink(E − Ŷ/(3β), 1/(3β)) + (1 − W) ⊙ (E − Ŷ/(3β))
    Δu⁺_i = (−λ u_i + 3β‖V‖₂² Δu_i − [Ŷ V]_i) / (λ + ρ #W_(i,:) + 3β‖V‖₂²)        (likewise ΔV)
    Y⁺ = Y + β C,  Ŷ⁺ = Y⁺ + β C,    C = E⁺ + ΔU⁺ Vᵀ + U ΔV⁺ᵀ − R.

Stopping rules and penalty schedule of the authors' code (``RMF_MM.m``): with the relative change
``δ = max(‖E⁺ − E‖, ‖V‖₂‖ΔU⁺ − ΔU‖, ‖U‖₂‖ΔV⁺ − ΔV‖) / ‖R‖_F``, when ``√β δ < tol_in1`` the
penalty grows, β ← min(β_max, ρ_β β), and the solve stops once also ``‖C‖_F / ‖R‖_F < tol_in2``;
otherwise β is kept (the LADMPSAP rule ρ_β > 1 only once the iterates settle). E, ΔU, ΔV and Y
are warm-started from the previous MM step, β restarts at β₀ every MM step. Every inner iteration
costs O(m n r) on m × n arrays: RMF-MM cannot exploit a sparse W.

Outer loop (authors' code): a step whose relative decrease ``(H_old − H_new) / H_new`` is below
``tol_out`` is *rejected* (U, V kept) and the relaxation ratio grows, ρ ← min(ρ_max, 1.2 ρ); the
run stops at the second such rejection with ρ = ρ_max, or after ``max_outer`` accepted steps.
Accepted steps therefore strictly lower H (after the optional warm-up, see ``warmup_steps``).

Deviations from ``RMF_MM.m``, all documented: the initial objective uses λ/2 (the code's first
``funo`` uses λ, an inconsistency that only affects the first comparison); the iteration caps are
static (``jax.lax.while_loop``); a non-finite objective stops the run (the result is then NaN,
never a finite wrong number); the default start is RMFNL's spectral start (the code takes U, V
from the caller) so that both solvers start from the same point.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.robust_mf import observations as obs_lib
from jaxpapers.robust_mf import rmfnl


class LADMPSAPState(NamedTuple):
  """The LADMPSAP iterate, carried (warm-started) from one MM step to the next.

  Attributes:
    e: (m, n) residual variable E.
    du: (m, r) increment ΔU.
    dv: (n, r) increment ΔV.
    y: (m, n) Lagrange multiplier Y.
  """

  e: jax.Array
  du: jax.Array
  dv: jax.Array
  y: jax.Array


class LADMPSAPInfo(NamedTuple):
  """Diagnostics of one LADMPSAP solve.

  Attributes:
    iterations: inner iterations run.
    beta: the final penalty β.
    constraint: ‖E + ΔU Vᵀ + U ΔVᵀ − R‖_F / ‖R‖_F at the end.
    change: the last relative change δ (see the module docstring).
    converged: whether both stopping criteria held (False: ``max_inner`` reached).
  """

  iterations: jax.Array
  beta: jax.Array
  constraint: jax.Array
  change: jax.Array
  converged: jax.Array


class RMFMMResult(NamedTuple):
  """Output of :func:`rmf_mm_ladmpsap`.

  Attributes:
    u: (m, r) final U (the last accepted iterate).
    v: (n, r) final V.
    objectives: (T + 1,) H before the first MM step and after each MM step (the kept value for
      a rejected step); NaN past the end. T = ``max_outer`` + the number of rejections the
      ratio schedule allows.
    inner_iterations: (T,) LADMPSAP iterations per MM step (0 past the end).
    accepted: (T,) whether each MM step was kept.
    ratios: (T,) the relaxation ratio ρ of each MM step (NaN past the end).
    num_outer: MM steps run (accepted and rejected).
    num_accepted: MM steps kept.
    total_inner: LADMPSAP iterations in all.
    converged: whether the authors' stopping rule fired (second small-progress step at
      ρ = ρ_max); False when a cap, ``target_objective`` or a non-finite objective stopped it.
  """

  u: jax.Array
  v: jax.Array
  objectives: jax.Array
  inner_iterations: jax.Array
  accepted: jax.Array
  ratios: jax.Array
  num_outer: jax.Array
  num_accepted: jax.Array
  total_inner: jax.Array
  converged: jax.Array


def surrogate_value(obs: obs_lib.DenseObservations, u, v, du, dv, lam, ratio):
  """F(ΔU, ΔV), RMF-MM's (relaxed, ratio ρ) surrogate of H at (U, V) (module docstring).

  F(0, 0) = H(U, V); for ρ = 1, F(ΔU, ΔV) ≥ H(U + ΔU, V + ΔV) everywhere.
  """
  w = obs.mask
  resid = obs.values - u @ v.T
  lin = resid - du @ v.T - u @ dv.T
  a, b = jnp.sum(w, axis=1), jnp.sum(w, axis=0)
  return (jnp.sum(w * jnp.abs(lin))
          + 0.5 * lam * (jnp.sum((u + du) ** 2) + jnp.sum((v + dv) ** 2))
          + 0.5 * ratio * (jnp.sum(a * jnp.sum(du**2, axis=1)) + jnp.sum(b * jnp.sum(dv**2, axis=1))))


def _spectral_norm_sq(x):
  """‖x‖₂² = λ_max(xᵀ x) (an r × r symmetric eigenproblem, not batched)."""
  return jnp.maximum(jnp.max(jnp.linalg.eigvalsh(x.T @ x)), 0.0)


def init_ladmpsap(obs: obs_lib.DenseObservations, u, v) -> LADMPSAPState:
  """The authors' first inner start: E = R = X − U Vᵀ, ΔU = ΔV = 0, Y = 0."""
  resid = obs.values - u @ v.T
  return LADMPSAPState(resid, jnp.zeros_like(u), jnp.zeros_like(v), jnp.zeros_like(resid))


@functools.partial(jax.jit, static_argnames=("max_inner",))
def solve_surrogate(obs: obs_lib.DenseObservations, u, v, lam, ratio, state: LADMPSAPState,
                    *, beta0, rho=1.5, beta_max=1e5, tol_in1=1e-5, tol_in2=1e-4,
                    max_inner: int = 5000) -> tuple[LADMPSAPState, LADMPSAPInfo]:
  """Minimises the RMF-MM surrogate F at (U, V) by LADMPSAP (module docstring).

  Args:
    obs: dense observations (values zero off the mask).
    u, v: the expansion point (U, V).
    lam: λ.
    ratio: relaxation ratio ρ of the quadratic term (1 = exact majorizer).
    state: warm start (E, ΔU, ΔV, Y); :func:`init_ladmpsap` for a cold start.
    beta0: initial penalty β₀.
    rho: penalty growth factor ρ_β (applied when √β δ < ``tol_in1``).
    beta_max: cap β_max on β.
    tol_in1: tolerance on √β · relative change.
    tol_in2: tolerance on the relative constraint violation.
    max_inner: cap on iterations.

  Returns:
    The final :class:`LADMPSAPState` (its ``du``, ``dv`` are the increments) and a
    :class:`LADMPSAPInfo`.
  """
  dtype = u.dtype
  w = obs.mask
  resid = obs.values - u @ v.T
  tiny = jnp.asarray(jnp.finfo(dtype).tiny, dtype)
  nres = jnp.maximum(jnp.sqrt(jnp.sum(resid**2)), tiny)
  a = jnp.asarray(ratio, dtype) * jnp.sum(w, axis=1)
  b = jnp.asarray(ratio, dtype) * jnp.sum(w, axis=0)
  v2, u2 = _spectral_norm_sq(v), _spectral_norm_sq(u)
  beta0 = jnp.asarray(beta0, dtype)

  def constraint(e, du, dv):
    return e + du @ v.T + u @ dv.T - resid

  def cond(c):
    _, _, _, _, _, _, k, done, _, _ = c
    return (k < max_inner) & ~done

  def body(c):
    e, du, dv, y, yhat, beta, k, _, _, _ = c
    tmp = e - yhat / (3.0 * beta)
    thr = 1.0 / (3.0 * beta)
    shrunk = jnp.sign(tmp) * jnp.maximum(jnp.abs(tmp) - thr, 0.0)
    e_new = w * shrunk + (1.0 - w) * tmp
    pu, pv = 3.0 * beta * v2, 3.0 * beta * u2
    du_new = (-lam * u + pu * du - yhat @ v) / (lam + a + pu)[:, None]
    dv_new = (-lam * v + pv * dv - yhat.T @ u) / (lam + b + pv)[:, None]
    change = jnp.maximum(
        jnp.sqrt(jnp.sum((e_new - e) ** 2)),
        jnp.maximum(jnp.sqrt(v2 * jnp.sum((du_new - du) ** 2)),
                    jnp.sqrt(u2 * jnp.sum((dv_new - dv) ** 2)))) / nres
    con = constraint(e_new, du_new, dv_new)
    y_new = y + beta * con
    yhat_new = y_new + beta * con
    settled = jnp.sqrt(beta) * change < tol_in1
    rel_con = jnp.sqrt(jnp.sum(con**2)) / nres
    done = (settled & (rel_con < tol_in2)) | ~jnp.isfinite(change)
    beta_new = jnp.where(settled, jnp.minimum(beta_max, rho * beta), beta)
    return e_new, du_new, dv_new, y_new, yhat_new, beta_new, k + 1, done, rel_con, change

  con0 = constraint(state.e, state.du, state.dv)
  yhat0 = state.y + beta0 * con0
  zero = jnp.zeros((), dtype)
  init = (state.e, state.du, state.dv, state.y, yhat0, beta0, jnp.zeros((), jnp.int32),
          jnp.zeros((), bool), jnp.sqrt(jnp.sum(con0**2)) / nres, zero)
  e, du, dv, y, _, beta, k, done, rel_con, change = jax.lax.while_loop(cond, body, init)
  converged = done & jnp.isfinite(change)
  return LADMPSAPState(e, du, dv, y), LADMPSAPInfo(k, beta, rel_con, change, converged)


def default_beta0(shape, tol_in1=1e-5, beta_rate=0.1) -> float:
  """β₀ = beta_rate · (m + n) · tol_in1: the default ``beta_type = 2`` of the authors' code."""
  return beta_rate * (shape[0] + shape[1]) * tol_in1


def max_rejections(ratio0, ratio_growth, ratio_max) -> int:
  """Rejected MM steps the ratio schedule allows: the steps to reach ρ_max, plus one."""
  if ratio0 >= ratio_max:
    return 2
  return int(math.ceil(math.log(ratio_max / ratio0) / math.log(ratio_growth))) + 2


@functools.partial(jax.jit, static_argnames=("rank", "max_outer", "max_inner", "num_steps",
                                             "init_mode"))
def _run(key, obs, u0, v0, lam, tol_out, tol_in1, tol_in2, ratio0, ratio_growth, ratio_max,
         rho, beta0, beta_max, init_scale, warmup_steps, target, *, rank, max_outer, max_inner,
         num_steps, init_mode):
  dtype = obs.values.dtype
  m, n = obs.shape
  ku, kv = jax.random.split(key)  # the same split as rmfnl.fit, so init="spectral" agrees
  if u0 is None:
    if init_mode == "spectral":
      u0, v0 = rmfnl._spectral(ku, obs, rank)
    else:
      u0 = init_scale * jax.random.normal(ku, (m, rank), dtype)
      v0 = init_scale * jax.random.normal(kv, (n, rank), dtype)
  dense = obs_lib.to_dense(obs) if isinstance(obs, obs_lib.SparseObservations) else obs
  h0 = rmfnl.objective(dense, u0, v0, lam, "l1")
  objs = jnp.full((num_steps + 1,), jnp.nan, dtype).at[0].set(h0)
  inner = jnp.zeros((num_steps,), jnp.int32)
  acc = jnp.zeros((num_steps,), bool)
  ratios = jnp.full((num_steps,), jnp.nan, dtype)

  def cond(c):
    t, done = c[0], c[1]
    return (t < num_steps) & ~done

  def body(c):
    t, _, u, v, lad, ratio, h, exceed, n_acc, objs, inner, acc, ratios, _ = c
    lad, info = solve_surrogate(dense, u, v, lam, ratio, lad, beta0=beta0, rho=rho,
                                beta_max=beta_max, tol_in1=tol_in1, tol_in2=tol_in2,
                                max_inner=max_inner)
    u_n, v_n = u + lad.du, v + lad.dv
    h_n = rmfnl.objective(dense, u_n, v_n, lam, "l1")
    small = ((h - h_n) / h_n < tol_out) & (n_acc >= warmup_steps)  # NaN h_n: not small
    keep = ~small
    ratio_n = jnp.where(small, jnp.minimum(ratio_max, ratio_growth * ratio), ratio)
    exceed = exceed + (small & (ratio_n >= ratio_max)).astype(jnp.int32)
    u, v = jnp.where(keep, u_n, u), jnp.where(keep, v_n, v)
    h_keep = jnp.where(keep, h_n, h)
    n_acc = n_acc + keep.astype(jnp.int32)
    converged = exceed > 1
    done = (converged | (n_acc >= max_outer) | ~jnp.isfinite(h_keep)
            | (keep & (h_keep <= target)))
    objs = objs.at[t + 1].set(h_keep)
    inner = inner.at[t].set(info.iterations)
    acc = acc.at[t].set(keep)
    ratios = ratios.at[t].set(ratio)
    return (t + 1, done, u, v, lad, ratio_n, h_keep, exceed, n_acc, objs, inner, acc, ratios,
            converged)

  zi = jnp.zeros((), jnp.int32)
  init = (zi, ~jnp.isfinite(h0), u0, v0, init_ladmpsap(dense, u0, v0), ratio0, h0, zi, zi,
          objs, inner, acc, ratios, jnp.zeros((), bool))
  (t, _, u, v, _, _, _, _, n_acc, objs, inner, acc, ratios,
   converged) = jax.lax.while_loop(cond, body, init)
  return RMFMMResult(u, v, objs, inner, acc, ratios, t, n_acc, jnp.sum(inner), converged)


def _check_float(x, name, *, low=0.0, inclusive=False, high=None):
  """A concrete finite Python/NumPy/JAX scalar in (low, high] (or [low, high]); returns float."""
  arr = np.asarray(x)
  if arr.ndim != 0 or arr.dtype.kind not in "fiu" or arr.dtype == bool:
    raise TypeError(f"{name} must be a real scalar, got {x!r}")
  val = float(arr)
  ok = np.isfinite(val) and (val >= low if inclusive else val > low)
  if high is not None:
    ok = ok and val <= high
  if not ok:
    rng = f"{'[' if inclusive else '('}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
    raise ValueError(f"{name} must be a finite number in {rng}, got {val}")
  return val


def rmf_mm_ladmpsap(key, observations, rank: int, *, lam=None, init="spectral",
                    init_scale=1.0, max_outer: int = 300, max_inner: int = 5000, tol_out=1e-4,
                    tol_in1=1e-5, tol_in2=1e-4, ratio0=0.004, ratio_growth=1.2, ratio_max=1.0,
                    rho=1.5, beta_rate=0.1, beta0=None, beta_max=1e5, warmup_steps=None,
                    target_objective=None) -> RMFMMResult:
  """RMF-MM (Lin, Xu & Zha, TPAMI 2018): relaxed MM, surrogate solved by LADMPSAP, dense.

  Minimises ‖W ⊙ (X − U Vᵀ)‖₁ + λ/2 (‖U‖² + ‖V‖²), the ℓ1 objective of
  :func:`jaxpapers.robust_mf.rmfnl.objective`. Every LADMPSAP iteration costs O(m n r) time and
  the state holds m × n arrays whatever |Ω| is (see the module docstring for the algorithm).

  Defaults and where they come from: the ``para`` defaults of ``RMF_MM.m``, the authors' released
  MATLAB code for Lin, Xu & Zha 2018 / Xu, Lin & Zha AAAI 2016 (λ = 20/(m + n) is also the
  setting Yao & Kwok 2018 keep, see :func:`~.rmfnl.default_lambda`):

  * ``lam`` = 20 / (m + n) (``lambda_u = lambda_v = 20/(m+n)``; also Yao & Kwok's setting);
  * ``max_outer`` = 300 (``max_out``), ``max_inner`` = 5000 (``max_in``);
  * ``tol_out`` = 1e-4, ``tol_in1`` = 1e-5, ``tol_in2`` = 1e-4 (``tol_out``, ``tol_in1``,
    ``tol_in2``);
  * ``ratio0`` = 0.004, ``ratio_growth`` = 1.2, ``ratio_max`` = 1 (``ratio``, ``scale_ratio``,
    ``max_ratio``: the relaxed-MM continuation of Xu, Lin & Zha 2016);
  * ``rho`` = 1.5, ``beta_max`` = 1e5, β₀ = ``beta_rate`` (m + n) ``tol_in1`` with
    ``beta_rate`` = 0.1 (``rho``, the ``1e5`` cap, ``beta_type = 2``);
  * ``warmup_steps``: ``None`` applies the code's heuristic ``iter_out >= 10*(max(size(M))>800)``
    — for max(m, n) > 800 the first 9 MM steps are kept whatever their progress (the code notes
    it is a heuristic for the dinosaur sequence) — i.e. 9 if max(m, n) > 800 else 0. During those
    steps H may increase; afterwards every kept step strictly lowers H.

  Args:
    key: a ``jax.random.key`` (spectral test matrix or random factors).
    observations: :class:`~.observations.SparseObservations` (densified: RMF-MM works on the
      m × n mask) or :class:`~.observations.DenseObservations`.
    rank: r, 1 ≤ r ≤ min(m, n) (a Python or NumPy int).
    lam: λ > 0 (a concrete scalar); default 20 / (m + n).
    init: ``"spectral"`` (default: the start of :func:`~.rmfnl.fit`, computed on the given layout
      with the same key split, so ``fit(key, obs, r, "l1")`` starts from the same (U, V)),
      ``"random"`` (N(0, ``init_scale``²) factors) or an explicit ``(U, V)`` pair.
    init_scale: standard deviation of the random start.
    max_outer: cap on accepted MM steps.
    max_inner: cap on LADMPSAP iterations per MM step.
    tol_out: relative decrease below which an MM step is rejected and ρ grows.
    tol_in1: LADMPSAP tolerance on √β · relative change.
    tol_in2: LADMPSAP tolerance on the relative constraint violation.
    ratio0: initial relaxation ratio ρ (0 < ρ₀ ≤ ``ratio_max``).
    ratio_growth: factor (> 1) by which ρ grows after a rejected step.
    ratio_max: the largest ρ (1 = the exact majorizer).
    rho: LADMPSAP penalty growth factor (≥ 1).
    beta_rate: scale of the default β₀.
    beta0: explicit initial penalty (overrides ``beta_rate``).
    beta_max: cap on the penalty.
    warmup_steps: MM steps kept unconditionally at the start (see above).
    target_objective: stop as soon as a kept step reaches H ≤ this value (for time-to-target
      measurements; a traced scalar, so changing it does not recompile). Default: never.

  Returns:
    A :class:`RMFMMResult`.

  Raises:
    TypeError: wrong observation type, a non-key ``key``, a non-int ``rank`` or a non-scalar
      setting.
    ValueError: ``rank`` out of range, a non-positive or out-of-range setting (the message
      names the argument), NaN/inf observed values or initial factors, an empty Ω or indices
      outside ``observations.shape``.
  """
  rank = rmfnl._check_common(observations, rank, "l1", max_outer, max_inner, 1)
  key = rmfnl._check_key(key)
  if isinstance(observations, obs_lib.DenseObservations):
    validation.check_array(observations.values, "observations.values", ndim=2, dtype_kind="f",
                           finite=True)
    validation.check_array(observations.mask, "observations.mask", ndim=2,
                           shape=observations.values.shape)
    if validation.is_concrete(observations.mask) and not bool(jnp.any(observations.mask)):
      raise ValueError("the observed set Ω is empty: observations.mask has no nonzero entry")
  m, n = observations.shape
  dtype = observations.values.dtype
  lam = rmfnl.default_lambda((m, n)) if lam is None else _check_float(lam, "lam")
  init_scale = _check_float(init_scale, "init_scale")
  tol_out = _check_float(tol_out, "tol_out")
  tol_in1 = _check_float(tol_in1, "tol_in1")
  tol_in2 = _check_float(tol_in2, "tol_in2")
  ratio_max = _check_float(ratio_max, "ratio_max")
  ratio0 = _check_float(ratio0, "ratio0", high=ratio_max)
  ratio_growth = _check_float(ratio_growth, "ratio_growth", low=1.0)
  rho = _check_float(rho, "rho", low=1.0, inclusive=True)
  beta_rate = _check_float(beta_rate, "beta_rate")
  beta0 = (default_beta0((m, n), tol_in1, beta_rate) if beta0 is None
           else _check_float(beta0, "beta0"))
  beta_max = _check_float(beta_max, "beta_max")
  if beta0 > beta_max:
    raise ValueError(f"beta0 must be <= beta_max = {beta_max}, got {beta0}")
  if warmup_steps is None:
    warmup_steps = 9 if max(m, n) > 800 else 0
  if (not isinstance(warmup_steps, (int, np.integer)) or isinstance(warmup_steps, bool)
      or warmup_steps < 0):
    raise ValueError(f"warmup_steps must be a non-negative int or None, got {warmup_steps!r}")
  if target_objective is None:
    target_objective = -np.inf
  elif validation.is_concrete(target_objective) and np.isnan(float(target_objective)):
    raise ValueError("target_objective must not be NaN")
  mode, u0, v0 = "spectral", None, None
  if init is None:
    init = "spectral"
  if isinstance(init, str):
    validation.check_in(init, "init", ("spectral", "random"))
    mode = init
  elif isinstance(init, (tuple, list)) and len(init) == 2:
    u0, v0 = init
    validation.check_array(u0, "init[0]", shape=(m, rank), dtype_kind="fiu", finite=True)
    validation.check_array(v0, "init[1]", shape=(n, rank), dtype_kind="fiu", finite=True)
    u0, v0 = jnp.asarray(u0, dtype), jnp.asarray(v0, dtype)
  else:
    raise TypeError(f"init must be 'spectral', 'random' or a (U, V) pair, got {init!r}")
  num_steps = max_outer + max_rejections(ratio0, ratio_growth, ratio_max)
  f = lambda x: jnp.asarray(x, dtype)
  return _run(key, observations, u0, v0, f(lam), f(tol_out), f(tol_in1), f(tol_in2), f(ratio0),
              f(ratio_growth), f(ratio_max), f(rho), f(beta0), f(beta_max), f(init_scale),
              jnp.asarray(warmup_steps, jnp.int32), f(target_objective), rank=rank,
              max_outer=max_outer, max_inner=max_inner, num_steps=num_steps, init_mode=mode)


rmf_mm = rmf_mm_ladmpsap  # the baseline's name in the papers (``robust_mf.rmf_mm``)
