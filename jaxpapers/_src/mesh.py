"""Device-mesh and shard_map helpers (Auto axes, so unsharded inputs are accepted)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

P = PartitionSpec


def make_mesh(axis_names: str | Sequence[str] = "data", shape: Sequence[int] | None = None,
              devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A mesh over ``devices`` (default: all) with ``AxisType.Auto`` axes.

  ``jax.make_mesh`` defaults to Explicit axes in jax 0.10, with which ``shard_map`` rejects
  unsharded inputs; every mesh in this library is built here instead.
  """
  names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
  devices = list(jax.devices() if devices is None else devices)
  if shape is None:
    if len(names) != 1:
      raise ValueError(f"shape is required for a mesh with axes {names}")
    shape = (len(devices),)
  shape = tuple(shape)
  if int(np.prod(shape)) > len(devices):
    raise ValueError(f"mesh shape {shape} needs {int(np.prod(shape))} devices, have {len(devices)}")
  if len(shape) != len(names):
    raise ValueError(f"shape {shape} and axis_names {names} differ in length")
  return jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(names),
                       devices=devices[: int(np.prod(shape))])


def shard(x, mesh: jax.sharding.Mesh, spec: PartitionSpec):
  """Places ``x`` (a pytree) on ``mesh`` with partition ``spec``."""
  sharding = NamedSharding(mesh, spec)
  return jax.tree.map(lambda a: jax.device_put(a, sharding), x)


def shard_map(fn, mesh: jax.sharding.Mesh, in_specs, out_specs, *, check_vma: bool = False):
  """``jax.shard_map`` with this library's defaults (replication checks off by default)."""
  return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=check_vma)


def pad_to_multiple(x, multiple: int, axis: int = 0, value=0):
  """Pads ``x`` along ``axis`` so its length divides by ``multiple``; returns (padded, original_length)."""
  n = x.shape[axis]
  pad = (-n) % multiple
  if pad == 0:
    return x, n
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, pad)
  return jax.numpy.pad(x, widths, constant_values=value), n
