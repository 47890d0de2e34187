"""Triggers and poisoning bookkeeping (Tran, Li & Mądry 2018)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src.testing import assert_jit_matches_eager, assert_vmap_matches_loop
from jaxpapers.spectral_signatures import attacks


def _images(n=4, h=8, w=9, c=3, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(0.1, 0.9, (n, h, w, c)), jnp.float32)


@pytest.mark.parametrize("trigger, position, expected", [
    ("pixel", (2, 3), {(2, 3)}),
    ("pixel", (-1, -1), {(7, 8)}),
    ("x", (4, 4), {(4, 4), (3, 3), (3, 5), (5, 3), (5, 5)}),
    ("l", (1, 6), {(1, 6), (2, 6), (1, 7)}),  # the reference's 3-pixel "ell"
])
def test_trigger_changes_exactly_the_intended_pixels(trigger, position, expected):
  x = _images()
  colour = jnp.asarray([1.0, 0.0, 0.5])
  y = np.asarray(attacks.apply_trigger(x, trigger, position, colour))
  changed = {tuple(map(int, rc)) for rc in np.argwhere(np.any(y != np.asarray(x), axis=(0, 3)))}
  assert changed == expected
  for r, c in expected:
    np.testing.assert_array_equal(y[:, r, c, :], np.tile([1.0, 0.0, 0.5], (4, 1)))
  assert y.dtype == x.dtype and y.shape == x.shape


def test_trigger_masks_have_the_documented_sizes():
  assert attacks.trigger_mask("pixel", (8, 8), (0, 0)).sum() == 1
  assert attacks.trigger_mask("x", (8, 8), (1, 1)).sum() == 5
  assert attacks.trigger_mask("l", (8, 8), (0, 0)).sum() == 3


def test_scalar_colour_on_single_image_and_uint8():
  img = np.zeros((5, 5, 1), np.uint8)
  out = np.asarray(attacks.apply_trigger(jnp.asarray(img), "pixel", (0, 4), 255))
  assert out.dtype == np.uint8 and out[0, 4, 0] == 255 and out.sum() == 255
  rgb = np.asarray(attacks.apply_trigger(jnp.zeros((4, 4, 3), jnp.uint8), "pixel", (1, 1),
                                         np.asarray([255, 0, 128], np.uint8)))
  np.testing.assert_array_equal(rgb[1, 1], [255, 0, 128])


@pytest.mark.parametrize("images, colour, error, match", [
    (np.zeros((1, 5, 5, 3), np.uint8), 1.0, TypeError, "integers"),  # 1.0 would paint black
    (np.zeros((1, 5, 5, 3), np.uint8), (1.0, 1.0, 1.0), TypeError, "255"),
    (np.zeros((1, 5, 5, 3), np.uint8), 256, ValueError, r"\[0, 255\]"),
    (np.zeros((1, 5, 5, 3), np.uint8), -1, ValueError, "colour"),
    (np.zeros((1, 5, 5, 3), np.float32), 255, ValueError, r"\[0, 1\]"),
    (np.zeros((1, 5, 5, 3), np.float32), float("nan"), ValueError, "colour"),
    (np.zeros((1, 5, 5, 3), np.float32), "red", TypeError, "colour"),
])
def test_colour_range_is_validated(images, colour, error, match):
  with pytest.raises(error, match=match):
    attacks.apply_trigger(jnp.asarray(images), "pixel", (0, 0), colour)


def test_trigger_jit_and_vmap():
  x = _images(6)
  f = lambda im: attacks.apply_trigger(im, "x", (3, 3), 1.0)
  assert_jit_matches_eager(f, x)
  assert_vmap_matches_loop(f, (x,))


def test_poisons_replace_their_clean_originals():
  rng = np.random.default_rng(1)
  labels = jnp.asarray(np.repeat(np.arange(4), [30, 41, 25, 20]).astype(np.int32))
  images = jnp.asarray(rng.uniform(0, 0.9, (labels.size, 6, 6, 1)), jnp.float32)
  eps = 0.1
  out = attacks.poison_dataset(jax.random.key(3), images, labels, source=1, target=3,
                               epsilon=eps, trigger="pixel", position=(5, 5), colour=1.0)
  n, n_p = labels.size, 4  # round(0.1 * 41) = 4
  assert attacks.num_poisons(41, eps) == n_p
  # The set keeps its size: n − n_p untouched examples, then the n_p poisons.
  assert out.images.shape == (n, 6, 6, 1) and out.labels.shape == (n,)
  np.testing.assert_array_equal(np.asarray(out.poison_mask), np.arange(n) >= n - n_p)
  src = np.asarray(out.source_index)
  assert len(set(src.tolist())) == n_p and np.all(np.asarray(labels)[src] == 1)
  kept = np.asarray(out.kept_index)
  np.testing.assert_array_equal(kept, np.setdiff1d(np.arange(n), src))
  np.testing.assert_array_equal(np.asarray(out.images[: n - n_p]), np.asarray(images)[kept])
  np.testing.assert_array_equal(np.asarray(out.labels[: n - n_p]), np.asarray(labels)[kept])
  np.testing.assert_array_equal(np.asarray(out.labels[n - n_p:]), 3)
  # No clean original of a poison is left in the set.
  flat = np.asarray(out.images).reshape(n, -1)
  for i in src:
    assert not np.any(np.all(flat == np.asarray(images)[i].reshape(-1), axis=1))
  # Class counts: the source loses n_p, the target gains n_p.
  np.testing.assert_array_equal(np.bincount(np.asarray(out.labels), minlength=4),
                                [30, 41 - n_p, 25, 20 + n_p])
  expected = np.asarray(images)[src].copy()
  expected[:, 5, 5, :] = 1.0
  np.testing.assert_array_equal(np.asarray(out.images[n - n_p:]), expected)
  # Same key, same poisons.
  again = attacks.poison_dataset(jax.random.key(3), images, labels, source=1, target=3,
                                 epsilon=eps, position=(5, 5))
  np.testing.assert_array_equal(np.asarray(again.source_index), src)


def test_num_poisons_rounds_half_up():
  assert attacks.num_poisons(130, 0.05) == 7  # 6.5 → 7
  assert attacks.num_poisons(130, 0.1) == 13
  assert attacks.num_poisons(129, 0.1) == 13  # 12.9


def test_triggered_test_set():
  labels = jnp.asarray([0, 2, 2, 1], jnp.int32)
  x = _images(4, 5, 5, 1)
  t = np.asarray(attacks.triggered_test_set(x, labels, source=2, position=(0, 0), colour=0.0))
  assert t.shape == (2, 5, 5, 1)
  np.testing.assert_array_equal(t[:, 0, 0, 0], 0.0)
  np.testing.assert_array_equal(t[:, 1:], np.asarray(x)[1:3, 1:])


@pytest.mark.parametrize("kwargs, match", [
    (dict(epsilon=0.0), "epsilon"), (dict(epsilon=0.5), "epsilon"), (dict(epsilon=-0.1), "epsilon"),
    (dict(trigger="star"), "trigger"), (dict(source=2, target=2), "source and target"),
])
def test_poison_bad_input(kwargs, match):
  labels = jnp.asarray(np.repeat(np.arange(3), 10).astype(np.int32))
  images = jnp.zeros((30, 6, 6, 1))
  args = dict(source=0, target=1, epsilon=0.1, trigger="pixel", position=(0, 0))
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    attacks.poison_dataset(jax.random.key(0), images, labels, **args)


def test_bad_image_shapes_and_positions():
  with pytest.raises(ValueError, match="images"):
    attacks.apply_trigger(jnp.zeros((8, 8)), "pixel", (0, 0))
  with pytest.raises(ValueError, match="images"):
    attacks.poison_dataset(jax.random.key(0), jnp.zeros((4, 8, 8)), jnp.zeros(4, jnp.int32),
                           source=0, target=1)
  with pytest.raises(ValueError, match="labels"):
    attacks.poison_dataset(jax.random.key(0), jnp.zeros((4, 8, 8, 1)), jnp.zeros(5, jnp.int32),
                           source=0, target=1)
  with pytest.raises(ValueError, match="outside"):
    attacks.apply_trigger(jnp.zeros((1, 8, 8, 1)), "x", (0, 4))
  with pytest.raises(ValueError, match="trigger"):
    attacks.apply_trigger(jnp.zeros((1, 8, 8, 1)), "square", (4, 4))
  with pytest.raises(ValueError, match="colour"):
    attacks.apply_trigger(jnp.zeros((1, 8, 8, 3)), "pixel", (4, 4), jnp.ones(2))
