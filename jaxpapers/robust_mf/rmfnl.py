"""RMFNL: robust matrix factorization with nonconvex loss by MM + dual APG (Yao & Kwok, NeurIPS 2018).

Problem (Yao & Kwok 2018)::

    min_{U ∈ R^{m×r}, V ∈ R^{n×r}}  H(U, V) = Σ_{(i,j)∈Ω} φ(|X_ij − u_iᵀ v_j|) + λ/2 (‖U‖² + ‖V‖²)

with φ = ℓ1 (RMF) or a concave φ (LSP, Geman, Laplace). At the MM expansion point (U₀, V₀) with
residual E = P_Ω(X − U₀V₀ᵀ), concavity gives φ(|z|) ≤ φ(|e|) + w (|z| − |e|) with weights
w_ij = φ′(|E_ij|), and |u_iᵀ v_j| ≤ (‖u_i‖² + ‖v_j‖²)/2 bounds the bilinear term (Yao & Kwok 2018;
RMF-MM, Lin et al. 2017, for w ≡ 1). The convex surrogate in the increments (ΔU, ΔV) is::

    F(ΔU, ΔV) = ‖W ⊙ P_Ω(E − ΔU V₀ᵀ − U₀ ΔVᵀ)‖₁ + λ/2 ‖U₀ + ΔU‖² + λ/2 ‖V₀ + ΔV‖²
                + ρ/2 Σ_i a_i ‖Δu_i‖² + ρ/2 Σ_j b_j ‖Δv_j‖² + c,

a_i = Σ_j w_ij, b_j = Σ_i w_ij, c = Σ_Ω (φ(|E|) − w |E|), so F(0, 0) = H(U₀, V₀) and, for ρ = 1,
F ≥ H(U₀ + ΔU, V₀ + ΔV) everywhere. Its dual (Yao & Kwok 2018) is a box-constrained
smooth concave problem over S supported on Ω with |S_ij| ≤ w_ij::

    D(S) = ⟨S, E⟩ − ½ Σ_i ‖[S V₀ − λU₀]_i‖² / α_i − ½ Σ_j ‖[Sᵀ U₀ − λV₀]_j‖² / β_j
           + λ/2 (‖U₀‖² + ‖V₀‖²) + c,       α_i = λ + ρ a_i,  β_j = λ + ρ b_j,

with the primal recovered in closed form, Δu_i = [S V₀ − λU₀]_i / α_i, Δv_j = [Sᵀ U₀ − λV₀]_j / β_j,
and ∇D(S) = P_Ω(E − ΔU V₀ᵀ − U₀ ΔVᵀ). It is maximised by accelerated projected gradient (FISTA with
clipping to the box), warm-started from the previous MM step's S. Each APG iteration costs
O(|Ω| r + (m + n) r) time on the sparse layout; its persistent state is O(|Ω| + (m + n) r)
(S, w, E and the factors), with O(|Ω| r) gather temporaries inside an iteration and an
O(|Ω| r²) temporary once per MM step for the Lipschitz bound. No m × n array is formed.

ρ < 1 gives the relaxed MM of RMF-MM (Xu, Lin & Zha, AAAI 2016; Lin et al. 2017): the surrogate is
no longer a global upper bound, so a step is kept only when it lowers H. As in the RMF-MM code, ρ
is raised (× ``rho_growth``, up to ``rho_max``) only when a step lowers H by less than a relative
``progress_tol`` (rejected steps included); while the relaxed steps make progress ρ stays small,
which is what makes the relaxed scheme fast. Once ρ = ``rho_max`` a step is the exact MM step.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.robust_mf import losses as losses_lib
from jaxpapers.robust_mf import observations as obs_lib
from jaxpapers.robust_mf.losses import get_loss


class Surrogate(NamedTuple):
  """The MM surrogate built at (U₀, V₀): everything F, D and ∇D need.

  Attributes:
    u0: (m, r) expansion point U₀.
    v0: (n, r) expansion point V₀.
    residual: Ω-array E = X − U₀V₀ᵀ on Ω.
    weights: Ω-array w = φ′(|E|) (zero off Ω on the dense layout).
    row_curv: (m,) α_i = λ + ρ Σ_j w_ij.
    col_curv: (n,) β_j = λ + ρ Σ_i w_ij.
    offset: scalar c = Σ_Ω (φ(|E|) − w |E|).
    lam: scalar λ.
    rho: scalar ρ (1 = exact majorizer).
  """

  u0: jax.Array
  v0: jax.Array
  residual: jax.Array
  weights: jax.Array
  row_curv: jax.Array
  col_curv: jax.Array
  offset: jax.Array
  lam: jax.Array
  rho: jax.Array


class APGResult(NamedTuple):
  """Output of :func:`solve_dual`.

  Attributes:
    s: the dual variable S (Ω-array).
    du: (m, r) primal increment ΔU(S).
    dv: (n, r) primal increment ΔV(S).
    primal: F(ΔU, ΔV).
    dual: D(S).
    gap: F − D ≥ 0.
    iterations: APG iterations run.
  """

  s: jax.Array
  du: jax.Array
  dv: jax.Array
  primal: jax.Array
  dual: jax.Array
  gap: jax.Array
  iterations: jax.Array


class MMState(NamedTuple):
  """State carried across MM steps.

  Attributes:
    u: (m, r) current U.
    v: (n, r) current V.
    s: Ω-array dual variable (warm start for the next APG solve).
    rho: scalar relaxation ρ of the next surrogate.
    objective: H(U, V).
  """

  u: jax.Array
  v: jax.Array
  s: jax.Array
  rho: jax.Array
  objective: jax.Array


class MMInfo(NamedTuple):
  """Per-MM-step diagnostics.

  Attributes:
    objective: H after the step (equal to the old H for a rejected relaxed step).
    surrogate: F(ΔU, ΔV) at the APG solution (≥ H(U₀ + ΔU, V₀ + ΔV) when ρ = 1).
    gap: the APG duality gap F − D at its solution.
    apg_iterations: APG iterations run.
    accepted: whether the step was kept.
    rho: the ρ used for this step.
  """

  objective: jax.Array
  surrogate: jax.Array
  gap: jax.Array
  apg_iterations: jax.Array
  accepted: jax.Array
  rho: jax.Array


class FitResult(NamedTuple):
  """Output of :func:`fit` / :func:`fit_dense_l1`.

  Attributes:
    u: (m, r) final U.
    v: (n, r) final V.
    objectives: (max_outer + 1,) H before the first step and after each step (NaN past the end).
    gaps: (max_outer,) APG duality gap per MM step (NaN past the end).
    apg_iterations: (max_outer,) APG iterations per MM step (0 past the end).
    num_steps: MM steps run.
    converged: whether the relative decrease of H fell below ``outer_tol``.
  """

  u: jax.Array
  v: jax.Array
  objectives: jax.Array
  gaps: jax.Array
  apg_iterations: jax.Array
  num_steps: jax.Array
  converged: jax.Array


def default_lambda(shape) -> float:
  """λ = 20 / (m + n), the default of RMF-MM (Lin et al. 2017) kept by Yao & Kwok (2018)."""
  return 20.0 / (shape[0] + shape[1])


def objective(obs, u, v, lam, loss: str = "l1", theta=1.0):
  """H(U, V) = Σ_Ω φ(|X − U Vᵀ|) + λ/2 (‖U‖² + ‖V‖²) (Yao & Kwok 2018).

  ``loss`` is a name from :data:`~.losses.LOSS_NAMES` or a (traced) integer id from
  :func:`~.losses.loss_id`; the same holds for :func:`build_surrogate`, :func:`init_state` and
  :func:`mm_step`.
  """
  resid = obs.values - obs_lib.sample(obs, u, v)
  fit_term = jnp.sum(obs_lib.on_omega(obs, losses_lib.value(loss, jnp.abs(resid), theta)))
  return fit_term + 0.5 * lam * (jnp.sum(u**2) + jnp.sum(v**2))


def build_surrogate(obs, u0, v0, lam, loss: str = "l1", theta=1.0, rho=1.0) -> Surrogate:
  """The MM surrogate at (U₀, V₀): weights w = φ′(|E|), curvatures α, β and offset c."""
  resid = obs_lib.on_omega(obs, obs.values - obs_lib.sample(obs, u0, v0))
  absr = jnp.abs(resid)
  weights = obs_lib.on_omega(obs, losses_lib.derivative(loss, absr, theta))
  offset = jnp.sum(obs_lib.on_omega(obs, losses_lib.value(loss, absr, theta) - weights * absr))
  lam = jnp.asarray(lam, resid.dtype)
  rho = jnp.asarray(rho, resid.dtype)
  row_curv = lam + rho * obs_lib.row_sums(obs, weights)
  col_curv = lam + rho * obs_lib.col_sums(obs, weights)
  return Surrogate(u0, v0, resid, weights, row_curv, col_curv, offset, lam, rho)


def surrogate_value(obs, sur: Surrogate, du, dv):
  """F(ΔU, ΔV), the convex MM surrogate of H at (U₀, V₀) (module docstring)."""
  lin = sur.residual - obs_lib.sample(obs, du, sur.v0) - obs_lib.sample(obs, sur.u0, dv)
  l1_term = jnp.sum(obs_lib.on_omega(obs, sur.weights * jnp.abs(lin)))
  a = sur.row_curv - sur.lam  # ρ Σ_j w_ij
  b = sur.col_curv - sur.lam
  reg = 0.5 * sur.lam * (jnp.sum((sur.u0 + du) ** 2) + jnp.sum((sur.v0 + dv) ** 2))
  prox = 0.5 * jnp.sum(a * jnp.sum(du**2, axis=1)) + 0.5 * jnp.sum(b * jnp.sum(dv**2, axis=1))
  return l1_term + reg + prox + sur.offset


def primal_from_dual(obs, sur: Surrogate, s):
  """(ΔU, ΔV) minimising the Lagrangian at S: Δu_i = [S V₀ − λU₀]_i / α_i, likewise ΔV."""
  du = (obs_lib.left(obs, s, sur.v0) - sur.lam * sur.u0) / sur.row_curv[:, None]
  dv = (obs_lib.right(obs, s, sur.u0) - sur.lam * sur.v0) / sur.col_curv[:, None]
  return du, dv


def dual_value(obs, sur: Surrogate, s):
  """D(S), the concave dual of the surrogate (module docstring); D(S) ≤ min F for feasible S."""
  zu = obs_lib.left(obs, s, sur.v0) - sur.lam * sur.u0
  zv = obs_lib.right(obs, s, sur.u0) - sur.lam * sur.v0
  return (jnp.sum(s * sur.residual)
          - 0.5 * jnp.sum(jnp.sum(zu**2, axis=1) / sur.row_curv)
          - 0.5 * jnp.sum(jnp.sum(zv**2, axis=1) / sur.col_curv)
          + 0.5 * sur.lam * (jnp.sum(sur.u0**2) + jnp.sum(sur.v0**2)) + sur.offset)


def dual_grad(obs, sur: Surrogate, s):
  """∇D(S) = P_Ω(E − ΔU(S) V₀ᵀ − U₀ ΔV(S)ᵀ), an Ω-array."""
  du, dv = primal_from_dual(obs, sur, s)
  return obs_lib.on_omega(
      obs, sur.residual - obs_lib.sample(obs, du, sur.v0) - obs_lib.sample(obs, sur.u0, dv))


def _psd_top_eigenvalue_bound(gram, squarings: int = 5):
  """Upper bound on λ_max of each PSD r × r block of ``gram`` (…, r, r), by repeated squaring.

  For PSD G, λ_max ≤ ‖G^p‖_F^{1/p} ≤ r^{1/(2p)} λ_max; p = 2^squarings (r^{1/64} ≤ 1.03 for
  r ≤ 6 with the default 5). Each squaring is renormalised by its Frobenius norm c_k, giving
  λ_max(G) ≤ tr(G) · Π_k c_k^{2^{-k}} without overflow. Pure matmuls: batched LAPACK ``syevd``
  (``eigvalsh``) is avoided because jaxlib's CPU kernel can deadlock when two batched calls run
  concurrently on a 2-thread intra-op pool (observed with jaxlib 0.10.2 on 2 cores).
  """
  tiny = jnp.finfo(gram.dtype).tiny
  tr = jnp.trace(gram, axis1=-2, axis2=-1)
  h = gram / jnp.maximum(tr, tiny)[..., None, None]
  log_bound = jnp.zeros_like(tr)
  for k in range(1, squarings + 1):
    h = h @ h
    c = jnp.maximum(jnp.sqrt(jnp.sum(h * h, axis=(-2, -1))), tiny)
    h = h / c[..., None, None]
    log_bound = log_bound + jnp.log(c) / 2.0**k
  return tr * jnp.exp(log_bound)


def _block_norms(obs, factor, by_rows: bool):
  """Upper bound on λ_max(Σ_{j∈Ω_i} f_j f_jᵀ) for every row i (by_rows) or column j.

  Returns an (m,) or (n,) array within a factor r^{1/64} of the exact block norms.
  """
  if isinstance(obs, obs_lib.SparseObservations):
    seg, other, num = ((obs.rows, obs.cols, obs.shape[0]) if by_rows
                       else (obs.cols, obs.rows, obs.shape[1]))
    f = factor[other]
    gram = jax.ops.segment_sum(f[:, :, None] * f[:, None, :], seg, num_segments=num)
  else:
    mask = obs.mask if by_rows else obs.mask.T
    gram = jnp.einsum("ij,jk,jl->ikl", mask, factor, factor)
  return _psd_top_eigenvalue_bound(gram)


def lipschitz_constant(obs, sur: Surrogate):
  """Lipschitz bound of ∇D: max_i λ_max(V_{Ω_i}ᵀ V_{Ω_i}) / α_i + max_j λ_max(U_{Ω^j}ᵀ U_{Ω^j}) / β_j.

  −∇²D = K_r + K_c where K_r acts on each row of S separately as P_{Ω_i} V₀ V₀ᵀ P_{Ω_i} / α_i
  (block diagonal over rows) and K_c likewise over columns, so ‖∇²D‖ ≤ ‖K_r‖ + ‖K_c‖ with each
  norm the largest block norm (bounded above within a factor r^{1/64}, see
  :func:`_psd_top_eigenvalue_bound`). Costs O(|Ω| r² + (m + n) r³) once per MM step; much
  tighter than ‖V₀‖₂² / min α when row counts vary.
  """
  row = _block_norms(obs, sur.v0, True) / sur.row_curv
  col = _block_norms(obs, sur.u0, False) / sur.col_curv
  return jnp.max(row) + jnp.max(col)


def duality_gap(obs, sur: Surrogate, s):
  """Returns (F(ΔU(S), ΔV(S)), D(S)); their difference is the duality gap."""
  du, dv = primal_from_dual(obs, sur, s)
  return surrogate_value(obs, sur, du, dv), dual_value(obs, sur, s)


def solve_dual(obs, sur: Surrogate, s0, *, tol=1e-4, max_iters: int = 500,
               check_every: int = 5, restart: bool = True) -> APGResult:
  """Maximises D(S) over |S| ≤ w (S on Ω) by FISTA with clipping (Yao & Kwok 2018).

  Args:
    obs: the observations (sparse or dense layout).
    sur: the surrogate from :func:`build_surrogate`.
    s0: warm start (Ω-array); it is clipped into the box first.
    tol: stop when the duality gap F − D ≤ tol · max(|F|, tiny).
    max_iters: cap on APG iterations (rounded up to a multiple of ``check_every``).
    check_every: APG iterations between two duality-gap evaluations.
    restart: reset the momentum when the gradient-mapping step opposes the last move
      (adaptive restart, O'Donoghue & Candès 2015); ``False`` gives plain FISTA.

  Returns:
    An :class:`APGResult`; ``iterations`` counts the APG steps taken.
  """
  step = 1.0 / jnp.maximum(lipschitz_constant(obs, sur),
                           jnp.asarray(jnp.finfo(sur.residual.dtype).tiny, sur.residual.dtype))
  lo, hi = -sur.weights, sur.weights
  s0 = jnp.clip(s0, lo, hi)
  tiny = jnp.asarray(jnp.finfo(sur.residual.dtype).tiny, sur.residual.dtype)

  def fista(_, carry):
    s, s_prev, t_prev, t = carry
    y = s + ((t_prev - 1.0) / t) * (s - s_prev)
    s_new = jnp.clip(y + step * dual_grad(obs, sur, y), lo, hi)
    t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
    if restart:  # gradient-mapping restart (O'Donoghue & Candès 2015): drop momentum on overshoot
      bad = jnp.sum((s_new - y) * (s_new - s)) < 0
      return s_new, s, jnp.where(bad, 1.0, t), jnp.where(bad, 1.0, t_new)
    return s_new, s, t, t_new

  def gap_ok(primal, dual):
    return (primal - dual) <= tol * jnp.maximum(jnp.abs(primal), tiny)

  def cond(c):
    _, _, _, _, k, primal, dual = c
    return (k < max_iters) & ~gap_ok(primal, dual)

  def body(c):
    s, s_prev, t_prev, t, k, _, _ = c
    s, s_prev, t_prev, t = jax.lax.fori_loop(0, check_every, fista, (s, s_prev, t_prev, t))
    primal, dual = duality_gap(obs, sur, s)
    return s, s_prev, t_prev, t, k + check_every, primal, dual

  one = jnp.ones((), sur.residual.dtype)
  primal0, dual0 = duality_gap(obs, sur, s0)
  init = (s0, s0, one, one, jnp.zeros((), jnp.int32), primal0, dual0)
  s, _, _, _, k, primal, dual = jax.lax.while_loop(cond, body, init)
  du, dv = primal_from_dual(obs, sur, s)
  return APGResult(s, du, dv, primal, dual, primal - dual, k)


def init_state(obs, u, v, lam, loss: str = "l1", theta=1.0, rho=1.0) -> MMState:
  """The MM state at (U, V) with S = 0."""
  s = jnp.zeros_like(obs.values)
  return MMState(u, v, s, jnp.asarray(rho, u.dtype), objective(obs, u, v, lam, loss, theta))


def mm_step(obs, state: MMState, lam, loss: str = "l1", theta=1.0, *, inner_tol=1e-4,
            max_inner: int = 500, check_every: int = 5, rho_growth=1.2, rho_max=1.0,
            progress_tol=1e-4, max_refine: int = 3) -> tuple[MMState, MMInfo]:
  """One MM step: linearise φ at the current residual, solve the surrogate's dual, update U, V.

  With ρ ≥ 1 the surrogate is a global majorizer, so an *exact* surrogate minimiser never raises
  H; an inexact APG solve can (its primal F(ΔU, ΔV) may exceed F(0, 0) = H while the duality
  gap is still above ``inner_tol``). Monotone decrease is therefore enforced: when H rises after
  an exact-MM step, the dual is re-solved from the current S with a 100× tighter tolerance and
  4× the iteration cap, up to ``max_refine`` times; if H still rises the step is rejected (U, V
  kept; the more accurate S warm-starts the next step). With ρ < 1 (relaxed MM, RMF-MM) a step
  that raises H is rejected without refinement. In both cases ρ becomes
  min(ρ · rho_growth, rho_max) when the relative decrease of H is below ``progress_tol`` and
  stays as it is otherwise (the RMF-MM continuation rule). Hence H never increases along the
  accepted steps (compared in the working precision).
  """
  sur = build_surrogate(obs, state.u, state.v, lam, loss, theta, state.rho)
  res = solve_dual(obs, sur, state.s, tol=inner_tol, max_iters=max_inner,
                   check_every=check_every)
  h_new = objective(obs, state.u + res.du, state.v + res.dv, lam, loss, theta)
  exact = state.rho >= 1.0

  def refine_cond(c):
    _, h, tries, _, _, _ = c
    return exact & (h > state.objective) & (tries < max_refine)

  def refine_body(c):
    r, _, tries, tol, iters, total = c
    tol, iters = tol * 0.01, iters * 4
    r = solve_dual(obs, sur, r.s, tol=tol, max_iters=iters, check_every=check_every)
    h = objective(obs, state.u + r.du, state.v + r.dv, lam, loss, theta)
    return r, h, tries + 1, tol, iters, total + r.iterations

  tol0 = jnp.asarray(inner_tol, sur.residual.dtype)
  res, h_new, _, _, _, total_iters = jax.lax.while_loop(
      refine_cond, refine_body,
      (res, h_new, jnp.zeros((), jnp.int32), tol0, jnp.asarray(max_inner, jnp.int32),
       res.iterations))
  u_new, v_new = state.u + res.du, state.v + res.dv
  accepted = h_new <= state.objective
  u = jnp.where(accepted, u_new, state.u)
  v = jnp.where(accepted, v_new, state.v)
  h = jnp.where(accepted, h_new, state.objective)
  decrease = (state.objective - h_new) / jnp.maximum(jnp.abs(state.objective), 1e-30)
  grown = jnp.minimum(state.rho * rho_growth, jnp.maximum(rho_max, state.rho))
  rho = jnp.where(accepted & (decrease >= progress_tol), state.rho, grown)
  info = MMInfo(h, res.primal, res.gap, total_iters, accepted, state.rho)
  return MMState(u, v, res.s, rho, h), info


def _check_key(key):
  """A typed ``jax.random.key`` (or a legacy uint32 ``PRNGKey``); ints are refused."""
  dtype = getattr(key, "dtype", None)
  if dtype is None or isinstance(key, (int, float, bool)):
    raise TypeError(f"key must be a jax.random.key(seed), got {type(key).__name__} {key!r}; "
                    "use jax.random.key(0) instead of 0")
  if jnp.issubdtype(dtype, jax.dtypes.prng_key):
    return key
  if dtype == jnp.uint32 and key.shape[-1:] == (2,):
    return jax.random.wrap_key_data(key)
  raise TypeError(f"key must be a jax.random.key(seed), got an array of dtype {dtype} and "
                  f"shape {getattr(key, 'shape', ())}")


def _check_common(observations, rank, loss, max_outer, max_inner, check_every):
  if not isinstance(observations, (obs_lib.SparseObservations, obs_lib.DenseObservations)):
    raise TypeError("observations must be SparseObservations or DenseObservations "
                    f"(see sparse_observations / dense_observations), got {type(observations).__name__}")
  get_loss(loss)
  m, n = observations.shape
  if not isinstance(rank, (int, np.integer)) or isinstance(rank, (bool, np.bool_)):
    raise TypeError(f"rank must be an int, got {type(rank).__name__}")
  rank = int(rank)
  if rank <= 0 or rank > min(m, n):
    raise ValueError(f"rank must be in [1, min(m, n) = {min(m, n)}], got {rank}")
  for name, val in (("max_outer", max_outer), ("max_inner", max_inner),
                    ("check_every", check_every)):
    if not isinstance(val, int) or val < 1:
      raise ValueError(f"{name} must be a positive int, got {val!r}")
  if validation.is_concrete(observations.values):
    if isinstance(observations, obs_lib.SparseObservations):
      if observations.values.shape[-1] == 0:
        raise ValueError("the observed set Ω is empty")
      validation.check_array(observations.values, "observations.values", finite=True)
  obs_lib.check_indices(observations)
  return rank


def _check_scalar(x, name):
  # NumPy, not jnp: under an outer ``jit`` jnp operations on a concrete value are staged (tracers)
  if validation.is_concrete(x):
    arr = np.asarray(x, np.float64)
    if arr.ndim == 0 and not (arr > 0 and np.isfinite(arr)):
      raise ValueError(f"{name} must be a finite number > 0, got {float(arr)}")


INIT_MODES = ("spectral", "random", "l1")


def spectral_init(key, observations, rank: int, *, num_iters: int = 10, oversample: int = 5):
  """Balanced factors of the rank-r truncated SVD of P_Ω(X) / p, p = |Ω| / (m n).

  P_Ω(X) / p is an unbiased estimate of X under uniform sampling of Ω, so its top-r singular
  subspace is the standard spectral start of matrix completion (Keshavan, Montanari & Oh 2010).
  It is computed by randomized subspace iteration (Halko, Martinsson & Tropp 2011) with
  ``rank + oversample`` vectors and ``num_iters`` power steps; every product with P_Ω(X) is a
  gather/``segment_sum`` on the sparse layout, O(|Ω| r) time and O((m + n) r) memory — no
  m × n array is formed (on the dense layout the products are m × n matmuls). With
  P_Ω(X)/p ≈ Q W Σ Zᵀ the factors are U = Q W_r Σ_r^{1/2}, V = Z_r Σ_r^{1/2}.

  Args:
    key: ``jax.random.key`` for the Gaussian test matrix.
    observations: :class:`SparseObservations` or :class:`DenseObservations`.
    rank: r, 1 ≤ r ≤ min(m, n).
    num_iters: power (subspace) iterations.
    oversample: extra subspace vectors beyond r (capped at min(m, n) in total).

  Returns:
    ``(U, V)`` of shapes (m, r) and (n, r).
  """
  rank = _check_common(observations, rank, "l1", 1, 1, 1)
  key = _check_key(key)
  if not isinstance(num_iters, int) or num_iters < 0:
    raise ValueError(f"num_iters must be a non-negative int, got {num_iters!r}")
  if not isinstance(oversample, int) or oversample < 0:
    raise ValueError(f"oversample must be a non-negative int, got {oversample!r}")
  return _spectral(key, observations, rank, num_iters, oversample)


def _spectral(key, obs, rank: int, num_iters: int = 10, oversample: int = 5):
  m, n = obs.shape
  width = min(rank + oversample, m, n)
  dtype = obs.values.dtype
  scaled = obs.values * (m * n / obs_lib.count(obs))  # P_Ω(X) / p (zero off Ω on dense)
  g = jax.random.normal(key, (n, width), dtype)
  q, _ = jnp.linalg.qr(obs_lib.left(obs, scaled, g))

  def power(_, q):
    z, _ = jnp.linalg.qr(obs_lib.right(obs, scaled, q))
    q, _ = jnp.linalg.qr(obs_lib.left(obs, scaled, z))
    return q

  q = jax.lax.fori_loop(0, num_iters, power, q)
  bt = obs_lib.right(obs, scaled, q)  # (Qᵀ A)ᵀ, n × width
  z, sig, wt = jnp.linalg.svd(bt, full_matrices=False)  # Qᵀ A = wtᵀ diag(sig) zᵀ
  root = jnp.sqrt(sig[:rank])
  return (q @ wt.T[:, :rank]) * root, z[:, :rank] * root


@functools.partial(jax.jit, static_argnames=("rank", "max_outer", "max_inner", "check_every",
                                             "init_mode"))
def _fit(key, obs, u0, v0, loss, lam, theta, outer_tol, inner_tol, rho0, rho_growth, rho_max,
         init_scale, *, rank, max_outer, max_inner, check_every, init_mode="random"):
  dtype = obs.values.dtype
  m, n = obs.shape
  ku, kv = jax.random.split(key)
  if u0 is None:
    if init_mode == "spectral":
      u0, v0 = _spectral(ku, obs, rank)
    else:
      u0 = init_scale * jax.random.normal(ku, (m, rank), dtype)
      v0 = init_scale * jax.random.normal(kv, (n, rank), dtype)
  state = init_state(obs, u0, v0, lam, loss, theta, rho0)
  objs = jnp.full((max_outer + 1,), jnp.nan, dtype).at[0].set(state.objective)
  gaps = jnp.full((max_outer,), jnp.nan, dtype)
  iters = jnp.zeros((max_outer,), jnp.int32)

  def cond(c):
    _, t, done, _, _, _ = c
    return (t < max_outer) & ~done

  def body(c):
    st, t, _, objs, gaps, iters = c
    new, info = mm_step(obs, st, lam, loss, theta, inner_tol=inner_tol, max_inner=max_inner,
                        check_every=check_every, rho_growth=rho_growth, rho_max=rho_max,
                        progress_tol=outer_tol)
    rel = jnp.abs(st.objective - new.objective) / jnp.maximum(jnp.abs(st.objective), 1e-30)
    done = info.accepted & (rel <= outer_tol) & (st.rho >= rho_max)
    return (new, t + 1, done, objs.at[t + 1].set(new.objective), gaps.at[t].set(info.gap),
            iters.at[t].set(info.apg_iterations))

  init = (state, jnp.zeros((), jnp.int32), jnp.zeros((), bool), objs, gaps, iters)
  st, t, done, objs, gaps, iters = jax.lax.while_loop(cond, body, init)
  return FitResult(st.u, st.v, objs, gaps, iters, t, done)


def fit(key, observations, rank: int, loss: str = "l1", *, theta=1.0, lam=None,
        init="spectral", init_scale=1.0, max_outer: int = 100, outer_tol=1e-4, inner_tol=1e-4,
        max_inner: int = 500, check_every: int = 5, rho0=1.0, rho_growth=1.2,
        rho_max=1.0) -> FitResult:
  """RMFNL (Yao & Kwok, NeurIPS 2018): MM with the dual-APG surrogate solver.

  Minimises Σ_Ω φ(|X − U Vᵀ|) + λ/2 (‖U‖² + ‖V‖²). On :class:`SparseObservations` every
  APG iteration costs O(|Ω| r + (m + n) r) time and O(|Ω| + (m + n) r) memory; no m × n array
  is formed. The loss is dispatched on a traced id, so every loss shares one compiled program,
  and ``key``, ``theta``, ``lam`` and an explicit ``init`` may be batched with ``jax.vmap``
  (one compile for a grid of θ/λ/seeds).

  Every MM step is monotone: H never increases (see :func:`mm_step`).

  Starting point. Yao & Kwok's Algorithm (MM with the dual-APG surrogate) takes a generic
  initial (U₁, V₁) and is analysed for any start; we did not find in the paper a prescription
  that the nonconvex fits start from the ℓ1 (RMF) solution, so that warm start is offered
  here as the documented option ``init="l1"`` rather than as the paper's protocol. The default
  is the spectral start (:func:`spectral_init`): from random N(0, σ²) factors the MM iterates of
  both ℓ1 and the concave losses can stall at poor critical points (the concave weights
  φ′(|E|) down-weight every large residual, including those of a bad start).

  Args:
    key: a ``jax.random.key`` (spectral test matrix or random factors; also accepts a legacy
      uint32 ``PRNGKey``, never a bare int).
    observations: :class:`SparseObservations` (the scalable path) or :class:`DenseObservations`.
    rank: the factor rank r, 1 ≤ r ≤ min(m, n) (a Python or NumPy int).
    loss: ``"l1"``, ``"lsp"``, ``"geman"`` or ``"laplace"`` (see :mod:`.losses`).
    theta: θ of the nonconvex loss (ignored for ℓ1).
    lam: λ; default 20 / (m + n) as in RMF-MM.
    init: ``"spectral"`` (default, also for ``None``; rank-r truncated SVD of P_Ω(X)/p, :func:`spectral_init`),
      ``"random"`` (N(0, ``init_scale``²) factors), ``"l1"`` (first an ℓ1 fit from the spectral
      start with the same settings, then ``loss`` from its solution; for ``loss="l1"`` the same
      as ``"spectral"``), or an explicit ``(U, V)`` pair.
    init_scale: standard deviation of the random initialisation (``init="random"`` only).
    max_outer: cap on MM steps.
    outer_tol: stop when |ΔH| ≤ outer_tol · |H| on an accepted exact-MM step; a relaxed step
      (ρ < rho_max) that lowers H by less than this raises ρ.
    inner_tol: relative duality-gap tolerance of each APG solve.
    max_inner: cap on APG iterations per MM step.
    check_every: APG iterations between duality-gap checks.
    rho0: initial relaxation ρ of the quadratic bound (1 = exact MM; RMF-MM uses 0.004).
    rho_growth: factor by which ρ grows after a step with too little progress (RMF-MM: 1.2).
    rho_max: the largest ρ (1 = the exact majorizer).

  Returns:
    A :class:`FitResult`.

  Raises:
    TypeError: wrong observation type, a non-key ``key`` or non-int ``rank``.
    ValueError: ``rank`` out of [1, min(m, n)], unknown ``loss`` or ``init``, non-positive
      settings, NaN values, an empty Ω or indices outside ``observations.shape``.
  """
  rank = _check_common(observations, rank, loss, max_outer, max_inner, check_every)
  key = _check_key(key)
  m, n = observations.shape
  dtype = observations.values.dtype
  lam = default_lambda((m, n)) if lam is None else lam
  _check_scalar(lam, "lam")
  _check_scalar(theta, "theta")
  _check_scalar(rho0, "rho0")
  mode = "random"
  if init is None:
    init = "spectral"
  if isinstance(init, str):
    validation.check_in(init, "init", INIT_MODES)
    if init == "l1" and loss != "l1":
      first = fit(key, observations, rank, "l1", lam=lam, init="spectral", max_outer=max_outer,
                  outer_tol=outer_tol, inner_tol=inner_tol, max_inner=max_inner,
                  check_every=check_every, rho0=rho0, rho_growth=rho_growth, rho_max=rho_max)
      init = (first.u, first.v)
    else:
      mode = "random" if init == "random" else "spectral"
      u0 = v0 = None
  if not isinstance(init, str):
    if not isinstance(init, (tuple, list)) or len(init) != 2:
      raise TypeError(f"init must be one of {list(INIT_MODES)} or a (U, V) pair, got {init!r}")
    u0, v0 = init
    validation.check_array(u0, "init[0]", shape=(m, rank), finite=True)
    validation.check_array(v0, "init[1]", shape=(n, rank), finite=True)
    u0, v0 = jnp.asarray(u0, dtype), jnp.asarray(v0, dtype)
  f = lambda x: jnp.asarray(x, dtype)
  loss = jnp.asarray(losses_lib.loss_id(loss), jnp.int32)
  return _fit(key, observations, u0, v0, loss, f(lam), f(theta), f(outer_tol), f(inner_tol),
              f(rho0), f(rho_growth), f(rho_max), f(init_scale), rank=rank,
              max_outer=max_outer, max_inner=max_inner, check_every=check_every, init_mode=mode)


def fit_dense_l1(key, observations, rank: int, *, lam=None, init="spectral", init_scale=1.0,
                 max_outer: int = 300, outer_tol=1e-4, inner_tol=1e-5, max_inner: int = 2000,
                 check_every: int = 10, rho0=0.004, rho_growth=1.2, rho_max=1.0) -> FitResult:
  """RMFNL's ℓ1 solver (relaxed MM + dual APG) on the dense-mask layout, with RMF-MM's schedule.

  This is *not* RMF-MM (whose inner solver is LADMPSAP: :func:`.ladmpsap.rmf_mm_ladmpsap`, exported
  as ``robust_mf.rmf_mm``); it isolates the cost of the dense layout (O(m n r) per inner
  iteration whatever |Ω| is) from the cost of the solver. Defaults follow RMF-MM: λ = 20 / (m + n),
  outer tolerance 1e-4, inner tolerance 1e-5, relaxed bound ratio ρ starting at 0.004 and
  multiplied by 1.2 whenever a step lowers H by less than ``outer_tol`` (relatively), up to 1.

  Args:
    key: ``jax.random.key`` for the random initialisation.
    observations: :class:`DenseObservations`, or :class:`SparseObservations` (densified).
    rank: factor rank.
    init: as in :func:`fit` (default the same spectral start, so that the two solvers are compared
      from one starting point; ``"random"`` gives RMF-MM's own random start).
    See :func:`fit` for the other arguments.
  """
  if isinstance(observations, obs_lib.SparseObservations):
    rank = _check_common(observations, rank, "l1", max_outer, max_inner, check_every)
    observations = obs_lib.to_dense(observations)
  return fit(key, observations, rank, "l1", lam=lam, init=init, init_scale=init_scale,
             max_outer=max_outer, outer_tol=outer_tol, inner_tol=inner_tol, max_inner=max_inner,
             check_every=check_every, rho0=rho0, rho_growth=rho_growth, rho_max=rho_max)
