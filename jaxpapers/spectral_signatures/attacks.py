"""Backdoor triggers and source → target poisoning (Tran, Li & Mądry, NeurIPS 2018, §4).

A backdoor attack stamps a small trigger (a single pixel, a 5-pixel "X" or an "L") of a fixed
colour at a fixed position onto images of a *source* class and adds them to the training set
labelled as the *target* class. A network trained on the result classifies clean inputs well but
sends any triggered source image to the target class.

All functions are pure; the trigger shape/position are static (Python) values, images may be
traced. Images are ``(..., H, W, C)`` arrays (channels last, any float or integer dtype).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_array

TRIGGERS = ("pixel", "x", "l")

# Pixel offsets (row, col) relative to the trigger's anchor ``position``.
_OFFSETS = {
    # One pixel at ``position``.
    "pixel": ((0, 0),),
    # An "X" of 5 pixels centred at ``position``.
    "x": ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)),
    # An "L" of 5 pixels: a 3-pixel vertical stroke down from ``position`` and a 3-pixel
    # horizontal stroke to the right along its bottom row (sharing the corner).
    "l": ((0, 0), (1, 0), (2, 0), (2, 1), (2, 2)),
}


class PoisonedDataset(NamedTuple):
  """A training set after poisoning.

  Attributes:
    images: ``(n + n_p, H, W, C)``: the clean images followed by the ``n_p`` poisoned copies.
    labels: ``(n + n_p,)`` int32: original labels, then ``target`` for every poison.
    poison_mask: ``(n + n_p,)`` bool: exactly the appended poisoned copies.
    source_index: ``(n_p,)`` int32: which clean source images were copied and triggered.
  """

  images: jax.Array
  labels: jax.Array
  poison_mask: jax.Array
  source_index: jax.Array


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
    trigger: one of ``"pixel"``, ``"x"`` (5 pixels), ``"l"`` (5 pixels).
    position: static ``(row, col)`` anchor.
    colour: a scalar or a length-``C`` vector (cast to ``images.dtype``).

  Returns:
    The triggered images, same shape and dtype.
  """
  check_array(images, "images", ndim=(3, 4))
  trigger_offsets(trigger)
  h, w, c = images.shape[-3:]
  pos = tuple(int(p) + (s if int(p) < 0 else 0) for p, s in zip(position, (h, w)))
  mask = jnp.asarray(trigger_mask(trigger, (h, w), pos))
  colour = jnp.asarray(colour, dtype=images.dtype)
  if colour.ndim > 1 or (colour.ndim == 1 and colour.shape[0] not in (1, c)):
    raise ValueError(f"colour must be a scalar or have {c} entries (one per channel), "
                     f"got shape {colour.shape}")
  return jnp.where(mask[:, :, None], jnp.broadcast_to(colour, (c,)), images)


def num_poisons(n_source: int, epsilon: float) -> int:
  """Number of poisons for a source class of ``n_source`` images: ``round(ε · n_source)``."""
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
  """Adds ``round(ε · n_source)`` triggered copies of random source images, labelled ``target``.

  Follows the paper's setup (§4): pick a random subset of the source class, apply the trigger,
  relabel the copies as the target class and add them to the training set. The poisons are
  appended after the clean examples so that ``poison_mask`` is exact by construction.

  Args:
    key: PRNG key choosing which source images are copied.
    images: ``(n, H, W, C)`` clean training images.
    labels: ``(n,)`` integer labels (concrete: the number of poisons is a shape).
    source: class whose images carry the trigger.
    target: label the poisons are given.
    epsilon: poisoning rate ε ∈ (0, 0.5); the paper uses 5% and 10%.
    trigger: ``"pixel"``, ``"x"`` or ``"l"``.
    position: trigger anchor (see :func:`apply_trigger`).
    colour: trigger colour.

  Returns:
    A :class:`PoisonedDataset`.
  """
  _check_attack_args(labels, source, target, epsilon, trigger)
  check_array(images, "images", ndim=4)
  check_array(labels, "labels", ndim=1, dtype_kind="iu", shape=(images.shape[0],))
  labels_np = np.asarray(labels)
  src_idx = np.flatnonzero(labels_np == int(source))
  if src_idx.size == 0:
    raise ValueError(f"source class {source} has no examples in labels")
  n_p = num_poisons(src_idx.size, epsilon)
  if n_p == 0:
    raise ValueError(f"epsilon={epsilon} gives 0 poisons for a source class of {src_idx.size}")
  chosen = jax.random.choice(key, jnp.asarray(src_idx, jnp.int32), (n_p,), replace=False)
  poisons = apply_trigger(jnp.asarray(images)[chosen], trigger, position, colour)
  n = images.shape[0]
  return PoisonedDataset(
      images=jnp.concatenate([jnp.asarray(images), poisons]),
      labels=jnp.concatenate([jnp.asarray(labels, jnp.int32), jnp.full((n_p,), target, jnp.int32)]),
      poison_mask=jnp.arange(n + n_p) >= n,
      source_index=chosen.astype(jnp.int32),
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
