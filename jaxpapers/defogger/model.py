"""Defogger forward models (flax): the multi-level conv-LSTM ("ml") and striding ("str") encoders.

One call of :class:`DefoggerStep` consumes one time step ``x_t: [B, G, G, C]`` and the recurrent
state and emits, for every horizon ``s`` in ``horizons``: per-cell enemy counts ``[B, G, G, N]``
(optionally as a delta added to the current enemy input), per-cell existence logits, and the global
opponent build-tree logits ``[B, 5]``. :func:`unroll` scans it over a whole game (full BPTT).

* ``ml``: convolution at full resolution, then strided convolution levels; at every level an LSTM
  shared across cells (a per-cell LSTM); a global LSTM on the pooled deepest features; the level
  outputs are upsampled, concatenated with the broadcast global state and decoded.
* ``str``: strided convolutions → spatial pooling → one global LSTM → broadcast over the grid,
  concatenated with a non-recurrent full-resolution convolution and decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpapers.defogger import features, world

N = world.NUM_TYPES


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


def _lstm_state(shape, features_):
  z = jnp.zeros(shape + (features_,))
  return (z, z)


class DefoggerStep(nn.Module):
  """One recurrent step of the defogger."""

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
    raise ValueError(f"encoder must be 'ml' or 'str', got {self.encoder!r}")

  @nn.compact
  def __call__(self, state, x, enemy_input):
    b, g = x.shape[0], x.shape[1]
    h0 = GatedConv(self.hidden, gated=self.gated, name="embed")(x)
    new_state = []
    if self.encoder == "ml":
      outs = []
      feat = h0
      for lvl in range(self.levels + 1):
        if lvl > 0:
          feat = GatedConv(self.hidden, strides=2, gated=self.gated, name=f"down{lvl}")(feat)
        gl = feat.shape[1]
        cell = nn.OptimizedLSTMCell(self.hidden, name=f"cell_lstm{lvl}")
        c, hh = state[lvl]
        flat = lambda a: a.reshape(b * gl * gl, -1)
        (c2, h2), out = cell((flat(c), flat(hh)), flat(feat))
        new_state.append((c2.reshape(b, gl, gl, -1), h2.reshape(b, gl, gl, -1)))
        out = out.reshape(b, gl, gl, -1)
        if gl != g:  # nearest upsampling back to the full grid
          rep = -(-g // gl)
          out = jnp.repeat(jnp.repeat(out, rep, 1), rep, 2)[:, :g, :g]
        outs.append(out)
      pooled = feat.mean(axis=(1, 2))
      glob_state, glob = nn.OptimizedLSTMCell(self.hidden, name="global_lstm")(state[-1], pooled)
      new_state.append(glob_state)
      dec_in = jnp.concatenate(outs + [jnp.broadcast_to(glob[:, None, None], (b, g, g, self.hidden))], -1)
    else:
      feat = h0
      for lvl in range(1, self.levels + 1):
        feat = GatedConv(self.hidden, strides=2, gated=self.gated, name=f"down{lvl}")(feat)
      glob_state, glob = nn.OptimizedLSTMCell(self.hidden, name="global_lstm")(state[0], feat.mean(axis=(1, 2)))
      new_state.append(glob_state)
      dec_in = jnp.concatenate([h0, jnp.broadcast_to(glob[:, None, None], (b, g, g, self.hidden))], -1)
    d = GatedConv(self.hidden, gated=self.gated, name="dec1")(dec_in)
    d = GatedConv(self.hidden, gated=self.gated, name="dec2")(d)
    nh = len(self.horizons)
    counts = nn.Conv(N * nh, (1, 1), kernel_init=nn.initializers.zeros, name="count_head")(d)
    counts = counts.reshape(b, g, g, nh, N)
    if self.predict_delta:
      counts = counts + enemy_input[:, :, :, None, :]
    exist = nn.Conv(N * nh, (1, 1), name="exist_head")(d).reshape(b, g, g, nh, N)
    summary = jnp.concatenate([d.mean(axis=(1, 2)), d.max(axis=(1, 2))], -1)
    bt = nn.Dense(features.NUM_BUILDINGS * nh, name="bt_head")(summary).reshape(b, nh, -1)
    return tuple(new_state), (counts, exist, bt)


def unroll(module: DefoggerStep, params, xs, enemy_inputs):
  """Runs the model over time: ``xs [B, T, G, G, C]`` → per-step outputs with a ``T`` axis (axis 1)."""
  b, _, g = xs.shape[:3]
  state = module.initial_state(b, g)

  def step(st, inp):
    x, e = inp
    return module.apply(params, st, x, e)

  _, outs = jax.lax.scan(step, state, (jnp.swapaxes(xs, 0, 1), jnp.swapaxes(enemy_inputs, 0, 1)))
  return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), outs)


def init(key, module: DefoggerStep, batch: int, grid: int, channels: int):
  """Parameters for inputs of ``channels`` channels on a ``grid × grid`` map."""
  state = module.initial_state(batch, grid)
  return module.init(key, state, jnp.zeros((batch, grid, grid, channels)), jnp.zeros((batch, grid, grid, N)))
