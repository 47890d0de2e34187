"""Meta-gradient actor-critic: the inner V-trace update and the meta-gradient through it.

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018 (arXiv:1805.09801).

The learner's parameters θ are updated by ``θ' = θ + f(τ, θ, η)`` where ``f`` is one optimiser step
on the IMPALA actor-critic loss of a trajectory ``τ`` whose return uses the meta-parameters
``η = (γ, λ)`` (paper Sec. 2, Eq. 1). The meta-parameters are adapted online by the gradient of a
meta-objective ``J'(τ', θ', η')`` on the *next* trajectory ``τ'`` with fixed reference ``η'``
(Eq. 2-5)::

  dJ'/dη = ∂J'(τ', θ', η')/∂θ' · dθ'/dη,     dθ'/dη ≈ z' = μ z + ∂f(τ, θ, η)/∂η.

``γ = sigmoid(x_γ)`` and ``λ = sigmoid(x_λ)``; Adam updates the logits ``x``. The value targets and
advantages of the inner loss are constants w.r.t. θ (stop-gradient on the values) but stay
differentiable in η, which is what gives the meta-gradient its signal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import rlax

from jaxpapers._src.validation import check_array, check_in, is_concrete

Array = jax.Array


class MetaParams(NamedTuple):
  """The meta-parameters η as unconstrained logits: ``γ = sigmoid(gamma_logit)`` etc."""

  gamma_logit: Array
  lambda_logit: Array


class MetaTrace(NamedTuple):
  """The accumulated ``z ≈ dθ/dη`` of Eq. 4: one parameter-shaped tree per meta-parameter."""

  gamma: Any
  lambda_: Any


class Trajectory(NamedTuple):
  """A batch of time-major trajectories (``T`` steps, ``B`` environments).

  Attributes:
    obs: ``[T, B, ...]`` observation the action was taken in.
    next_obs: ``[T, B, ...]`` observation after the step *before* any auto-reset (gymnax's
      ``info["final_observation"]``); used to bootstrap on truncation.
    actions: ``[T, B]`` integer actions.
    rewards: ``[T, B]`` rewards ``R_{t+1}``.
    terminated: ``[T, B]`` bool, the episode ended in a terminal state (no bootstrap).
    truncated: ``[T, B]`` bool, the episode was cut by a time limit (bootstrap from next_obs).
    first: ``[T, B]`` bool, ``obs[t]`` is the first observation of an episode (resets a core).
    behaviour_logits: ``[T, B, A]`` logits of the policy that acted.
    core_state: the recurrent state before ``obs[0]`` (leaves ``[B, ...]``); ``()`` if none.
  """

  obs: Array
  next_obs: Array
  actions: Array
  rewards: Array
  terminated: Array
  truncated: Array
  first: Array
  behaviour_logits: Array
  core_state: Any = ()


class AgentOutput(NamedTuple):
  """Network outputs on a trajectory: ``logits [T,B,A]``, ``values [T,B]``, ``next_values [T,B]``."""

  logits: Array
  values: Array
  next_values: Array
  core_state: Any = ()


# apply(params, obs, next_obs, first, core_state, eta_input) -> AgentOutput
ApplyFn = Callable[..., AgentOutput]


def _logit(p: float) -> float:
  return float(np.log(p) - np.log1p(-p))


def max_logit(dtype=jnp.float32) -> float:
  """The largest ``|x|`` whose ``sigmoid`` in ``dtype`` stays strictly inside (0, 1).

  ``logit(1 − ε)`` with ``ε`` the dtype's machine epsilon: float32 rounds ``sigmoid(x)`` to exactly
  1.0 from ``x ≈ 17.3`` on (a discount of exactly 1), so logits are clipped to ``±15.9``.
  """
  eps = float(jnp.finfo(dtype).eps)
  return _logit(1.0 - eps)


def _check_float_dtype(dtype, name: str = "dtype"):
  try:
    d = jnp.dtype(dtype)
  except TypeError as e:
    raise TypeError(f"{name} must be a floating dtype, got {dtype!r}") from e
  if not jnp.issubdtype(d, jnp.floating):
    raise TypeError(f"{name} must be a floating dtype, got {d}")
  return d


def init_meta_params(gamma: float = 0.99, lambda_: float = 0.9, dtype=jnp.float32) -> MetaParams:
  """Meta-parameters whose sigmoids equal ``gamma`` and ``lambda_``.

  The logits are clipped to ``±max_logit(dtype)`` so that ``sigmoid`` in ``dtype`` never rounds
  to exactly 0 or 1: e.g. ``gamma = 1 − 1e-9`` gives ``γ = 1 − 2⁻²³`` in float32 rather than a
  discount of 1.0 (an undiscounted return the meta-gradient would then start from).

  Args:
    gamma: initial discount, in (0, 1) (a logit of 1 does not exist).
    lambda_: initial bootstrapping parameter, in (0, 1).
    dtype: float dtype of the logits.

  Raises:
    ValueError: if ``gamma`` or ``lambda_`` is not a number in (0, 1).
    TypeError: if ``dtype`` is not a floating dtype.
  """
  dtype = _check_float_dtype(dtype)
  for name, v in (("gamma", gamma), ("lambda_", lambda_)):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
      raise ValueError(f"{name} must be a number in (0, 1), got {v!r}")
    if not 0.0 < float(v) < 1.0:
      raise ValueError(f"{name} must be in (0, 1) to be represented as sigmoid(logit), got {v}")
  bound = max_logit(dtype)
  logits = (float(np.clip(_logit(float(v)), -bound, bound)) for v in (gamma, lambda_))
  return MetaParams(*(jnp.asarray(x, dtype) for x in logits))


def meta_values(meta: MetaParams) -> tuple[Array, Array]:
  """``(γ, λ) = (sigmoid(x_γ), sigmoid(x_λ))``."""
  return jax.nn.sigmoid(meta.gamma_logit), jax.nn.sigmoid(meta.lambda_logit)


def check_reference(gamma_ref: float, lambda_ref: float):
  """Validates the meta-objective's reference ``η' = (γ', λ')``, both in (0, 1]."""
  for name, v in (("gamma_ref", gamma_ref), ("lambda_ref", lambda_ref)):
    if not isinstance(v, (int, float, np.floating)) or not 0.0 < float(v) <= 1.0:
      raise ValueError(f"{name} must be a number in (0, 1], got {v!r}")


def check_trajectory(traj: Trajectory, num_actions: int | None = None) -> tuple[int, int]:
  """Checks that every field of ``traj`` has matching ``[T, B]`` leading dims; returns ``(T, B)``.

  Raises:
    TypeError: if ``traj`` is not a :class:`Trajectory` or a field has the wrong dtype.
    ValueError: naming the first field whose shape disagrees with ``rewards``.
  """
  if not isinstance(traj, Trajectory):
    raise TypeError(f"trajectory must be a Trajectory, got {type(traj).__name__}")
  check_array(traj.rewards, "trajectory.rewards", ndim=2, dtype_kind="f")
  t, b = traj.rewards.shape
  if t < 1 or b < 1:
    raise ValueError(f"trajectory.rewards must have T >= 1 and B >= 1, got shape {(t, b)}")
  check_array(traj.actions, "trajectory.actions", shape=(t, b), dtype_kind="iu")
  for name in ("terminated", "truncated", "first"):
    check_array(getattr(traj, name), f"trajectory.{name}", shape=(t, b), dtype_kind="b")
  check_array(traj.behaviour_logits, "trajectory.behaviour_logits", ndim=3, dtype_kind="f")
  if traj.behaviour_logits.shape[:2] != (t, b):
    raise ValueError(f"trajectory.behaviour_logits must have leading shape {(t, b)}, got "
                     f"{tuple(traj.behaviour_logits.shape)}")
  if num_actions is not None and traj.behaviour_logits.shape[2] != num_actions:
    raise ValueError(f"trajectory.behaviour_logits must have {num_actions} actions, got "
                     f"{traj.behaviour_logits.shape[2]}")
  for name in ("obs", "next_obs"):
    x = getattr(traj, name)
    check_array(x, f"trajectory.{name}")
    if x.ndim < 2 or x.shape[:2] != (t, b):
      raise ValueError(f"trajectory.{name} must have leading shape {(t, b)}, got {tuple(x.shape)}")
  if traj.obs.shape != traj.next_obs.shape:
    raise ValueError(f"trajectory.next_obs must match trajectory.obs's shape {tuple(traj.obs.shape)}, "
                     f"got {tuple(traj.next_obs.shape)}")
  for leaf in jax.tree.leaves(traj.core_state):
    if leaf.shape[:1] != (b,):
      raise ValueError(f"trajectory.core_state leaves must have leading batch {b}, got {leaf.shape}")
  return t, b


def vtrace_targets(values: Array, next_values: Array, rewards: Array, terminated: Array,
                   truncated: Array, rhos: Array, gamma, lambda_) -> tuple[Array, Array]:
  """V-trace value targets and policy-gradient advantages with ``ρ̄ = c̄ = 1`` (IMPALA Eq. 1).

  The trace coefficient is ``c_t = λ min(1, ρ_t)``, i.e. λ sits inside the trace, so with on-policy
  data (``ρ = 1``) the targets are the λ-returns
  ``G_t = R_{t+1} + γ_t [(1-λ) v(S_{t+1}) + λ G_{t+1}]`` with ``γ_t = γ (1 - done_t)``.
  A truncated step bootstraps from ``next_values`` (folded into the reward as ``γ v(S_final)``).

  Uses :func:`rlax.vtrace_td_error_and_advantage` with ``stop_target_gradients=False`` so the
  outputs stay differentiable in ``gamma``/``lambda_``; callers stop gradients on the values.

  Args:
    values: ``[T, B]`` ``v(S_t)``.
    next_values: ``[T, B]`` ``v(S_{t+1})`` before reset.
    rewards: ``[T, B]``.
    terminated: ``[T, B]`` bool.
    truncated: ``[T, B]`` bool.
    rhos: ``[T, B]`` importance ratios ``π/μ`` of the taken actions.
    gamma: scalar discount (may be traced).
    lambda_: scalar bootstrapping parameter (may be traced).

  Returns:
    ``(targets, pg_advantages)``, both ``[T, B]``.

  Raises:
    AssertionError: (chex) if an input is not ``[T, B]`` or ``gamma``/``lambda_`` is not a scalar.
    TypeError: if ``values`` is not floating or ``terminated``/``truncated`` are not bool.
    ValueError: if a concrete ``gamma`` or ``lambda_`` is outside [0, 1].
  """
  chex.assert_rank([values, next_values, rewards, terminated, truncated, rhos], 2)
  chex.assert_equal_shape([values, next_values, rewards, terminated, truncated, rhos])
  chex.assert_rank([gamma, lambda_], 0)
  check_array(values, "values", dtype_kind="f")
  check_array(terminated, "terminated", dtype_kind="b")
  check_array(truncated, "truncated", dtype_kind="b")
  for name, v in (("gamma", gamma), ("lambda_", lambda_)):
    if is_concrete(v) and abs(float(v) - 0.5) > 0.5:  # NaN passes: an honest NaN target
      raise ValueError(f"{name} must be in [0, 1], got {float(v)}")
  dtype = values.dtype
  term = terminated.astype(dtype)
  done = jnp.logical_or(terminated, truncated).astype(dtype)
  boot = truncated.astype(dtype) * (1.0 - term)
  gamma = jnp.asarray(gamma, dtype)
  lambda_ = jnp.asarray(lambda_, dtype)
  discounts = gamma * (1.0 - done)
  rewards = rewards.astype(dtype) + gamma * boot * next_values

  def one(v_tm1, v_t, r_t, d_t, rho):
    return rlax.vtrace_td_error_and_advantage(
        v_tm1, v_t, r_t, d_t, rho, lambda_ * jnp.ones_like(d_t), clip_rho_threshold=1.0,
        clip_pg_rho_threshold=1.0, stop_target_gradients=False)

  out = jax.vmap(one, in_axes=1, out_axes=1)(values, next_values, rewards, discounts,
                                            rhos.astype(dtype))
  return out.errors + values, out.pg_advantage


def lambda_returns_reference(values, next_values, rewards, terminated, truncated, gamma, lambda_):
  """NumPy λ-return by the backward recursion (a reference for tests; not jitted).

  ``G_t = R_{t+1} + γ(1-done_t)[(1-λ) v(S_{t+1}) + λ G_{t+1}] + γ trunc_t v(S_final)``,
  ``G_T`` bootstrapped on ``next_values[T-1]``.
  """
  values, next_values, rewards = (np.asarray(a, np.float64) for a in (values, next_values, rewards))
  term, trunc = np.asarray(terminated, bool), np.asarray(truncated, bool)
  t_len = rewards.shape[0]
  out = np.zeros_like(rewards)
  g_next = next_values[-1]
  for t in reversed(range(t_len)):
    done = term[t] | trunc[t]
    boot_trunc = trunc[t] & ~term[t]
    if t == t_len - 1:
      cont = next_values[t]
    else:
      cont = (1 - lambda_) * next_values[t] + lambda_ * g_next
    out[t] = rewards[t] + np.where(done, 0.0, gamma * cont) + np.where(boot_trunc,
                                                                        gamma * next_values[t], 0.0)
    g_next = out[t]
  return out


def _log_probs(logits: Array, actions: Array) -> Array:
  return jnp.take_along_axis(jax.nn.log_softmax(logits), actions[..., None], axis=-1)[..., 0]


def actor_critic_loss(params, meta: MetaParams, traj: Trajectory, apply_fn: ApplyFn, *,
                      eta_input: Array | None = None, baseline_cost: float = 0.5,
                      entropy_cost: float = 0.01) -> tuple[Array, dict]:
  """The IMPALA loss ``L = L_pg + c_v · ½ mean (G^v − v)² − c_H · mean H(π)`` (paper Sec. 4).

  ``G^v`` and the policy-gradient advantages are V-trace with ``(γ, λ) = sigmoid(η)`` computed on
  stop-gradient values: constants w.r.t. θ, differentiable w.r.t. η. The rlax pieces are called
  with ``use_stop_gradient=False`` so the advantage keeps its η-dependence.

  Args:
    params: network parameters θ.
    meta: meta-parameters η.
    traj: a :class:`Trajectory`.
    apply_fn: ``apply(params, obs, next_obs, first, core_state, eta_input) -> AgentOutput``.
    eta_input: what the network's η-embedding sees (``None`` when not conditioned).
    baseline_cost: ``c_v`` (paper/IMPALA: 0.5).
    entropy_cost: ``c_H`` (paper/IMPALA: 0.01).

  Returns:
    ``(loss, metrics)``.
  """
  gamma, lambda_ = meta_values(meta)
  out = apply_fn(params, traj.obs, traj.next_obs, traj.first, traj.core_state, eta_input)
  logp = _log_probs(out.logits, traj.actions)
  rhos = jnp.exp(jax.lax.stop_gradient(logp) - _log_probs(traj.behaviour_logits, traj.actions))
  targets, adv = vtrace_targets(jax.lax.stop_gradient(out.values),
                                jax.lax.stop_gradient(out.next_values), traj.rewards,
                                traj.terminated, traj.truncated, rhos, gamma, lambda_)
  ones = jnp.ones(traj.actions.shape[0], out.logits.dtype)
  pg = jax.vmap(lambda lg, a, ad: rlax.policy_gradient_loss(lg, a, ad, ones, use_stop_gradient=False),
                in_axes=1)(out.logits, traj.actions.astype(jnp.int32), adv).mean()
  ent = jax.vmap(lambda lg: rlax.entropy_loss(lg, ones), in_axes=1)(out.logits).mean()
  value = 0.5 * jnp.mean(jnp.square(targets - out.values))
  loss = pg + baseline_cost * value + entropy_cost * ent
  return loss, {"pg_loss": pg, "value_loss": value, "entropy": -ent}


def _is_number(v) -> bool:
  return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating))


def _check_finite_number(v, name: str, *, allow_zero: bool = False):
  if not _is_number(v) or not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
    raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {v!r}")


def _check_rate(v, name: str):
  if callable(v):  # an optax schedule
    return
  _check_finite_number(v, name)


def _check_unit_interval(v, name: str):
  if not _is_number(v) or not 0.0 <= float(v) < 1.0:
    raise ValueError(f"{name} must be a number in [0, 1), got {v!r}")


def make_inner_optimizer(kind: str = "rmsprop", learning_rate=6e-4, *, decay: float = 0.99,
                         eps: float = 0.01, max_grad_norm: float = 40.0
                         ) -> optax.GradientTransformation:
  """The learner's optimiser: global-norm clipping then RMSProp (IMPALA/paper) or SGD.

  RMSProp uses ``g / sqrt(ν + ε)`` (ε inside the root, as TF's RMSProp used by IMPALA), which is
  smooth in the gradients and so differentiable in η even where a gradient is zero.

  Args:
    kind: ``"rmsprop"`` or ``"sgd"``.
    learning_rate: float or optax schedule (IMPALA Atari: 6e-4 annealed to 0).
    decay: RMSProp decay (0.99).
    eps: RMSProp ε (0.01).
    max_grad_norm: global-norm clipping threshold (40).

  Raises:
    ValueError: unknown ``kind``; a non-positive or non-finite ``learning_rate`` (a callable is
      taken as a schedule), ``decay`` outside [0, 1), ``eps`` < 0 or ``max_grad_norm`` <= 0.
  """
  check_in(kind, "kind", ("rmsprop", "sgd"))
  _check_rate(learning_rate, "learning_rate")
  _check_unit_interval(decay, "decay")
  _check_finite_number(eps, "eps", allow_zero=True)
  _check_finite_number(max_grad_norm, "max_grad_norm")
  if kind == "rmsprop":
    opt = optax.rmsprop(learning_rate, decay=decay, eps=eps, eps_in_sqrt=True)
  else:
    opt = optax.sgd(learning_rate)
  return optax.chain(optax.clip_by_global_norm(max_grad_norm), opt)


class MetaLearner(NamedTuple):
  """Pure functions of one meta-gradient learner (built by :func:`make_meta_learner`).

  Attributes:
    inner_update: ``(η, params, opt_state, traj) -> (params', opt_state')``.
    inner_update_with_metrics: same, plus a dict of loss metrics.
    meta_objective: ``(params', traj', η, pg_weights=None) -> (J', pg_weights)``; ``pg_weights``
      are the constant ``ρ'·A'`` (pass them to freeze the advantage, e.g. for finite differences).
    meta_gradient: ``(η, params, opt_state, traj, traj') -> (dJ'/dη, (params', opt_state', J'))``
      by reverse-mode through the update (the ``μ = 0`` trace of the paper's Atari runs).
    update_direction: ``(η, params, opt_state, traj) -> MetaTrace`` of ``∂θ'/∂η`` (forward mode).
    meta_gradient_from_trace: ``(grad_theta', z) -> dJ'/dη = ∂J'/∂θ' · z``.
    objective_grad: ``(params', traj', η) -> (∂J'/∂θ', J')``.
    eta_input: ``η -> what the network's embedding sees in the inner loss`` (or None).
  """

  inner_update: Callable
  inner_update_with_metrics: Callable
  meta_objective: Callable
  meta_gradient: Callable
  update_direction: Callable
  meta_gradient_from_trace: Callable
  objective_grad: Callable
  eta_input: Callable


def _resolve_network(network) -> tuple[ApplyFn, int | None]:
  """``(apply_fn, eta_embed_dim or None if unknown)`` of an Agent, a haiku Transformed or a callable."""
  if hasattr(network, "apply") and hasattr(network, "act") and hasattr(network, "eta_embed_dim"):
    return network.apply, int(network.eta_embed_dim)  # networks.Agent (flax or haiku)
  if type(network).__name__ == "Transformed" and type(network).__module__.startswith("haiku"):
    from jaxpapers.meta_gradient.haiku_networks import haiku_apply  # pylint: disable=g-import-not-at-top
    return haiku_apply(network), None
  if callable(network):
    return network, None
  raise TypeError("apply_fn must be an Agent, an hk.transform-ed network or a callable "
                  f"apply(params, obs, next_obs, first, core_state, eta_input), got "
                  f"{type(network).__name__}")


def make_meta_learner(apply_fn: ApplyFn, optimizer: optax.GradientTransformation, *,
                      gamma_ref: float = 0.995, lambda_ref: float = 1.0,
                      baseline_cost: float = 0.5, entropy_cost: float = 0.01,
                      eta_conditioning: bool = False, objective_uses_reference_eta: bool = True
                      ) -> MetaLearner:
  """Builds the inner update and meta-gradient of the paper (Sec. 2 and 4).

  Args:
    apply_fn: the network: ``apply(params, obs, next_obs, first, core_state, eta_input) ->
      AgentOutput``, or an :class:`~jaxpapers.meta_gradient.networks.Agent` (flax
      ``make_agent`` or haiku ``make_haiku_agent``/``from_haiku``), or an ``hk.transform``-ed
      forward with that signature (applied without an rng).
    optimizer: the inner optimiser (see :func:`make_inner_optimizer`).
    gamma_ref: γ' of the meta-objective, in (0, 1] (paper: 0.99 or 0.995).
    lambda_ref: λ' of the meta-objective, in (0, 1] (paper: 1).
    baseline_cost: value-loss weight (0.5).
    entropy_cost: entropy weight (0.01).
    eta_conditioning: feed ``[γ, λ]`` (stop-gradient) to the network's η-embedding (Sec. 1.4).
    objective_uses_reference_eta: if conditioned, J' feeds ``e_η'`` (True) or ``e_η`` (False).

  Raises:
    ValueError: if ``gamma_ref``/``lambda_ref`` are outside (0, 1], a cost is negative or
      non-finite, or ``eta_conditioning`` is set for an Agent without an η-embedding (an agent
      given as a bare function raises when first applied with an ``eta_input``).
    TypeError: if ``apply_fn`` is not a network, ``optimizer`` not an optax transformation or
      ``eta_conditioning`` not a bool.
  """
  apply_fn, embed_dim = _resolve_network(apply_fn)
  if not isinstance(optimizer, optax.GradientTransformation):
    raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                    f"{type(optimizer).__name__}")
  if not isinstance(eta_conditioning, (bool, np.bool_)):
    raise TypeError(f"eta_conditioning must be a bool, got {eta_conditioning!r}")
  if eta_conditioning and embed_dim == 0:
    raise ValueError("eta_conditioning=True needs an agent with an η-embedding "
                     "(make_agent(..., eta_embed_dim > 0)); this agent has eta_embed_dim=0")
  check_reference(gamma_ref, lambda_ref)
  _check_finite_number(baseline_cost, "baseline_cost", allow_zero=True)
  _check_finite_number(entropy_cost, "entropy_cost", allow_zero=True)
  ref = (float(gamma_ref), float(lambda_ref))

  def eta_input(meta):
    if not eta_conditioning:
      return None
    return jax.lax.stop_gradient(jnp.stack(meta_values(meta)))

  def inner_update_with_metrics(meta, params, opt_state, traj):
    check_trajectory(traj)
    grads, metrics = jax.grad(actor_critic_loss, has_aux=True)(
        params, meta, traj, apply_fn, eta_input=eta_input(meta), baseline_cost=baseline_cost,
        entropy_cost=entropy_cost)
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return optax.apply_updates(params, updates), new_opt_state, metrics

  def inner_update(meta, params, opt_state, traj):
    new_params, new_opt_state, _ = inner_update_with_metrics(meta, params, opt_state, traj)
    return new_params, new_opt_state

  def meta_objective(new_params, traj, meta, pg_weights=None):
    check_trajectory(traj)
    if eta_conditioning and objective_uses_reference_eta:
      e_in = jnp.asarray(ref, dtype=jax.tree.leaves(new_params)[0].dtype)
    else:
      e_in = eta_input(meta)
    out = apply_fn(new_params, traj.obs, traj.next_obs, traj.first, traj.core_state, e_in)
    logp = _log_probs(out.logits, traj.actions)
    if pg_weights is None:
      rhos = jnp.exp(logp - _log_probs(traj.behaviour_logits, traj.actions))
      _, adv = vtrace_targets(out.values, out.next_values, traj.rewards, traj.terminated,
                              traj.truncated, rhos, ref[0], ref[1])
      pg_weights = adv
    pg_weights = jax.lax.stop_gradient(pg_weights)
    return jnp.mean(pg_weights * logp), pg_weights

  def objective_grad(new_params, traj, meta):
    (value, _), g = jax.value_and_grad(meta_objective, has_aux=True)(new_params, traj, meta)
    return g, value

  def meta_gradient(meta, params, opt_state, traj, next_traj):
    def f(m):
      new_params, new_opt_state = inner_update(m, params, opt_state, traj)
      value, _ = meta_objective(new_params, next_traj, m)
      return value, (new_params, new_opt_state, value)

    g, aux = jax.grad(f, has_aux=True)(meta)
    return g, aux

  def update_direction(meta, params, opt_state, traj):
    def theta(m):
      return inner_update(m, params, opt_state, traj)[0]

    zeros = jax.tree.map(jnp.zeros_like, meta)
    dirs = []
    for field in MetaParams._fields:
      tangent = zeros._replace(**{field: jnp.ones_like(getattr(meta, field))})
      dirs.append(jax.jvp(theta, (meta,), (tangent,))[1])
    return MetaTrace(*dirs)

  def meta_gradient_from_trace(grad_theta, z: MetaTrace):
    def dot(a, b):
      return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    return MetaParams(dot(grad_theta, z.gamma), dot(grad_theta, z.lambda_))

  return MetaLearner(inner_update, inner_update_with_metrics, meta_objective, meta_gradient,
                     update_direction, meta_gradient_from_trace, objective_grad, eta_input)


def zero_trace(params) -> MetaTrace:
  """``z = 0`` with the structure of ``params`` for each meta-parameter."""
  z = jax.tree.map(jnp.zeros_like, params)
  return MetaTrace(z, z)


def accumulate_trace(z: MetaTrace, direction: MetaTrace, mu: float) -> MetaTrace:
  """``z' = μ z + ∂f/∂η`` (paper Eq. 4-5; ``μ = 0`` on Atari)."""
  if not 0.0 <= float(mu) <= 1.0:
    raise ValueError(f"mu must be in [0, 1], got {mu}")
  return jax.tree.map(lambda a, b: mu * a + b, z, direction)


def make_meta_optimizer(learning_rate: float = 1e-3, *, b1: float = 0.9, b2: float = 0.999,
                        eps: float = 1e-4) -> optax.GradientTransformation:
  """Adam on the η logits; it *ascends* J' (``optax`` minimises, so pass ``-dJ'/dη``).

  Raises:
    ValueError: ``learning_rate`` not a positive finite number (or schedule), ``b1``/``b2``
      outside [0, 1) or ``eps`` < 0.
  """
  _check_rate(learning_rate, "learning_rate")
  _check_unit_interval(b1, "b1")
  _check_unit_interval(b2, "b2")
  _check_finite_number(eps, "eps", allow_zero=True)
  return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


def meta_step(meta: MetaParams, meta_opt_state, meta_grad: MetaParams,
              meta_optimizer: optax.GradientTransformation):
  """One Adam ascent step on ``J'``: returns ``(η_new, meta_opt_state')``."""
  neg = jax.tree.map(jnp.negative, meta_grad)
  updates, meta_opt_state = meta_optimizer.update(neg, meta_opt_state, meta)
  return optax.apply_updates(meta, updates), meta_opt_state
