"""The paper's illustrative prediction problems (Fig. 1): meta-learned per-state γ(s) and λ(s).

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018, Sec. 3. A tabular
value ``v`` is learned by forward-view TD(λ) on a chain Markov reward process whose return has a
*state-dependent* discount and bootstrapping parameter,

  ``G_t = R_{t+1} + γ(S_{t+1}) [(1 − λ(S_{t+1})) v(S_{t+1}) + λ(S_{t+1}) G_{t+1}]``,

``v ← v + α (G^η − v)`` (targets constant in ``v``), and ``η = (logit γ(s), logit λ(s))`` is
meta-learned by the gradient of ``J' = ½ mean_s (v'(s) − G^{γ'=1, λ'=1}(s))²`` on the next episode,
i.e. the squared error to the undiscounted Monte-Carlo return.

Two chains (``n`` states visited in order, then termination; ``R[s]`` is the reward on leaving s):

* ``"signal_noise"``: the first ``n_signal`` states pay a deterministic ``+1`` ("signal"), the rest
  pay zero-mean Gaussian noise. Cutting the return at a noise state removes variance without bias,
  so the learned ``γ(s)`` is low on noise states and high on signal states.
* ``"negation"``: even states pay a random ``±1``, the next (odd) state pays its negation, so the
  Monte-Carlo return from an even state is exactly 0. Bootstrapping at an odd state would keep the
  random reward without its cancellation, so the learned ``λ(s)`` is high on odd states; at even
  states bootstrapping on the (accurate, zero) value costs nothing and λ(s) stays low.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers._src.validation import check_array, check_in, check_positive, is_concrete

CHAINS = ("signal_noise", "negation")


def sample_chain_rewards(key: jax.Array, chain: str, num_states: int = 10, *, n_signal: int = 5,
                         noise_std: float = 1.0) -> jax.Array:
  """One episode's rewards ``R[s]`` (reward on leaving state ``s``) of a toy chain.

  Args:
    key: PRNG key.
    chain: ``"signal_noise"`` or ``"negation"``.
    num_states: chain length (even for ``"negation"``).
    n_signal: number of leading signal states (``"signal_noise"``).
    noise_std: standard deviation of the noise rewards (``"signal_noise"``).

  Raises:
    ValueError: unknown chain, bad sizes.
  """
  check_in(chain, "chain", CHAINS)
  check_positive(num_states, "num_states")
  if chain == "signal_noise":
    if not 0 <= n_signal <= num_states:
      raise ValueError(f"n_signal must be in [0, num_states], got {n_signal}")
    noise = noise_std * jax.random.normal(key, (num_states,))
    return jnp.where(jnp.arange(num_states) < n_signal, 1.0, noise)
  if num_states % 2:
    raise ValueError(f"num_states must be even for the negation chain, got {num_states}")
  r = jax.random.rademacher(key, (num_states // 2,), dtype=jnp.float32)
  return jnp.stack([r, -r], axis=1).reshape(-1)


def eta_return(rewards: jax.Array, values: jax.Array, gammas: jax.Array,
               lambdas: jax.Array) -> jax.Array:
  """Per-state λ-return with state-dependent ``γ(s), λ(s)`` on a chain episode.

  ``G_s = R_s + γ_{s+1} [(1 − λ_{s+1}) v_{s+1} + λ_{s+1} G_{s+1}]`` with ``G_{n} = v_{n} = 0``
  (termination after the last state); ``γ_0, λ_0`` are unused. NaN inputs give NaN returns.

  Raises:
    TypeError: an input is not a floating array.
    ValueError: ``rewards`` is not a non-empty vector, the others are not ``rewards``'s shape, or
      concrete ``gammas``/``lambdas`` leave [0, 1].
  """
  check_array(rewards, "rewards", ndim=1, dtype_kind="f")
  n = rewards.shape[0]
  if n == 0:
    raise ValueError("rewards must hold at least one state")
  check_array(values, "values", shape=(n,), dtype_kind="f")
  check_array(gammas, "gammas", shape=(n,), dtype_kind="f")
  check_array(lambdas, "lambdas", shape=(n,), dtype_kind="f")
  for name, x in (("gammas", gammas), ("lambdas", lambdas)):
    if is_concrete(x) and np.any(np.abs(np.asarray(x, np.float64) - 0.5) > 0.5):
      raise ValueError(f"{name} must lie in [0, 1], got {np.asarray(x)}")
  nxt_v = jnp.append(values[1:], 0.0)
  nxt_g = jnp.append(gammas[1:], 0.0)
  nxt_l = jnp.append(lambdas[1:], 0.0)

  def body(g_next, xs):
    r, v, gm, lm = xs
    g = r + gm * ((1.0 - lm) * v + lm * g_next)
    return g, g

  _, out = jax.lax.scan(body, jnp.zeros((), values.dtype), (rewards, nxt_v, nxt_g, nxt_l),
                        reverse=True)
  return out


class ToyState(NamedTuple):
  """Tabular value, η logits ``[2, n]`` (γ row, λ row), Adam state, and the held-out episode."""

  values: jax.Array
  eta: jax.Array
  opt_state: optax.OptState
  next_rewards: jax.Array


class ToyConfig(NamedTuple):
  """Settings of a toy run (static).

  Attributes:
    chain: ``"signal_noise"`` or ``"negation"``.
    learn: ``"gamma"`` (λ fixed at ``fixed_lambda``) or ``"lambda"`` (γ fixed at ``fixed_gamma``).
    num_states: chain length.
    value_lr: TD step size α.
    meta_lr: Adam step size on the logits.
    init_prob: initial γ(s) or λ(s).
    fixed_gamma: γ when learning λ.
    fixed_lambda: λ when learning γ.
    n_signal: signal states (``"signal_noise"``).
    noise_std: noise scale (``"signal_noise"``).
  """

  chain: str = "signal_noise"
  learn: str = "gamma"
  num_states: int = 10
  value_lr: float = 0.1
  meta_lr: float = 0.05
  init_prob: float = 0.5
  fixed_gamma: float = 1.0
  fixed_lambda: float = 0.0
  n_signal: int = 5
  noise_std: float = 1.0


def _validate(cfg: ToyConfig):
  check_in(cfg.chain, "chain", CHAINS)
  check_in(cfg.learn, "learn", ("gamma", "lambda"))
  check_positive(cfg.value_lr, "value_lr")
  check_positive(cfg.meta_lr, "meta_lr")
  if not 0.0 < cfg.init_prob < 1.0:
    raise ValueError(f"init_prob must be in (0, 1), got {cfg.init_prob}")
  for name in ("fixed_gamma", "fixed_lambda"):
    v = getattr(cfg, name)
    if not 0.0 <= v <= 1.0:
      raise ValueError(f"{name} must be in [0, 1], got {v}")


def _gl(cfg: ToyConfig, eta: jax.Array):
  n = cfg.num_states
  probs = jax.nn.sigmoid(eta)
  if cfg.learn == "gamma":
    return probs[0], jnp.full((n,), cfg.fixed_lambda)
  return jnp.full((n,), cfg.fixed_gamma), probs[1]


def toy_meta_objective(eta: jax.Array, values: jax.Array, rewards: jax.Array,
                       next_rewards: jax.Array, cfg: ToyConfig) -> jax.Array:
  """``J'(η) = ½ mean_s (v'(s) − G^{1,1}(s))²`` after one TD(η) update on ``rewards``."""
  gammas, lambdas = _gl(cfg, eta)
  target = eta_return(rewards, jax.lax.stop_gradient(values), gammas, lambdas)
  new_values = values + cfg.value_lr * (target - values)
  ones = jnp.ones_like(values)
  mc = eta_return(next_rewards, jnp.zeros_like(values), ones, ones)
  return 0.5 * jnp.mean(jnp.square(new_values - mc))


def make_toy(cfg: ToyConfig):
  """Returns ``(init(key) -> ToyState, step(key, state) -> (state, metrics))`` for ``cfg``."""
  _validate(cfg)
  opt = optax.adam(cfg.meta_lr)
  logit0 = jnp.log(cfg.init_prob) - jnp.log1p(-cfg.init_prob)

  def sample(key):
    return sample_chain_rewards(key, cfg.chain, cfg.num_states, n_signal=cfg.n_signal,
                                noise_std=cfg.noise_std)

  def init(key):
    eta = jnp.full((2, cfg.num_states), logit0, jnp.float32)
    return ToyState(jnp.zeros((cfg.num_states,)), eta, opt.init(eta), sample(key))

  def step(key, state: ToyState):
    rewards = state.next_rewards
    next_rewards = sample(key)
    j, g = jax.value_and_grad(toy_meta_objective)(state.eta, state.values, rewards,
                                                  next_rewards, cfg)
    gammas, lambdas = _gl(cfg, state.eta)
    target = eta_return(rewards, state.values, gammas, lambdas)
    values = state.values + cfg.value_lr * (target - state.values)
    updates, opt_state = opt.update(g, state.opt_state, state.eta)
    eta = optax.apply_updates(state.eta, updates)
    return ToyState(values, eta, opt_state, next_rewards), {"meta_objective": j}

  return init, step


def run_toy(key: jax.Array, cfg: ToyConfig = ToyConfig(), num_episodes: int = 3000):
  """Runs ``num_episodes`` meta-learning episodes; returns ``(final_state, learned [n], history)``.

  ``learned`` is ``γ(s)`` or ``λ(s)`` (``sigmoid`` of the learned row).
  """
  check_positive(num_episodes, "num_episodes")
  init, step = make_toy(cfg)
  k0, k1 = jax.random.split(key)
  keys = jax.random.split(k1, num_episodes)
  state, hist = jax.lax.scan(lambda s, k: step(k, s), init(k0), keys)
  learned = jax.nn.sigmoid(state.eta[0 if cfg.learn == "gamma" else 1])
  return state, learned, hist
