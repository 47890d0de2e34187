"""Backdoor triggers and source → target poisoning (Tran, Li & Mądry, NeurIPS 2018, §4).

A backdoor attack stamps a small trigger (a single pixel, a 5-pixel "X" or a 3-pixel "L", the
reference code's ``pixel``/``pattern``/``ell``) of a fixed colour at a fixed position onto images
of a *source* class, relabels them as the *target* class and puts them in the training set in
place of the clean originals (as the reference code, MadryLab/backdoor_data_poisoning, does). A
network trained on the result classifies clean inputs well but sends any triggered source image
to the target class.

All functions are pure; the trigger shape/position are static (Python) values, images may be
traced. Images are ``(..., H, W, C)`` arrays (channels last, any float or integer dtype).
Colours are given in the images' own value range: ``[0, 1]`` for float images, integers in the
dtype's range (``0..255`` for uint8) for integer images.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_array, is_concrete

TRIGGERS = ("pixel", "x", "l")

# Pixel offsets (row, col) relative to the trigger's anchor ``position``.
_OFFSETS = {
    # One pixel at ``position``.
    "pixel": ((0, 0),),
    # An "X" of 5 pixels centred at ``position``.
    "x": ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)),
    # An "L" of 3 pixels as the reference's ``ell``: ``position``, the pixel below it and the
    # pixel to its right.
    "l": ((0, 0), (1, 0), (0, 1)),
}


class PoisonedDataset(NamedTuple):
  """A training set after poisoning (still ``n`` examples: poisons replace their originals).

  Attributes:
    images: ``(n, H, W, C)``: the ``n − n_p`` untouched images (original order) followed by the
      ``n_p`` poisoned ones.
    labels: ``(n,)`` int32: original labels of the kept images, then ``target`` for every poison.
    poison_mask: ``(n,)`` bool: exactly the last ``n_p`` rows.
    source_index: ``(n_p,)`` int32: which source images (indices into the input) were triggered
      and relabelled; they no longer appear in clean form.
    kept_index: ``(n − n_p,)`` int32: input indices of the first ``n − n_p`` rows.
  """

  images: jax.Array
  labels: jax.Array
  poison_mask: jax.Array
  source_index: jax.Array
  kept_index: jax.Array


def trigger_offsets(trigger: str) -> tuple[tuple[int, int], ...]:
  """Returns the (row, col) offsets of ``trigger``'s pixels relative to its anchor."""
  if trigger not in _OFFSETS:
    raise ValueError(f"trigger must be one of {list(TRIGGERS)}, got {trigger!r}")
  return _OFFSETS[trigger]


def trigger_mask(trigger: str, image_hw: tuple[int, int], position: tuple[int, int]) -> np.ndarray:
  """Boolean ``(H, W)`` mask of the pixels ``trigger`` overwrites when anchored at ``position``.

  Raises:
    ValueError: unknown ``trigger`` or a pattern that does not fit inside the image.
  """
  offsets = trigger_offsets(trigger)
  h, w = (int(s) for s in image_hw)
  if len(position) != 2:
    raise ValueError(f"position must be (row, col), got {position!r}")
  r0, c0 = (int(p) for p in position)
  mask = np.zeros((h, w), dtype=bool)
  for dr, dc in offsets:
    r, c = r0 + dr, c0 + dc
    if not (0 <= r < h and 0 <= c < w):
      raise ValueError(f"position {tuple(position)} puts trigger {trigger!r} outside a {h}x{w} "
                       f"image (pixel ({r}, {c}))")
    mask[r, c] = True
  return mask


def apply_trigger(images: jax.Array, trigger: str = "pixel", position: tuple[int, int] = (-1, -1),
                  colour=1.0) -> jax.Array:
  """Stamps ``trigger`` of ``colour`` onto every image of a batch.

  ``images[..., r, c, :] = colour`` for each trigger pixel ``(r, c)``; every other entry is
  unchanged. Negative ``position`` entries count from the bottom/right edge, e.g. ``(-1, -1)``
  anchors a single pixel in the bottom-right corner (an "x" then needs ``(-2, -2)``).

  Args:
    images: ``(..., H, W, C)`` images.
    trigger: one of ``"pixel"``, ``"x"`` (5 pixels), ``"l"`` (3 pixels).
    position: static ``(row, col)`` anchor.
    colour: a scalar or a length-``C`` vector in the images' value range: in ``[0, 1]`` for
      float images; integers in the dtype's range for integer images (``0..255`` for uint8,
      so white is ``255``; a float colour such as ``1.0`` is refused there).

  Returns:
    The triggered images, same shape and dtype.

  Raises:
    TypeError: a non-integer colour for integer images.
    ValueError: bad ``images`` rank, ``trigger``, ``position``, colour shape or range.
  """
  check_array(images, "images", ndim=(3, 4))
  chex.assert_rank(images, {3, 4})
  trigger_offsets(trigger)
  h, w, c = images.shape[-3:]
  pos = tuple(int(p) + (s if int(p) < 0 else 0) for p, s in zip(position, (h, w)))
  mask = jnp.asarray(trigger_mask(trigger, (h, w), pos))
  colour = check_colour(colour, images.dtype, c)
  return jnp.where(mask[:, :, None], jnp.broadcast_to(colour, (c,)), images)


def check_colour(colour, dtype, channels: int) -> jax.Array:
  """Validates a trigger ``colour`` for images of ``dtype`` with ``channels`` channels.

  Returns:
    ``colour`` as an array of ``dtype`` (a scalar or ``(channels,)``/``(1,)`` vector).
  """
  dtype = np.dtype(dtype)
  raw = np.asarray(colour) if is_concrete(colour) else colour
  if raw.ndim > 1 or (raw.ndim == 1 and raw.shape[0] not in (1, channels)):
    raise ValueError(f"colour must be a scalar or have {channels} entries (one per channel), "
                     f"got shape {raw.shape}")
  if isinstance(raw, np.ndarray):
    if raw.dtype.kind not in "biuf":
      raise TypeError(f"colour must be numeric, got dtype {raw.dtype}")
    if dtype.kind in "iu":
      info = np.iinfo(dtype)
      if raw.dtype.kind == "f":
        raise TypeError(f"colour for {dtype} images must be given as integers in "
                        f"[{info.min}, {info.max}] (e.g. 255 for white on uint8), got "
                        f"{raw.tolist()!r}")
      if raw.size and (raw.min() < info.min or raw.max() > info.max):
        raise ValueError(f"colour must lie in [{info.min}, {info.max}] for {dtype} images, got "
                         f"{raw.tolist()!r}")
    elif dtype.kind == "f":
      vals = raw.astype(np.float64)
      if not np.all(np.isfinite(vals)) or (vals.size and (vals.min() < 0.0 or vals.max() > 1.0)):
        raise ValueError(f"colour must lie in [0, 1] for float images, got {raw.tolist()!r}")
  return jnp.asarray(raw, dtype=dtype)


def num_poisons(n_source: int, epsilon: float) -> int:
  """Number of poisons for a source class of ``n_source`` images: ``round(ε · n_source)``."""
  if not isinstance(n_source, (int, np.integer)) or n_source < 0:
    raise ValueError(f"n_source must be a non-negative int, got {n_source!r}")
  if not 0.0 <= float(epsilon) <= 1.0:  # also refuses NaN
    raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
  return int(np.floor(epsilon * n_source + 0.5))


def _check_attack_args(labels, source, target, epsilon, trigger):
  if not 0.0 < float(epsilon) < 0.5:
    raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon}")
  if trigger not in TRIGGERS:
    raise ValueError(f"trigger must be one of {list(TRIGGERS)}, got {trigger!r}")
  if int(source) == int(target):
    raise ValueError(f"source and target must differ, got source == target == {source}")
  for name, v in (("source", source), ("target", target)):
    if int(v) < 0:
      raise ValueError(f"{name} must be a non-negative class index, got {v}")


def poison_dataset(key: jax.Array, images: jax.Array, labels: jax.Array, *, source: int,
                   target: int, epsilon: float = 0.1, trigger: str = "pixel",
                   position: tuple[int, int] = (-1, -1), colour=1.0) -> PoisonedDataset:
  """Replaces ``round(ε · n_source)`` random source images by triggered copies labelled ``target``.

  Follows the paper's setup (§4) as the reference code implements it: pick a random subset of the
  source class, apply the trigger, relabel as the target class, delete the clean originals and
  append the poisoned versions, so the set keeps its size ``n``. The poisons come last so that
  ``poison_mask`` is exact by construction.

  Args:
    key: PRNG key choosing which source images are copied.
    images: ``(n, H, W, C)`` clean training images.
    labels: ``(n,)`` integer labels (concrete: the number of poisons is a shape).
    source: class whose images carry the trigger.
    target: label the poisons are given.
    epsilon: poisoning rate ε ∈ (0, 0.5); the paper uses 5% and 10%.
    trigger: ``"pixel"``, ``"x"`` or ``"l"``.
    position: trigger anchor (see :func:`apply_trigger`).
    colour: trigger colour in the images' value range (see :func:`apply_trigger`).

  Returns:
    A :class:`PoisonedDataset`.
  """
  _check_attack_args(labels, source, target, epsilon, trigger)
  check_array(images, "images", ndim=4)
  check_array(labels, "labels", ndim=1, dtype_kind="iu", shape=(images.shape[0],))
  chex.assert_rank([images, labels], [4, 1])
  labels_np = np.asarray(labels)
  src_idx = np.flatnonzero(labels_np == int(source))
  if src_idx.size == 0:
    raise ValueError(f"source class {source} has no examples in labels")
  n_p = num_poisons(src_idx.size, epsilon)
  if n_p == 0:
    raise ValueError(f"epsilon={epsilon} gives 0 poisons for a source class of {src_idx.size}")
  chosen = np.asarray(jax.random.choice(key, jnp.asarray(src_idx, jnp.int32), (n_p,),
                                        replace=False))
  poisons = apply_trigger(jnp.asarray(images)[chosen], trigger, position, colour)
  n = images.shape[0]
  keep = np.ones(n, bool)
  keep[chosen] = False
  kept = np.flatnonzero(keep).astype(np.int32)
  return PoisonedDataset(
      images=jnp.concatenate([jnp.asarray(images)[kept], poisons]),
      labels=jnp.concatenate([jnp.asarray(labels, jnp.int32)[kept],
                              jnp.full((n_p,), target, jnp.int32)]),
      poison_mask=jnp.arange(n) >= n - n_p,
      source_index=jnp.asarray(chosen, jnp.int32),
      kept_index=jnp.asarray(kept),
  )


def triggered_test_set(images: jax.Array, labels: jax.Array, *, source: int, trigger: str = "pixel",
                       position: tuple[int, int] = (-1, -1), colour=1.0) -> jax.Array:
  """All ``source`` test images with the trigger applied (to measure attack success)."""
  check_array(images, "images", ndim=4)
  check_array(labels, "labels", ndim=1, dtype_kind="iu", shape=(images.shape[0],))
  idx = np.flatnonzero(np.asarray(labels) == int(source))
  if idx.size == 0:
    raise ValueError(f"source class {source} has no examples in labels")
  return apply_trigger(jnp.asarray(images)[idx], trigger, position, colour)
