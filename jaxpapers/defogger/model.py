"""Defogger forward models (flax): the multi-level conv-LSTM ("ml") and striding ("str") encoders.

One call of :class:`DefoggerStep` consumes one time step ``x_t: [B, G, G, C]`` and the recurrent
state and emits, for every horizon ``s`` in ``horizons``: per-cell enemy counts ``[B, G, G, N]``
(optionally as a delta added to a base count map, e.g. the current enemy input), per-cell existence
logits, the global opponent build-tree logits ``[B, 5]`` and the enemy's total unit counts per type
``[B, N]`` (its composition, for the downstream bot). :func:`unroll` runs it over a whole
game (full BPTT).

* ``ml``: convolution at full resolution, then strided convolution levels; at every level an LSTM
  shared across cells (a per-cell LSTM); a global LSTM on the pooled deepest features; the level
  outputs are upsampled, concatenated with the broadcast global state and decoded.
* ``str``: strided convolutions → spatial pooling → one global LSTM → broadcast over the grid,
  concatenated with a non-recurrent full-resolution convolution and decoded.

Only the LSTM recurrences depend on the previous step: the encoder convolutions (and the LSTMs'
input projections) see only ``x_t`` and the decoder only the LSTM outputs of step ``t``. A step is
therefore split into :meth:`DefoggerStep.encode` → :meth:`DefoggerStep.recur` →
:meth:`DefoggerStep.decode`, and :func:`unroll` runs ``encode`` and ``decode`` batched over all
``B × T`` steps and only ``recur`` inside ``lax.scan`` — the same function as scanning the whole
step (tested), several times faster on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpapers._src.validation import check_array
from jaxpapers.defogger import features, world

N = world.NUM_TYPES
ENCODERS = ("ml", "str")


class GatedConv(nn.Module):
  """``conv_a(x) ⊙ σ(conv_b(x))`` when ``gated``, else ``relu(conv(x))``."""

  features: int
  kernel: int = 3
  strides: int = 1
  gated: bool = False

  @nn.compact
  def __call__(self, x):
    conv = lambda n, name: nn.Conv(n, (self.kernel, self.kernel), strides=self.strides,
                                   padding="SAME", name=name)
    if self.gated:
      return conv(self.features, "a")(x) * jax.nn.sigmoid(conv(self.features, "b")(x))
    return jax.nn.relu(conv(self.features, "conv")(x))


class LSTM(nn.Module):
  """An LSTM cell whose input projection ``W_x x`` is a separate method, so that it can be applied
  to all time steps at once outside the recurrence (:meth:`project`, then :meth:`step`).

  Gates ``i, f, g, o = split(W_x x + W_h h + b)``; ``c' = σ(f) c + σ(i) tanh(g)``,
  ``h' = σ(o) tanh(c')``. Any leading axes are batch axes (a per-cell LSTM is shared across cells).
  """

  hidden: int

  def setup(self):
    self.wx = nn.Dense(4 * self.hidden, use_bias=False, kernel_init=nn.initializers.lecun_normal())
    self.wh = nn.Dense(4 * self.hidden, kernel_init=nn.initializers.orthogonal())

  def project(self, x):
    return self.wx(x)

  def step(self, state, gx):
    c, h = state
    i, f, g, o = jnp.split(gx + self.wh(h), 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h

  def __call__(self, state, x):
    return self.step(state, self.project(x))


def _lstm_state(shape, features_):
  z = jnp.zeros(shape + (features_,))
  return (z, z)


class DefoggerStep(nn.Module):
  """One recurrent step of the defogger (see the module docstring)."""

  encoder: str = "ml"
  hidden: int = 32
  levels: int = 2
  horizons: Sequence[int] = (0, 1, 3)
  predict_delta: bool = True
  gated: bool = False

  def initial_state(self, batch: int, grid: int):
    """Zero recurrent state for ``batch`` games on a ``grid × grid`` map."""
    if self.encoder == "ml":
      states = []
      g = grid
      for _ in range(self.levels + 1):
        states.append(_lstm_state((batch, g, g), self.hidden))
        g = (g + 1) // 2
      states.append(_lstm_state((batch,), self.hidden))
      return tuple(states)
    if self.encoder == "str":
      return (_lstm_state((batch,), self.hidden),)
    raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")

  def setup(self):
    if self.encoder not in ENCODERS:
      raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
    conv = lambda strides=1: GatedConv(self.hidden, strides=strides, gated=self.gated)
    self.embed = conv()
    self.down = [conv(2) for _ in range(self.levels)]
    if self.encoder == "ml":
      self.cell_lstm = [LSTM(self.hidden) for _ in range(self.levels + 1)]
    self.global_lstm = LSTM(self.hidden)
    self.dec1, self.dec2 = conv(), conv()
    nh = len(self.horizons)
    self.count_head = nn.Conv(N * nh, (1, 1), kernel_init=nn.initializers.zeros)
    self.exist_head = nn.Conv(N * nh, (1, 1))
    self.bt_head = nn.Dense(features.NUM_BUILDINGS * nh)
    self.army_head = nn.Dense(N * nh)

  def encode(self, x):
    """The non-recurrent part of a step, ``x [B, G, G, C]`` → ``(lstm_inputs, skip)``."""
    h0 = self.embed(x)
    feat = h0
    if self.encoder == "ml":
      gx = [self.cell_lstm[0].project(feat)]
      for lvl in range(self.levels):
        feat = self.down[lvl](feat)
        gx.append(self.cell_lstm[lvl + 1].project(feat))
      return (tuple(gx), self.global_lstm.project(feat.mean(axis=(1, 2)))), None
    for lvl in range(self.levels):
      feat = self.down[lvl](feat)
    return (self.global_lstm.project(feat.mean(axis=(1, 2))),), h0

  def recur(self, state, lstm_inputs):
    """The recurrent part of a step: the LSTMs, ``state`` → ``(new_state, lstm_outputs)``."""
    if self.encoder == "ml":
      gx, ggx = lstm_inputs
      new_state, outs = [], []
      for lvl in range(self.levels + 1):
        st, out = self.cell_lstm[lvl].step(state[lvl], gx[lvl])
        new_state.append(st)
        outs.append(out)
      st, glob = self.global_lstm.step(state[-1], ggx)
      return tuple(new_state) + (st,), (tuple(outs), glob)
    st, glob = self.global_lstm.step(state[0], lstm_inputs[0])
    return (st,), ((), glob)

  def decode(self, lstm_outputs, skip, base):
    """Heads from the LSTM outputs of a step; ``base [B, G, G, N]`` is what a delta is added to."""
    outs, glob = lstm_outputs
    b, g = base.shape[0], base.shape[1]
    parts = []
    for out in outs:  # nearest upsampling of every level back to the full grid
      rep = -(-g // out.shape[1])
      parts.append(jnp.repeat(jnp.repeat(out, rep, 1), rep, 2)[:, :g, :g])
    if skip is not None:
      parts.append(skip)
    parts.append(jnp.broadcast_to(glob[:, None, None], (b, g, g, self.hidden)))
    d = self.dec2(self.dec1(jnp.concatenate(parts, -1)))
    nh = len(self.horizons)
    counts = self.count_head(d).reshape(b, g, g, nh, N)
    if self.predict_delta:
      counts = counts + base[:, :, :, None, :]
    exist = self.exist_head(d).reshape(b, g, g, nh, N)
    summary = jnp.concatenate([d.mean(axis=(1, 2)), d.max(axis=(1, 2))], -1)
    bt = self.bt_head(summary).reshape(b, nh, -1)
    army = self.army_head(summary).reshape(b, nh, N)
    return counts, exist, bt, army

  def __call__(self, state, x, base):
    """One step: ``(state, x [B, G, G, C], base [B, G, G, N])`` →
    ``(state, (counts, exist, bt, army))``."""
    lstm_inputs, skip = self.encode(x)
    state, lstm_outputs = self.recur(state, lstm_inputs)
    return state, self.decode(lstm_outputs, skip, base)


def unroll(module: DefoggerStep, params, xs, bases, recurrent: bool = True):
  """Runs the model over time: ``xs [B, T, G, G, C]``, ``bases [B, T, G, G, N]`` → per-step
  outputs with a ``T`` axis (axis 1).

  ``recurrent=False`` is the ablation that resets the LSTM states to zero at every step. NaN
  inputs give NaN outputs.

  Raises:
    ValueError: if ``xs`` is not rank 5, ``bases`` is not ``[B, T, G, G, N]`` of the same
      ``B, T, G``, or a sequence axis is empty.
    TypeError: on non-floating inputs.
  """
  check_array(xs, "xs", ndim=5, dtype_kind="f")
  check_array(bases, "bases", ndim=5, dtype_kind="f", shape=tuple(xs.shape[:4]) + (N,))
  chex.assert_rank([xs, bases], 5)
  if min(xs.shape[:2]) < 1:
    raise ValueError(f"xs must hold at least one sequence and one step, got shape {xs.shape}")
  b, t, g = xs.shape[:3]
  flat = lambda a: a.reshape((b * t,) + a.shape[2:])
  lstm_inputs, skip = module.apply(params, flat(xs), method=DefoggerStep.encode)
  if recurrent:
    time_major = lambda a: jnp.swapaxes(a.reshape((b, t) + a.shape[1:]), 0, 1)
    step = lambda st, inp: module.apply(params, st, inp, method=DefoggerStep.recur)
    _, outs = jax.lax.scan(step, module.initial_state(b, g), jax.tree.map(time_major, lstm_inputs))
    outs = jax.tree.map(lambda a: flat(jnp.swapaxes(a, 0, 1)), outs)
  else:
    _, outs = module.apply(params, module.initial_state(b * t, g), lstm_inputs,
                           method=DefoggerStep.recur)
  out = module.apply(params, outs, skip, flat(bases), method=DefoggerStep.decode)
  return jax.tree.map(lambda a: a.reshape((b, t) + a.shape[1:]), out)


def init(key, module: DefoggerStep, batch: int, grid: int, channels: int):
  """Parameters for inputs of ``channels`` channels on a ``grid × grid`` map."""
  state = module.initial_state(batch, grid)
  return module.init(key, state, jnp.zeros((batch, grid, grid, channels)),
                     jnp.zeros((batch, grid, grid, N)))
