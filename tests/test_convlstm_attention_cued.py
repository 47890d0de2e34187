"""The cued two-actor gesture set: the class is the cued actor's gesture, the cue is transient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.convlstm_attention import config as config_lib
from jaxpapers.convlstm_attention import data, train

T, S = 8, 32


def _parts(seed, label, **kw):
  return data.cued_clip_parts(jax.random.key(seed), label, num_frames=T, size=S,
                              clutter=False, noise=0.0, **kw)


def test_cue_marks_the_target_half_only_in_the_first_frames():
  sides = []
  for seed in range(12):
    clip, side, other = _parts(seed, seed % len(data.CLASSES))
    clip, side = np.asarray(clip), int(side)
    sides.append(side)
    assert clip.shape == (T, S, S, 3) and 0.0 <= clip.min() and clip.max() <= 1.0
    assert int(other) != seed % len(data.CLASSES)
    # Actors are at most 0.85 bright: (near) white pixels are the ring, and only in cue frames.
    white = np.all(clip > 0.95, axis=-1)  # [T, S, S]
    assert white[:2].sum() > 30 and white[2:].sum() == 0
    # The ring is centred on the target's first position, inside the target's half.
    centre_x = np.nonzero(white[:2])[2].mean() + 0.5
    assert side * S / 2 < centre_x < (side + 1) * S / 2
  assert set(sides) == {0, 1}


def test_the_uncued_actor_is_a_nuisance_the_label_does_not_see():
  # Same key, different label: only the target's trajectory (and the other's class draw) change;
  # the side and the cue's half stay, and both halves move in every clip (two actors).
  c0, side0, _ = _parts(3, 0)
  c1, side1, _ = _parts(3, 1)
  assert int(side0) == int(side1)
  motion = np.abs(np.diff(np.asarray(c0)[2:], axis=0)).sum(axis=(0, 1, 3))  # per column
  assert motion[: S // 2].sum() > 0 and motion[S // 2:].sum() > 0
  assert not np.allclose(c0, c1)


def test_batch_jit_eager_and_config_hook():
  f = lambda k: data.cued_batch(k, 4, num_frames=T, size=S, num_classes=10)
  eager, jitted = f(jax.random.key(0)), jax.jit(f)(jax.random.key(0))
  np.testing.assert_allclose(eager.clips, jitted.clips, atol=1e-6)
  np.testing.assert_array_equal(eager.labels, jitted.labels)
  cfg = config_lib.get_config("smoke")
  cfg.dataset = "synthetic_cued"
  cfg.num_frames, cfg.size = 4, 16
  batch = train.batch_fn(cfg)(jax.random.key(1))
  assert batch.clips.shape == (cfg.batch_size, 4, 16, 16, 3)
  white = jnp.all(batch.clips > 0.95, axis=-1)
  assert int(white[:, cfg.cue_frames:].sum()) == 0 or cfg.cue_frames >= 4


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="cue_frames"):
    data.cued_clip(jax.random.key(0), 1, num_frames=4, cue_frames=4)
  with pytest.raises(ValueError, match="label"):
    data.cued_clip(jax.random.key(0), 10, num_frames=4)
  with pytest.raises(ValueError, match="num_classes"):
    data.cued_batch(jax.random.key(0), 2, num_classes=1)
