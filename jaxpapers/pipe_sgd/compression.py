"""Light-weight lossy gradient compressors of Pipe-SGD (Li et al., NeurIPS 2018, Sec. 4).

The paper compresses every message of the ring AllReduce with cheap, element-wise codes:

* ``"truncate16"``: keep the 16 high bits of each IEEE float32 (sign, 8 exponent bits and the
  7 leading mantissa bits), i.e. round toward zero to bfloat16. The payload is ``uint16``.
  Element-wise bound: ``|x − t(x)| < 2⁻⁷·|x|``, ``sign(t(x)) = sign(x)``, ``|t(x)| ≤ |x|``.
* ``"quantize8"``: 8-bit scalar quantization with one float32 scale per message,
  ``s = max|x| / 127``, ``q = round(x / s) ∈ [−127, 127]`` (``int8``), decoded as ``q·s``.
  Element-wise bound: ``|x − q·s| ≤ s / 2``. Non-finite entries: the scale is taken over the
  *finite* entries only, ``±inf`` is clipped to ``±127`` (decoded as ``±max`` finite ``|x|`` of the
  message, the saturation value), and ``NaN`` is sent as the otherwise unused code ``−128``, which
  decodes to ``NaN``. One ``inf`` therefore no longer turns the whole message into ``NaN`` (its
  scale used to be ``inf``), and a ``NaN`` stays a ``NaN`` without touching the other entries.
* ``"none"``: the identity (the payload keeps the input's float dtype, e.g. float64).

A compressor is a :class:`Compressor` of pure functions, so it can be applied inside ``jit`` and
``shard_map`` at every hop of the ring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src.validation import check_array

QUANT_LEVELS = 127
NAN_CODE = -128  # int8 code not produced by rounding: marks a NaN entry


class Compressor(NamedTuple):
  """An element-wise lossy code for float messages (``truncate16``/``quantize8`` code float32).

  Attributes:
    name: identifier (``"none"``, ``"truncate16"``, ``"quantize8"``).
    bits: transmitted bits per element (the per-message scale of ``quantize8`` is not counted).
    encode: ``encode(x: float32[m]) -> payload`` (a pytree of arrays).
    decode: ``decode(payload) -> float32[m]``.
  """

  name: str
  bits: int
  encode: Callable[[jax.Array], Any]
  decode: Callable[[Any], jax.Array]


def truncate16_encode(x: jax.Array) -> jax.Array:
  """The 16 high bits of each float32 of ``x`` as ``uint16`` (round toward zero).

  ``±inf`` stays ``±inf`` and every ``NaN`` is sent as a quiet ``NaN``.

  Raises:
    TypeError: ``x`` is not a floating array.
  """
  check_array(x, "x", dtype_kind="f")
  x = x.astype(jnp.float32)
  bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
  # A NaN whose payload sits in the low 16 bits would truncate to inf: send the quiet NaN.
  bits = jnp.where(jnp.isnan(x), jnp.uint32(0x7FC00000), bits)
  return (bits >> 16).astype(jnp.uint16)


def truncate16_decode(payload: jax.Array) -> jax.Array:
  """Inverse of :func:`truncate16_encode`: the low 16 bits are zero."""
  check_array(payload, "payload", dtype_kind="u")
  bits = payload.astype(jnp.uint32) << 16
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


def quantize8_encode(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(int8 codes, float32 scale)`` with ``scale = max|x| / 127`` and ``codes = round(x / scale)``.

  The maximum is over the finite entries; ``±inf`` saturates to ``±127`` and ``NaN`` is coded as
  ``NAN_CODE = −128`` (decoded back to ``NaN``), see the module docstring.

  Raises:
    TypeError: ``x`` is not a floating array.
  """
  check_array(x, "x", dtype_kind="f")
  x = x.astype(jnp.float32)
  finite = jnp.isfinite(x)
  amax = jnp.max(jnp.where(finite, jnp.abs(x), 0.0)) if x.size else jnp.float32(0.0)
  scale = amax / QUANT_LEVELS
  safe = jnp.where(scale > 0, scale, 1.0)
  # Finite entries round into [-127, 127]; ±inf / safe is ±inf and clips to ±127.
  codes = jnp.clip(jnp.round(jnp.where(jnp.isnan(x), 0.0, x) / safe), -QUANT_LEVELS, QUANT_LEVELS)
  codes = jnp.where(jnp.isnan(x), NAN_CODE, codes).astype(jnp.int8)
  return codes, scale.astype(jnp.float32)


def quantize8_decode(payload: tuple[jax.Array, jax.Array]) -> jax.Array:
  """Inverse of :func:`quantize8_encode`: ``codes · scale`` (``NaN`` where the code is ``−128``).

  Raises:
    TypeError: codes are not ``int8`` or the scale not floating.
  """
  codes, scale = payload
  check_array(codes, "codes", dtype_kind="i")
  if codes.dtype != jnp.int8:
    raise TypeError(f"codes must be int8, got {codes.dtype}")
  check_array(scale, "scale", ndim=0, dtype_kind="f")
  values = codes.astype(jnp.float32) * scale
  return jnp.where(codes == NAN_CODE, jnp.nan, values)


def _identity_encode(x):
  check_array(x, "x", dtype_kind="f")
  return x


def _identity_decode(payload):
  return payload


COMPRESSORS = {
    "none": Compressor("none", 32, _identity_encode, _identity_decode),
    "truncate16": Compressor("truncate16", 16, truncate16_encode, truncate16_decode),
    "quantize8": Compressor("quantize8", 8, quantize8_encode, quantize8_decode),
}


def get_compressor(name: str | Compressor) -> Compressor:
  """Returns the compressor called ``name`` (a :class:`Compressor` is passed through).

  Raises:
    ValueError: if ``name`` is not one of ``"none"``, ``"truncate16"``, ``"quantize8"``.
  """
  if isinstance(name, Compressor):
    return name
  if not isinstance(name, str) or name not in COMPRESSORS:
    raise ValueError(f"compressor must be one of {sorted(COMPRESSORS)}, got {name!r}")
  return COMPRESSORS[name]


def roundtrip(x: jax.Array, compressor: str | Compressor = "truncate16") -> jax.Array:
  """``decode(encode(x))``: what a receiver sees of ``x`` after one compressed hop."""
  c = get_compressor(compressor)
  return c.decode(c.encode(x))
