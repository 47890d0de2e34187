"""Gesture data: the synthetic generator's temporal structure and the Jester/IsoGD loaders."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxpapers.convlstm_attention import data


def _centroid_track(label, key=0):
  clip = data.synthetic_clip(jax.random.key(key), label, num_frames=12, size=32, clutter=False,
                             distractor=False, noise=0.0)
  mass = clip.sum(-1)
  grid = jnp.arange(32) + 0.5
  x = (mass.sum(1) * grid).sum(-1) / mass.sum((1, 2))
  y = (mass.sum(2) * grid).sum(-1) / mass.sum((1, 2))
  return np.asarray(x), np.asarray(y), np.asarray(mass.sum((1, 2)))


def test_synthetic_classes_move_as_named_and_twins_reverse():
  x, _, _ = _centroid_track(0)
  assert x[-1] < x[0] - 5  # swipe left
  x, _, _ = _centroid_track(1)
  assert x[-1] > x[0] + 5  # swipe right
  _, y, _ = _centroid_track(2)
  assert y[-1] < y[0] - 5  # swipe up
  _, y, _ = _centroid_track(3)
  assert y[-1] > y[0] + 5  # swipe down
  _, _, m = _centroid_track(4)
  assert m[-1] > 2 * m[0]  # zoom in grows
  _, _, m = _centroid_track(5)
  assert m[0] > 2 * m[-1]  # zoom out shrinks
  x, y, m = _centroid_track(9)
  assert np.ptp(x) < 1e-3 and np.ptp(y) < 1e-3 and np.ptp(m) < 1e-3  # none


def test_synthetic_batch_is_deterministic_and_in_range():
  a = data.synthetic_batch(jax.random.key(0), 6, num_frames=4, size=16)
  b = data.synthetic_batch(jax.random.key(0), 6, num_frames=4, size=16)
  np.testing.assert_array_equal(a.clips, b.clips)
  assert a.clips.shape == (6, 4, 16, 16, 3) and a.labels.shape == (6,)
  assert float(a.clips.min()) >= 0 and float(a.clips.max()) <= 1
  labels = data.synthetic_batch(jax.random.key(1), 2000, num_frames=2, size=8, num_classes=4).labels
  counts = np.bincount(np.asarray(labels), minlength=4)
  assert len(counts) == 4 and counts.min() > 400
  with pytest.raises(ValueError, match="num_classes"):
    data.synthetic_batch(jax.random.key(0), 2, num_classes=11)


def test_frame_sampling():
  np.testing.assert_array_equal(data.sample_frame_indices(32, 4), [4, 12, 20, 28])
  np.testing.assert_array_equal(data.sample_frame_indices(3, 6), [0, 0, 1, 1, 2, 2])
  idx = data.sample_frame_indices(40, 8, train=True, rng=np.random.default_rng(0))
  assert np.all((idx >= np.arange(8) * 5) & (idx < np.arange(1, 9) * 5))
  with pytest.raises(ValueError, match="num_frames"):
    data.sample_frame_indices(3, 0)


def _write_frames(folder, n, value_fn, size=(20, 14)):
  folder.mkdir(parents=True)
  for t in range(n):
    arr = np.full((size[1], size[0], 3), value_fn(t), np.uint8)
    Image.fromarray(arr).save(folder / f"{t + 1:05d}.png")


def test_jester_layout_loader(tmp_path):
  (tmp_path / "jester-v1-labels.csv").write_text("Swiping Left\nSwiping Right\nNo gesture\n")
  (tmp_path / "jester-v1-train.csv").write_text("101;Swiping Right\n102;No gesture\n")
  (tmp_path / "jester-v1-test.csv").write_text("103\n")
  for vid in ("101", "102", "103"):
    _write_frames(tmp_path / "20bn-jester-v1" / vid, 10, lambda t: 20 * t)
  clips = data.load_jester(tmp_path, "train", num_frames=5, size=8)
  assert clips.clips.shape == (2, 5, 8, 8, 3)
  np.testing.assert_array_equal(clips.labels, [1, 2])
  # uniform sampling of 5 of 10 frames picks frames 1, 3, 5, 7, 9 → values 20, 60, ..., 180
  np.testing.assert_allclose(clips.clips[0, :, 0, 0, 0], np.array([20, 60, 100, 140, 180]) / 255,
                             atol=1e-6)
  test = data.load_jester(tmp_path, "test", num_frames=2, size=4)
  np.testing.assert_array_equal(test.labels, [-1])
  (tmp_path / "jester-v1-validation.csv").write_text("101;Waving\n")
  with pytest.raises(ValueError, match="unknown label 'Waving'"):
    data.load_jester(tmp_path, "validation")


def test_isogd_layout_loader(tmp_path):
  (tmp_path / "train_list.txt").write_text(
      "train/001/M_00001.avi train/001/K_00001.avi 5\ntrain/001/M_00002.avi train/001/K_00002.avi 249\n")
  for i in (1, 2):
    _write_frames(tmp_path / "train" / "001" / f"M_0000{i}", 6, lambda t, i=i: 10 * i)
    _write_frames(tmp_path / "train" / "001" / f"K_0000{i}", 6, lambda t, i=i: 100 + i)
  rgb = data.load_isogd(tmp_path, "train_list.txt", num_frames=3, size=4)
  assert rgb.clips.shape == (2, 3, 4, 4, 3)
  np.testing.assert_array_equal(rgb.labels, [4, 248])  # 1-based in the list files
  np.testing.assert_allclose(rgb.clips[1].max(), 20 / 255, atol=1e-6)
  depth = data.load_isogd(tmp_path, "train_list.txt", modality="depth", num_frames=3, size=4)
  np.testing.assert_allclose(depth.clips[0].min(), 101 / 255, atol=1e-6)
  with pytest.raises(ValueError, match="modality"):
    data.load_isogd(tmp_path, modality="flow")
  (tmp_path / "bad_list.txt").write_text("only_one_field\n")
  with pytest.raises(ValueError, match="expected 'rgb depth"):
    data.read_isogd_list(tmp_path / "bad_list.txt")
