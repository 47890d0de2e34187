"""Ring AllReduce written with ``lax.ppermute``, compressing every hop (Pipe-SGD, Sec. 4).

Li et al. (NeurIPS 2018) build Pipe-SGD on a ring AllReduce: a reduce-scatter of ``p − 1`` hops
(rank ``r`` sends chunk ``r − s`` to rank ``r + 1``, which adds it into its own copy) followed by
an all-gather of ``p − 1`` hops that circulates each fully reduced chunk. Each rank sends
``2(p − 1)`` chunks of ``⌈n/p⌉`` elements, i.e. ``2(p − 1)/p·n`` elements when ``p`` divides ``n``.
The paper's compressors are applied to every message: a partial sum is encoded before it is sent
and decoded on arrival; in the all-gather the owner encodes its reduced chunk once, the payload
is forwarded unchanged, and the owner keeps the decoded value too, so all ranks agree bit for bit.

Functions named ``ring_*`` run inside ``shard_map``/``pmap`` over a named axis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxpapers._src.mesh import P, make_mesh, shard_map
from jaxpapers.pipe_sgd.compression import Compressor, get_compressor


def _check_axis_size(axis_size):
  if isinstance(axis_size, bool) or not isinstance(axis_size, (int, np.integer)) or axis_size < 1:
    raise ValueError(f"axis_size must be a positive integer, got {axis_size!r}")


def ring_allreduce(x: jax.Array, axis_name: str, axis_size: int,
                   compressor: str | Compressor = "none") -> jax.Array:
  """Sum of ``x`` over ``axis_name`` by a (compressed) ring; call inside ``shard_map``/``pmap``.

  Args:
    x: this rank's floating array (any shape).
    axis_name: the mapped axis to reduce over.
    axis_size: number of ranks on that axis (static).
    compressor: ``"none"``, ``"truncate16"``, ``"quantize8"`` or a :class:`Compressor`.

  Returns:
    An array of ``x``'s shape and dtype holding the (approximate, if compressed) sum, identical
    on every rank. The partial sums are accumulated in ``float64`` for ``float64`` input (and the
    uncompressed ring sends ``float64`` messages, so it is exact to float64 rounding) and in
    ``float32`` otherwise; the compressors code float32 values.

  Raises:
    TypeError: ``x`` is not a floating array.
    ValueError: bad ``axis_size`` or compressor.
  """
  c = get_compressor(compressor)
  _check_axis_size(axis_size)
  if not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"x must be a floating array, got dtype {getattr(x, 'dtype', type(x))}")
  p = int(axis_size)
  if p == 1:
    return x  # no hop, nothing sent, nothing compressed
  acc_dtype = jnp.float64 if x.dtype == jnp.float64 else jnp.float32
  flat = x.reshape(-1).astype(acc_dtype)
  n = flat.shape[0]
  m = -(-n // p)
  flat = jnp.pad(flat, (0, m * p - n))
  chunks = flat.reshape(p, m)
  rank = jax.lax.axis_index(axis_name)
  ring = [(i, (i + 1) % p) for i in range(p)]
  # Reduce-scatter: after p - 1 hops rank r holds the full sum of chunk (r + 1) mod p.
  for s in range(p - 1):
    payload = c.encode(chunks[(rank - s) % p])
    received = jax.lax.ppermute(payload, axis_name, ring)
    chunks = chunks.at[(rank - 1 - s) % p].add(c.decode(received).astype(acc_dtype))
  own = (rank + 1) % p
  payload = c.encode(chunks[own])
  chunks = chunks.at[own].set(c.decode(payload).astype(acc_dtype))
  # All-gather: forward the compressed reduced chunks around the ring.
  for s in range(p - 1):
    payload = jax.lax.ppermute(payload, axis_name, ring)
    chunks = chunks.at[(rank - s) % p].set(c.decode(payload).astype(acc_dtype))
  return chunks.reshape(-1)[:n].reshape(x.shape).astype(x.dtype)


def tree_ring_allreduce(tree, axis_name: str, axis_size: int,
                        compressor: str | Compressor = "none"):
  """:func:`ring_allreduce` of a pytree of float arrays, flattened into one message."""
  flat, unravel = ravel_pytree(tree)
  return unravel(ring_allreduce(flat, axis_name, axis_size, compressor))


def ring_elements_sent(p: int, n: int) -> int:
  """Elements one rank sends in :func:`ring_allreduce`: ``2(p − 1)·⌈n/p⌉``."""
  _check_axis_size(p)
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
    raise ValueError(f"n must be an integer >= 0, got {n!r}")
  return 2 * (p - 1) * (-(-n // p))


def make_allreduce(mesh: jax.sharding.Mesh, *, method: str = "ring",
                   compressor: str | Compressor = "none", axis_name: str = "data"):
  """A jitted ``f(x: [p, ...]) -> [p, ...]`` summing the per-device rows ``x[i]`` over ``mesh``.

  Row ``i`` of ``x`` lives on device ``i``; every output row holds the sum. ``method`` is
  ``"ring"`` (this module's ring with ``compressor``) or ``"psum"`` (``lax.psum``).
  """
  if method not in ("ring", "psum"):
    raise ValueError(f"method must be 'ring' or 'psum', got {method!r}")
  c = get_compressor(compressor)
  if method == "psum" and c.name != "none":
    raise ValueError("compressor needs method='ring' (lax.psum cannot compress its messages)")
  p = mesh.shape[axis_name]

  def local(x):
    row = x[0]
    out = ring_allreduce(row, axis_name, p, c) if method == "ring" else jax.lax.psum(row, axis_name)
    return out[None]

  return jax.jit(shard_map(local, mesh, in_specs=P(axis_name), out_specs=P(axis_name)))


def pmap_ring_allreduce(x: jax.Array, compressor: str | Compressor = "none",
                        devices=None) -> jax.Array:
  """The ``jax.pmap`` path of the ring (smoke test of the legacy API): rows of ``x`` summed.

  Args:
    x: ``[p, ...]`` with one row per device (``p ≤`` device count).
    compressor: as in :func:`ring_allreduce`.
    devices: the devices to map over (default: the first ``p``).
  """
  c = get_compressor(compressor)
  if not hasattr(x, "ndim") or x.ndim < 1:
    raise ValueError("x must have a leading device axis")
  p = x.shape[0]
  devices = list(jax.devices()[:p] if devices is None else devices)
  if len(devices) != p:
    raise ValueError(f"x has {p} rows but {len(devices)} devices were given")
  fn = jax.pmap(lambda row: ring_allreduce(row, "i", p, c), axis_name="i", devices=devices)
  return fn(x)


def default_mesh(num_devices: int | None = None, axis_name: str = "data"):
  """A 1-D data-parallel mesh over the first ``num_devices`` devices (Auto axes)."""
  devices = jax.devices()
  num = len(devices) if num_devices is None else int(num_devices)
  if num < 1 or num > len(devices):
    raise ValueError(f"num_devices must be in [1, {len(devices)}], got {num_devices}")
  return make_mesh(axis_name, devices=devices[:num])
