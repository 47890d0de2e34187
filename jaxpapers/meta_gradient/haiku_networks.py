"""dm-haiku networks for the meta-gradient learner (the flax agent of ``networks.py`` in haiku).

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018. The learner
(:func:`~jaxpapers.meta_gradient.core.make_meta_learner`) only needs pure functions
``apply(params, obs, next_obs, first, core_state, eta_input) -> AgentOutput``; :func:`from_haiku`
turns any ``hk.transform``-ed forward function with that signature into the same
:class:`~jaxpapers.meta_gradient.networks.Agent` the flax networks produce, so a haiku network
plugs into the inner update, the meta-gradient and the jitted training loop unchanged.

:func:`make_haiku_agent` is the MLP actor-critic of ``networks.py`` (optional LSTM core and
η-embedding at the input or at the heads) written in haiku, and :func:`haiku_params_from_flax`
copies a flax agent's parameters into its parameter dict, so the two can be run from equal
weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

import haiku as hk
import jax
import jax.numpy as jnp

from jaxpapers._src.validation import check_in, check_positive
from jaxpapers.meta_gradient.core import AgentOutput
from jaxpapers.meta_gradient.networks import (
    ETA_POSITIONS,
    Agent,
    _join,
    _lstm_cell,
    check_network_sizes,
)

# flax.linen's lecun_normal: truncated normal with variance 1 / fan_in.
_LECUN = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")


def haiku_apply(transformed) -> Callable:
  """``apply(params, *inputs)`` of an ``hk.transform`` (rng ``None``) or ``hk.without_apply_rng``."""
  names = list(inspect.signature(transformed.apply).parameters)
  if len(names) > 1 and names[1] == "rng":
    return lambda params, *inputs: transformed.apply(params, None, *inputs)
  return transformed.apply


def from_haiku(transformed, num_actions: int, *, initial_state: Callable | None = None,
               eta_embed_dim: int = 0) -> Agent:
  """Adapts a haiku-transformed forward function to an :class:`Agent`.

  Args:
    transformed: ``hk.transform(f)`` (or ``hk.without_apply_rng(hk.transform(f))``) of
      ``f(obs [T,B,...], next_obs or None, first [T,B], core_state, eta_input) -> AgentOutput``
      (the flax :class:`~jaxpapers.meta_gradient.networks.ActorCritic` contract). The forward
      must not draw random numbers when applied (none is passed).
    num_actions: size of the discrete action space.
    initial_state: ``batch -> core_state`` (default: ``()``, a feed-forward network).
    eta_embed_dim: size of the network's η-embedding (0 if it takes no ``eta_input``).

  Returns:
    An :class:`Agent` whose ``init(key, obs [B,...])`` and ``apply``/``act`` wrap
    ``transformed.init``/``transformed.apply``.

  Raises:
    TypeError: if ``transformed`` is not a haiku ``Transformed``.
    ValueError: if ``num_actions`` < 1 or ``eta_embed_dim`` < 0.
  """
  if not isinstance(transformed, hk.Transformed):
    raise TypeError("transformed must be the result of hk.transform (hk.Transformed), got "
                    f"{type(transformed).__name__}")
  check_positive(num_actions, "num_actions")
  check_positive(eta_embed_dim, "eta_embed_dim", allow_zero=True)
  initial_state = initial_state or (lambda batch, dtype=jnp.float32: ())
  apply_inputs = haiku_apply(transformed)

  def init(key, obs_example):
    b = obs_example.shape[0]
    obs = obs_example[None]
    eta = jnp.zeros((2,), jnp.float32) if eta_embed_dim else None
    return transformed.init(key, obs, obs, jnp.ones((1, b), bool), initial_state(b), eta)

  def apply(params, obs, next_obs, first, core_state, eta_input):
    return apply_inputs(params, obs, next_obs, first, core_state, eta_input)

  def act(params, obs, first, core_state, eta_input):
    out = apply(params, obs[None], None, first[None], core_state, eta_input)
    return out.logits[0], out.core_state

  return Agent(init, apply, act, initial_state, int(num_actions), int(eta_embed_dim))


def haiku_actor_critic(num_actions: int, hidden: Sequence[int] = (64, 64), lstm_size: int = 0,
                       eta_embed_dim: int = 0, eta_position: str = "input") -> Callable:
  """The forward function (to ``hk.transform``) of the MLP actor-critic of ``networks.py``.

  Same computation and parameter shapes as ``ActorCritic(torso="mlp")``; parameter names are
  ``torso_<i>``, ``lstm_in``, ``~/lstm_hidden``, ``eta_embedding``, ``policy``, ``value``
  (haiku ``Linear``: ``w``, ``b``).
  """
  hidden = tuple(int(h) for h in hidden)

  def forward(obs, next_obs, first, core_state, eta_input):
    t, b = obs.shape[:2]
    emb = None
    if eta_embed_dim:
      if eta_input is None:
        raise ValueError("eta_input is required when eta_embed_dim > 0")
      emb = hk.Linear(eta_embed_dim, w_init=_LECUN, name="eta_embedding")(
          jax.lax.stop_gradient(eta_input))
    elif eta_input is not None:
      raise ValueError("eta_input was given but the agent has no η-embedding (eta_embed_dim=0); "
                       "build it with eta_embed_dim > 0 or run the learner with "
                       "eta_conditioning=False")
    into_torso = emb if (eta_position == "input" and not lstm_size) else None
    into_core = emb if (eta_position == "input" and lstm_size) else None
    into_heads = emb if eta_position == "heads" else None
    layers = [hk.Linear(h, w_init=_LECUN, name=f"torso_{i}") for i, h in enumerate(hidden)]

    def features(o):
      x = _join(o.reshape(t * b, -1).astype(jnp.float32), into_torso)
      for layer in layers:
        x = jax.nn.relu(layer(x))
      return x.reshape((t, b, x.shape[-1]))

    x = features(obs)
    x_next = features(next_obs) if next_obs is not None else x[:0]
    new_core = ()
    if lstm_size:
      proj = hk.Linear(4 * lstm_size, w_init=_LECUN, name="lstm_in")
      w_h = hk.get_parameter("lstm_hidden", (lstm_size, 4 * lstm_size), x.dtype,
                             init=hk.initializers.Orthogonal())
      pre = proj(_join(x, into_core))

      def step(carry, inp):
        c, h = carry
        p, f = inp
        keep = (1.0 - f.astype(c.dtype))[:, None]
        c, h = _lstm_cell(c * keep, h * keep, p, w_h)
        return (c, h), (c, h)

      new_core, (cs, hs) = jax.lax.scan(step, tuple(core_state), (pre, first))
      if next_obs is not None:
        _, x_next = _lstm_cell(cs, hs, proj(_join(x_next, into_core)), w_h)
      x = hs
    x = _join(x, into_heads)
    if next_obs is not None:
      x_next = _join(x_next, into_heads)
    policy = hk.Linear(num_actions, w_init=hk.initializers.RandomNormal(0.01), name="policy")
    value = hk.Linear(1, w_init=_LECUN, name="value")
    logits = policy(x)
    values = value(x)[..., 0]
    next_values = value(x_next)[..., 0] if next_obs is not None else jnp.zeros_like(values)
    return AgentOutput(logits, values, next_values, new_core)

  return forward


def make_haiku_agent(num_actions: int, *, hidden: Sequence[int] = (64, 64), lstm_size: int = 0,
                     eta_embed_dim: int = 0, eta_position: str = "input") -> Agent:
  """The haiku twin of ``networks.make_agent(num_actions, torso="mlp", ...)``.

  Args:
    num_actions: number of discrete actions.
    hidden: MLP widths.
    lstm_size: LSTM width, 0 for none.
    eta_embed_dim: size of the η-embedding, 0 for an unconditioned agent (paper: 16).
    eta_position: ``"input"`` or ``"heads"`` (see :mod:`~jaxpapers.meta_gradient.networks`).

  Raises:
    ValueError: on bad sizes or an unknown ``eta_position``.
  """
  check_in(eta_position, "eta_position", ETA_POSITIONS)
  hidden = check_network_sizes(hidden, num_actions, lstm_size, eta_embed_dim)
  transformed = hk.without_apply_rng(hk.transform(
      haiku_actor_critic(num_actions, hidden, lstm_size, eta_embed_dim, eta_position)))

  def initial_state(batch: int, dtype=jnp.float32):
    if not lstm_size:
      return ()
    z = jnp.zeros((batch, lstm_size), dtype)
    return (z, z)

  return from_haiku(transformed, num_actions, initial_state=initial_state,
                    eta_embed_dim=eta_embed_dim)


def haiku_params_from_flax(flax_params: Mapping) -> dict:
  """The parameters of a flax ``make_agent(torso="mlp")`` agent as :func:`make_haiku_agent`'s dict.

  Args:
    flax_params: ``{"params": {...}}`` from the flax agent's ``init``.

  Returns:
    A haiku parameter dict (``Dense_i``→``torso_i``, ``kernel``/``bias``→``w``/``b``).

  Raises:
    ValueError: if the tree is not a flax MLP agent's.
  """
  if not isinstance(flax_params, Mapping) or "params" not in flax_params:
    raise ValueError("flax_params must be the {'params': ...} dict of a flax agent")
  p = flax_params["params"]
  torso = p.get("torso", {})
  if not torso or any(not k.startswith("Dense_") for k in torso):
    raise ValueError("flax_params must come from make_agent(torso='mlp'), got torso modules "
                     f"{sorted(torso)}")
  out = {}

  def linear(d):
    return {"w": d["kernel"], "b": d["bias"]}

  for name, sub in torso.items():
    out[f"torso_{int(name.split('_')[1])}"] = linear(sub)
  for name in ("lstm_in", "eta_embedding", "policy", "value"):
    if name in p:
      out[name] = linear(p[name])
  if "lstm_hidden" in p:
    out["~"] = {"lstm_hidden": p["lstm_hidden"]}
  return out
