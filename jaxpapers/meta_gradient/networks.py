"""Actor-critic networks (flax.linen) with the optional η-embedding of the meta-gradient paper.

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018, Sec. 1.4: the
value and policy are conditioned on the meta-parameters through a learned embedding
``e_η = W_η η``. Where it enters is ``eta_position``:

* ``"input"`` (default): ``e_η`` is concatenated with the observation features *before* the
  hidden layers, so the value and policy can depend on η differently in different states: with
  the MLP torso it joins the flattened observation before the first hidden layer, with the conv
  torsos it joins the flattened conv features before the dense layer, and in an LSTM agent (the
  Atari network) it joins the torso output before the LSTM.
* ``"heads"``: ``e_η`` is concatenated to the final features right before the linear policy and
  value heads; η then only shifts the logits and value by a state-independent ``W e_η``.

The Atari agent is IMPALA's "deep" ResNet torso followed by an LSTM (Espeholt et al. 2018);
MinAtar and classic control use a small conv or MLP torso.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.conv import patches
from jaxpapers._src.validation import check_in, check_positive
from jaxpapers.meta_gradient.core import AgentOutput

ETA_POSITIONS = ("input", "heads")


def _join(x, extra):
  """``concat([x, extra])`` on the last axis, broadcasting ``extra [E]`` over ``x``'s batch dims."""
  if extra is None:
    return x
  return jnp.concatenate([x, jnp.broadcast_to(extra, x.shape[:-1] + extra.shape[-1:])], axis=-1)


class MLPTorso(nn.Module):
  """Flatten, optionally concatenate ``extra`` (e.g. ``e_η``), then a ReLU MLP."""

  hidden: Sequence[int] = (64, 64)

  @nn.compact
  def __call__(self, x, extra=None):
    x = _join(x.reshape(x.shape[0], -1).astype(jnp.float32), extra)
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    return x


class PatchConv(nn.Module):
  """A stride-1 ``VALID`` convolution computed as patches @ kernel (im2col) on NHWC input.

  The same function and parameters (``kernel [kh, kw, C, F]`` with flax's lecun-normal init,
  ``bias [F]``) as ``nn.Conv(features, kernel_size, padding="VALID")``. XLA:CPU runs the gradient
  of a native convolution inside a ``while`` loop (``lax.scan``) one to two orders of magnitude
  slower than outside it; as a single matmul it is equally fast inside and outside loops.
  """

  features: int
  kernel_size: tuple[int, int] = (3, 3)

  @nn.compact
  def __call__(self, x):
    kh, kw = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (kh, kw, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return patches(x, (kh, kw)) @ kernel.reshape(-1, self.features) + bias


class ConvTorso(nn.Module):
  """MinAtar torso: one 3×3 conv (16 channels) and a ReLU dense layer (Young & Tian 2019).

  ``extra`` (e.g. ``e_η``) is concatenated with the flattened conv features before the dense layer.
  """

  channels: int = 16
  hidden: int = 128

  @nn.compact
  def __call__(self, x, extra=None):
    x = x.astype(jnp.float32)
    x = nn.relu(PatchConv(self.channels, (3, 3), name="Conv_0")(x))
    x = _join(x.reshape(x.shape[0], -1), extra)
    return nn.relu(nn.Dense(self.hidden)(x))


class ImpalaTorso(nn.Module):
  """IMPALA "deep" torso: 3 sections of conv + max-pool + 2 residual blocks, then ReLU dense.

  ``extra`` (e.g. ``e_η``) is concatenated with the flattened conv features before the dense layer.
  """

  channels: Sequence[int] = (16, 32, 32)
  hidden: int = 256

  @nn.compact
  def __call__(self, x, extra=None):
    x = x.astype(jnp.float32)
    for c in self.channels:
      x = nn.Conv(c, (3, 3), padding="SAME")(x)
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
      for _ in range(2):
        y = nn.Conv(c, (3, 3), padding="SAME")(nn.relu(x))
        y = nn.Conv(c, (3, 3), padding="SAME")(nn.relu(y))
        x = x + y
    x = _join(nn.relu(x).reshape(x.shape[0], -1), extra)
    return nn.relu(nn.Dense(self.hidden)(x))


def _lstm_cell(c, h, pre, w_h):
  gates = pre + h @ w_h
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return c, h


class ActorCritic(nn.Module):
  """Policy logits and value from a torso, an optional LSTM core and an optional η-embedding.

  ``__call__(obs, next_obs, first, core_state, eta_input)`` takes time-major ``[T, B, ...]``
  inputs and returns an :class:`~jaxpapers.meta_gradient.core.AgentOutput` with the values of
  ``next_obs`` (for bootstrapping on truncation); ``next_obs=None`` skips them (acting).
  ``eta_position`` is where ``e_η`` enters (see the module docstring).
  """

  num_actions: int
  torso: str = "mlp"
  hidden: Sequence[int] = (64, 64)
  lstm_size: int = 0
  eta_embed_dim: int = 0
  eta_position: str = "input"

  def _torso(self):
    if self.torso == "mlp":
      return MLPTorso(tuple(self.hidden), name="torso")
    if self.torso == "conv":
      return ConvTorso(hidden=self.hidden[-1], name="torso")
    return ImpalaTorso(hidden=self.hidden[-1], name="torso")

  @nn.compact
  def __call__(self, obs, next_obs, first, core_state, eta_input):
    t, b = obs.shape[:2]
    torso = self._torso()
    emb = None
    if self.eta_embed_dim:
      if eta_input is None:
        raise ValueError("eta_input is required when eta_embed_dim > 0")
      emb = nn.Dense(self.eta_embed_dim, name="eta_embedding")(jax.lax.stop_gradient(eta_input))
    elif eta_input is not None:
      raise ValueError("eta_input was given but the agent has no η-embedding (eta_embed_dim=0); "
                       "build it with eta_embed_dim > 0 or run the learner with "
                       "eta_conditioning=False")
    into_torso = emb if (self.eta_position == "input" and not self.lstm_size) else None
    into_core = emb if (self.eta_position == "input" and self.lstm_size) else None
    into_heads = emb if self.eta_position == "heads" else None

    def features(o):
      f = torso(o.reshape((t * b,) + o.shape[2:]), into_torso)
      return f.reshape((t, b, f.shape[-1]))

    # Two torso calls (shared weights) rather than one on the concatenated batch: the learner
    # stops gradients on the bootstrap values, so reverse mode then skips the next_obs half.
    x = features(obs)
    x_next = features(next_obs) if next_obs is not None else x[:0]
    new_core = ()
    if self.lstm_size:
      proj = nn.Dense(4 * self.lstm_size, name="lstm_in")
      w_h = self.param("lstm_hidden", nn.initializers.orthogonal(), (self.lstm_size,
                                                                    4 * self.lstm_size))
      pre = proj(_join(x, into_core))
      c0, h0 = core_state

      def step(carry, inp):
        c, h = carry
        p, f = inp
        keep = (1.0 - f.astype(c.dtype))[:, None]
        c, h = _lstm_cell(c * keep, h * keep, p, w_h)
        return (c, h), (c, h)

      new_core, (cs, hs) = jax.lax.scan(step, (c0, h0), (pre, first))
      if next_obs is not None:
        _, h_next = _lstm_cell(cs, hs, proj(_join(x_next, into_core)), w_h)
        x_next = h_next
      x = hs
    x = _join(x, into_heads)
    if next_obs is not None:
      x_next = _join(x_next, into_heads)
    policy = nn.Dense(self.num_actions, name="policy", kernel_init=nn.initializers.normal(0.01))
    value = nn.Dense(1, name="value")
    logits = policy(x)
    values = value(x)[..., 0]
    next_values = value(x_next)[..., 0] if next_obs is not None else jnp.zeros_like(values)
    return AgentOutput(logits, values, next_values, new_core)


class Agent(NamedTuple):
  """A network as pure functions.

  Attributes:
    init: ``(key, obs_example [B, ...]) -> params``.
    apply: ``(params, obs, next_obs, first, core_state, eta_input) -> AgentOutput`` on
      ``[T, B, ...]`` sequences.
    act: ``(params, obs [B, ...], first [B], core_state, eta_input) -> (logits [B, A], core_state)``.
    initial_state: ``batch -> core_state`` (``()`` for feed-forward agents).
    num_actions: size of the discrete action space.
    eta_embed_dim: size of the η-embedding (0: the agent takes no ``eta_input``).
  """

  init: Callable
  apply: Callable
  act: Callable
  initial_state: Callable
  num_actions: int
  eta_embed_dim: int = 0



def check_network_sizes(hidden, num_actions: int, lstm_size: int, eta_embed_dim: int) -> tuple:
  """Validates an actor-critic's sizes (shared by the flax and haiku networks); returns ``hidden``
  as a tuple.

  Raises:
    ValueError: empty or non-positive ``hidden``, non-positive ``num_actions`` or negative
      ``lstm_size`` / ``eta_embed_dim``.
  """
  hidden = tuple(hidden)
  if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                       for h in hidden):
    raise ValueError(f"hidden must be a non-empty sequence of positive integers, got {hidden}")
  check_positive(num_actions, "num_actions")
  check_positive(lstm_size, "lstm_size", allow_zero=True)
  check_positive(eta_embed_dim, "eta_embed_dim", allow_zero=True)
  return hidden

def make_agent(num_actions: int, *, torso: str = "mlp", hidden: Sequence[int] = (64, 64),
               lstm_size: int = 0, eta_embed_dim: int = 0, eta_position: str = "input") -> Agent:
  """Builds an :class:`Agent`.

  Args:
    num_actions: number of discrete actions.
    torso: ``"mlp"`` (classic control, bsuite), ``"conv"`` (MinAtar) or ``"impala"`` (Atari).
    hidden: MLP widths; for conv/impala the last entry is the dense width (IMPALA: 256).
    lstm_size: LSTM width, 0 for none (IMPALA Atari: 256).
    eta_embed_dim: size of the η-embedding, 0 for an unconditioned agent (paper: 16).
    eta_position: where ``e_η`` enters: ``"input"`` (with the observation features before the
      hidden layers, or before the LSTM in an LSTM agent; it can then interact with the state)
      or ``"heads"`` (right before the linear heads: a state-independent shift).

  Raises:
    ValueError: on an unknown ``torso``/``eta_position``, empty or non-positive ``hidden`` or a
      non-positive ``num_actions``.
  """
  check_in(torso, "torso", ("mlp", "conv", "impala"))
  check_in(eta_position, "eta_position", ETA_POSITIONS)
  hidden = check_network_sizes(hidden, num_actions, lstm_size, eta_embed_dim)
  module = ActorCritic(num_actions, torso, hidden, lstm_size, eta_embed_dim, eta_position)

  def initial_state(batch: int, dtype=jnp.float32):
    if not lstm_size:
      return ()
    z = jnp.zeros((batch, lstm_size), dtype)
    return (z, z)

  def init(key, obs_example):
    b = obs_example.shape[0]
    obs = obs_example[None]
    eta = jnp.zeros((2,), jnp.float32) if eta_embed_dim else None
    return module.init(key, obs, obs, jnp.ones((1, b), bool), initial_state(b), eta)

  def apply(params, obs, next_obs, first, core_state, eta_input):
    return module.apply(params, obs, next_obs, first, core_state, eta_input)

  def act(params, obs, first, core_state, eta_input):
    out = module.apply(params, obs[None], None, first[None], core_state, eta_input)
    return out.logits[0], out.core_state

  return Agent(init, apply, act, initial_state, int(num_actions), int(eta_embed_dim))

