"""Light-weight lossy gradient compressors of Pipe-SGD (Li et al., NeurIPS 2018, Sec. 4).

The paper compresses every message of the ring AllReduce with cheap, element-wise codes:

* ``"truncate16"``: keep the 16 high bits of each IEEE float32 (sign, 8 exponent bits and the
  7 leading mantissa bits), i.e. round toward zero to bfloat16. The payload is ``uint16``.
  Element-wise bound: ``|x − t(x)| < 2⁻⁷·|x|``, ``sign(t(x)) = sign(x)``, ``|t(x)| ≤ |x|``.
* ``"quantize8"``: 8-bit scalar quantization with one float32 scale per message,
  ``s = max|x| / 127``, ``q = round(x / s) ∈ [−127, 127]`` (``int8``), decoded as ``q·s``.
  Element-wise bound: ``|x − q·s| ≤ s / 2``.
* ``"none"``: the identity (float32 payload).

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


class Compressor(NamedTuple):
  """An element-wise lossy code for float32 messages.

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
  """The 16 high bits of each float32 of ``x`` as ``uint16`` (round toward zero)."""
  check_array(x, "x", dtype_kind="f")
  bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
  return (bits >> 16).astype(jnp.uint16)


def truncate16_decode(payload: jax.Array) -> jax.Array:
  """Inverse of :func:`truncate16_encode`: the low 16 bits are zero."""
  check_array(payload, "payload", dtype_kind="u")
  bits = payload.astype(jnp.uint32) << 16
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


def quantize8_encode(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(int8 codes, float32 scale)`` with ``scale = max|x| / 127`` and ``codes = round(x / scale)``."""
  check_array(x, "x", dtype_kind="f")
  x = x.astype(jnp.float32)
  amax = jnp.max(jnp.abs(x)) if x.size else jnp.float32(0.0)
  scale = amax / QUANT_LEVELS
  safe = jnp.where(scale > 0, scale, 1.0)
  codes = jnp.clip(jnp.round(x / safe), -QUANT_LEVELS, QUANT_LEVELS).astype(jnp.int8)
  return codes, scale.astype(jnp.float32)


def quantize8_decode(payload: tuple[jax.Array, jax.Array]) -> jax.Array:
  """Inverse of :func:`quantize8_encode`: ``codes · scale``."""
  codes, scale = payload
  return codes.astype(jnp.float32) * scale


def _identity_encode(x):
  check_array(x, "x", dtype_kind="f")
  return x.astype(jnp.float32)


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
