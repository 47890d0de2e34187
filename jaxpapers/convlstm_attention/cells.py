"""ConvLSTM cells and the variants of Zhang et al. (2018), as pure functions.

Zhang, Zhu, Shen, Song, Gao & Yang, "Attention in Convolutional LSTM for Gesture Recognition",
NeurIPS 2018. Every cell is ``cell(params, carry, x) -> (carry, h)`` on a batch of feature maps
``x: [B, H, W, C_in]`` (a single map ``[H, W, C_in]`` is accepted too), with ``carry`` an
:class:`LSTMState` ``(h, c)`` of shape ``[B, H, W, C]``. Parameters are plain dicts of arrays.

Variants (σ: sigmoid, ``*``: convolution, GAP: global average pooling over space, ``⊙``:
element-wise product; all gates channel-wise):

* ``convlstm`` (Shi et al. 2015, no peepholes):
  ``[i, f, o, g] = W * [X, H] + b``, ``C' = σ(f) ⊙ C + σ(i) ⊙ tanh(g)``, ``H' = σ(o) ⊙ tanh(C')``.
* ``a`` — gates without convolutions: ``[i, f, o] = σ(W_g [GAP(X), GAP(H)] + b_g)`` (fully
  connected, spatially constant), candidate ``g = SepConv3×3([X, H]) + b`` (depthwise 3×3 then
  pointwise 1×1); gate kernels initialised to ``1/C`` as in the reference.
* ``b`` — (a) applied to an attended input ``X̃ = A ⊙ X`` with a spatial attention
  ``A = softmax_{HW}(W_z * tanh(SepConv3×3([X, H]) + b_a))`` (``W_z``: 3×3 conv to 1 channel).
* ``c`` / ``d`` — (a) with the input (c) or output (d) gate replaced by a channel-wise spatial
  attention ``exp(Z − max_{HW} Z)``, ``Z = SepConv3×3(tanh(SepConv3×3([X, H]) + b_a))``: values in
  (0, 1] whose spatial maximum is exactly 1 in every channel.
* ``new`` — the paper's proposed variant: gates as in (a), convolution only in the input-to-state
  transition ``g = W_xg * X + W_hg ⋆ H + b`` where the recurrent kernel ``W_hg`` is 3×3 (as
  released) or 1×1 (``recurrent_kernel=1``: no spatial convolution on the state).

Parameter counts at ``C_in = C = 256``, ``k = 3`` (see :func:`count_params`): ConvLSTM 4,719,616;
(a) 529,920; (b) 668,160; (c)/(d) 602,368.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

VARIANTS = ("convlstm", "a", "b", "c", "d", "new")
PADDINGS = ("SAME", "CIRCULAR")


class LSTMState(NamedTuple):
  """Recurrent state: hidden ``h`` and cell ``c``, both ``[B, H, W, C]``."""

  h: jax.Array
  c: jax.Array


# ----------------------------------------------------------------------------- convolutions


def conv2d(x, w, *, padding: str = "SAME", groups: int = 1):
  """2-D convolution of ``x: [B, H, W, Cin]`` with ``w: [kh, kw, Cin/groups, Cout]`` (stride 1).

  ``padding="CIRCULAR"`` wraps the borders (the cell is then equivariant to circular shifts).
  """
  kh, kw = w.shape[0], w.shape[1]
  if padding == "CIRCULAR":
    ph, pw = kh // 2, kw // 2
    x = jnp.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)), mode="wrap")
    pad = "VALID"
  else:
    pad = "SAME"
  return jax.lax.conv_general_dilated(
      x, w.astype(x.dtype), window_strides=(1, 1), padding=pad,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


def sepconv2d(x, depthwise, pointwise, *, padding: str = "SAME"):
  """Depthwise ``k×k`` (``depthwise: [k, k, 1, Cin]``) then pointwise (``pointwise: [Cin, Cout]``)."""
  y = conv2d(x, depthwise, padding=padding, groups=x.shape[-1])
  return y @ pointwise.astype(x.dtype)


def _spatial_softmax(z):
  """Softmax over the two spatial axes of ``z: [B, H, W, K]``, per batch element and channel."""
  b, h, w, k = z.shape
  flat = jax.nn.softmax(z.reshape(b, h * w, k), axis=1)
  return flat.reshape(b, h, w, k)


def _max_normalised_exp(z):
  """``exp(z − max_{HW} z)``: positive, ≤ 1, with spatial maximum exactly 1 per channel."""
  return jnp.exp(z - jnp.max(z, axis=(1, 2), keepdims=True))


# ----------------------------------------------------------------------------- init


def _glorot(key, shape, fan_in, fan_out, dtype):
  lim = np.sqrt(6.0 / (fan_in + fan_out))
  return jax.random.uniform(key, shape, dtype, -lim, lim)


def _check_sizes(c_in, c, k, recurrent_kernel):
  for name, v in (("c_in", c_in), ("c", c), ("kernel_size", k), ("recurrent_kernel", recurrent_kernel)):
    if not isinstance(v, (int, np.integer)) or v < 1:
      raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def init_cell(key: jax.Array, variant: str, c_in: int, c: int, *, kernel_size: int = 3,
              recurrent_kernel: int = 3, dtype=jnp.float32) -> dict:
  """Initial parameters of one cell.

  Args:
    key: PRNG key.
    variant: one of ``VARIANTS``.
    c_in: input channels.
    c: hidden/cell channels.
    kernel_size: spatial kernel of the convolutions (3 in the paper).
    recurrent_kernel: for ``variant="new"`` only, the state-to-state kernel (3 as released, 1).
    dtype: parameter dtype.

  Returns:
    A dict of parameter arrays.
  """
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
  _check_sizes(c_in, c, kernel_size, recurrent_kernel)
  k = kernel_size
  keys = iter(jax.random.split(key, 8))
  cx = c_in + c
  if variant == "convlstm":
    w = _glorot(next(keys), (k, k, cx, 4 * c), k * k * cx, k * k * 4 * c, dtype)
    b = jnp.zeros((4 * c,), dtype).at[c:2 * c].set(1.0)  # forget-gate bias 1
    return {"w": w, "b": b}
  params = {
      # FC gates on pooled [X, H], initialised to 1/C as the reference does.
      "gate_w": jnp.full((cx, 3 * c), 1.0 / c, dtype),
      "gate_b": jnp.zeros((3 * c,), dtype),
  }
  if variant == "new":
    params["wx"] = _glorot(next(keys), (k, k, c_in, c), k * k * c_in, k * k * c, dtype)
    r = recurrent_kernel
    params["wh"] = _glorot(next(keys), (r, r, c, c), r * r * c, r * r * c, dtype)
    params["b"] = jnp.zeros((c,), dtype)
    return params
  params["dw"] = _glorot(next(keys), (k, k, 1, cx), k * k, k * k, dtype)
  params["pw"] = _glorot(next(keys), (cx, c), cx, c, dtype)
  params["b"] = jnp.zeros((c,), dtype)
  if variant in ("b", "c", "d"):
    params["att_dw"] = _glorot(next(keys), (k, k, 1, cx), k * k, k * k, dtype)
    params["att_pw"] = _glorot(next(keys), (cx, c), cx, c, dtype)
    params["att_b"] = jnp.zeros((c,), dtype)
  if variant == "b":
    params["att_z"] = _glorot(next(keys), (k, k, c, 1), k * k * c, k * k, dtype)
  if variant in ("c", "d"):
    params["att_zdw"] = _glorot(next(keys), (k, k, 1, c), k * k, k * k, dtype)
    params["att_zpw"] = _glorot(next(keys), (c, c), c, c, dtype)
    # (c)/(d) drop the FC row of the gate they replace.
    params["gate_w"] = params["gate_w"][:, : 2 * c]
    params["gate_b"] = params["gate_b"][: 2 * c]
  return params


def count_params(params) -> int:
  """Number of scalar parameters in a pytree."""
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))


def zero_state(batch: int, height: int, width: int, c: int, dtype=jnp.float32) -> LSTMState:
  """All-zero initial carry."""
  for name, v in (("batch", batch), ("height", height), ("width", width), ("c", c)):
    if not isinstance(v, (int, np.integer)) or v < 0:
      raise ValueError(f"{name} must be a non-negative int, got {v!r}")
  z = jnp.zeros((batch, height, width, c), dtype)
  return LSTMState(z, z)


# ----------------------------------------------------------------------------- the cell


def infer_variant(params: dict) -> str:
  """The variant a parameter dict belongs to (from its keys and shapes)."""
  if "w" in params:
    return "convlstm"
  if "wx" in params:
    return "new"
  if "att_z" in params:
    return "b"
  if "att_zdw" in params:
    return "c/d"
  return "a"


def _check_inputs(params, carry, x):
  if not hasattr(x, "ndim") or x.ndim != 4:
    raise ValueError(f"x must have rank 4 [B, H, W, C_in], got shape {getattr(x, 'shape', None)}")
  if not isinstance(carry, LSTMState):
    raise TypeError(f"carry must be an LSTMState, got {type(carry).__name__}")
  if carry.h.shape != carry.c.shape or carry.h.ndim != 4:
    raise ValueError(f"carry.h and carry.c must both be [B, H, W, C], got {carry.h.shape}, {carry.c.shape}")
  if carry.h.shape[:3] != x.shape[:3]:
    raise ValueError(f"carry spatial/batch shape {carry.h.shape[:3]} != x's {x.shape[:3]}")
  c = carry.h.shape[-1]
  if "w" in params:
    expect_cx = params["w"].shape[2]
  elif "wx" in params:
    expect_cx = params["wx"].shape[2] + c
  else:
    expect_cx = params["gate_w"].shape[0]
  if x.shape[-1] + c != expect_cx:
    raise ValueError(f"channel mismatch: x has {x.shape[-1]} channels and carry {c}; params expect "
                     f"C_in + C = {expect_cx}")


def _prepare(params, carry, x, variant, padding):
  if padding not in PADDINGS:
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
  _check_inputs(params, carry, x)
  inferred = infer_variant(params)
  if variant is None:
    if inferred == "c/d":
      raise ValueError("variant must be given as 'c' or 'd' for attention-gate parameters")
    variant = inferred
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
  if inferred != variant and not (inferred == "c/d" and variant in ("c", "d")):
    raise ValueError(f"params are for variant {inferred!r}, not {variant!r}")
  return variant


def gates(params: dict, carry: LSTMState, x: jax.Array, *, variant: str | None = None,
          padding: str = "SAME"):
  """The gate activations of one step, before they are combined.

  Args:
    params, carry, x, variant, padding: as in :func:`cell` (``x`` must be ``[B, H, W, C_in]``).

  Returns:
    ``(i, f, o, g, attention)``: input, forget and output gates in (0, 1] (``[B, H, W, C]``, or
    ``[B, 1, 1, C]`` where they are spatially constant), the pre-activation candidate ``g``, and the
    attention map of (b) ``[B, H, W, 1]`` / (c), (d) ``[B, H, W, C]`` (``None`` otherwise).
  """
  variant = _prepare(params, carry, x, variant, padding)
  params = jax.tree.map(lambda p: p.astype(x.dtype), params)  # compute in the input's dtype
  h, _ = carry
  attention = None
  if variant == "convlstm":
    z = conv2d(jnp.concatenate([x, h], -1), params["w"], padding=padding) + params["b"]
    i, f, o, g = jnp.split(z, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o), g, None
  xh = jnp.concatenate([x, h], -1)
  if variant == "b":
    a = jnp.tanh(sepconv2d(xh, params["att_dw"], params["att_pw"], padding=padding) + params["att_b"])
    attention = _spatial_softmax(conv2d(a, params["att_z"], padding=padding))  # [B, H, W, 1]
    x = attention * x
    xh = jnp.concatenate([x, h], -1)
  pooled = jnp.mean(xh, axis=(1, 2))  # [B, C_in + C]
  fc = jax.nn.sigmoid(pooled @ params["gate_w"].astype(x.dtype) + params["gate_b"])[:, None, None, :]
  if variant in ("c", "d"):
    a = jnp.tanh(sepconv2d(xh, params["att_dw"], params["att_pw"], padding=padding) + params["att_b"])
    attention = _max_normalised_exp(sepconv2d(a, params["att_zdw"], params["att_zpw"], padding=padding))
    f, other = jnp.split(fc, 2, axis=-1)
    i, o = (attention, other) if variant == "c" else (other, attention)
  else:
    i, f, o = jnp.split(fc, 3, axis=-1)
  if variant == "new":
    g = conv2d(x, params["wx"], padding=padding) + conv2d(h, params["wh"], padding=padding) + params["b"]
  else:
    g = sepconv2d(xh, params["dw"], params["pw"], padding=padding) + params["b"]
  return i, f, o, g, attention


def cell(params: dict, carry: LSTMState, x: jax.Array, *, variant: str | None = None,
         padding: str = "SAME", return_attention: bool = False):
  """One time step of the chosen cell: ``C' = f ⊙ C + i ⊙ tanh(g)``, ``H' = o ⊙ tanh(C')``.

  Args:
    params: from :func:`init_cell`.
    carry: ``LSTMState(h, c)``, each ``[B, H, W, C]``.
    x: input maps ``[B, H, W, C_in]`` (or ``[H, W, C_in]`` with an unbatched carry, for ``vmap``).
    variant: one of ``VARIANTS``; inferred from ``params`` when omitted (``c``/``d`` must be named).
    padding: ``"SAME"`` (zeros) or ``"CIRCULAR"``.
    return_attention: also return the attention map of (b)/(c)/(d) (``None`` for the others).

  Returns:
    ``(new_carry, h)`` or, with ``return_attention``, ``(new_carry, (h, attention))``.
  """
  single = hasattr(x, "ndim") and x.ndim == 3
  if single:
    x = x[None]
    carry = LSTMState(carry.h[None], carry.c[None])
  i, f, o, g, attention = gates(params, carry, x, variant=variant, padding=padding)
  new_c = f * carry.c + i * jnp.tanh(g)
  new_h = o * jnp.tanh(new_c)
  new_carry = LSTMState(new_h, new_c)
  out = new_h
  if single:
    new_carry = LSTMState(new_h[0], new_c[0])
    out = new_h[0]
    attention = None if attention is None else attention[0]
  if return_attention:
    return new_carry, (out, attention)
  return new_carry, out


def run_cell(params: dict, carry: LSTMState, xs: jax.Array, *, variant: str | None = None,
             padding: str = "SAME", return_attention: bool = False, unroll: int | bool = 1):
  """Runs :func:`cell` over time with ``lax.scan``.

  Args:
    xs: ``[B, T, H, W, C_in]`` clips.
    unroll: ``lax.scan``'s unroll factor (``True``: fully unrolled; XLA:CPU runs convolutions inside
      a while loop several times slower, so the CPU configs unroll the short clips).

  Returns:
    ``(final_carry, hs)`` with ``hs: [B, T, H, W, C]`` (and attention maps ``[B, T, H, W, K]``
    when ``return_attention``).
  """
  if not hasattr(xs, "ndim") or xs.ndim != 5:
    raise ValueError(f"xs must have rank 5 [B, T, H, W, C_in], got shape {getattr(xs, 'shape', None)}")
  if variant is None:
    variant = infer_variant(params)

  def step(carry, x):
    return cell(params, carry, x, variant=variant, padding=padding, return_attention=return_attention)

  final, out = jax.lax.scan(step, carry, jnp.swapaxes(xs, 0, 1), unroll=unroll)
  if return_attention:
    hs, att = out
    att = None if att is None else jnp.swapaxes(att, 0, 1)
    return final, (jnp.swapaxes(hs, 0, 1), att)
  return final, jnp.swapaxes(out, 0, 1)
