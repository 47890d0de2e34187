"""Clips from recorded motion: the .ts reader (on files the test writes), rendering, splits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.convlstm_attention import config as config_lib
from jaxpapers.convlstm_attention import motion, train

_CLASSES = ("Standing", "Running", "Walking", "Badminton")


def _write_ts(path, labels, length=40, dims=6, seed=0):
  rng = np.random.default_rng(seed)
  series = rng.normal(0, 5, (len(labels), dims, length)).round(4)
  lines = ["#a comment", "@problemName BasicMotions", "@univariate false", f"@dimensions {dims}",
           "@equalLength true", f"@seriesLength {length}",
           "@classLabel true " + " ".join(_CLASSES), "@data"]
  for s, lab in zip(series, labels):
    lines.append(":".join(",".join(f"{v:g}" for v in d) for d in s) + f":{lab}")
  path.write_text("\n".join(lines) + "\n")
  return series


@pytest.fixture()
def motion_dir(tmp_path):
  folder = tmp_path / "BasicMotions"
  folder.mkdir()
  train_labels = [c for c in _CLASSES for _ in range(2)]
  s = _write_ts(folder / "BasicMotions_TRAIN.ts", train_labels)
  _write_ts(folder / "BasicMotions_TEST.ts", ["Walking", "Walking", "Walking"], seed=1)
  return tmp_path, s, train_labels


def test_read_ts_returns_the_written_values_and_labels(motion_dir):
  root, series, labels = motion_dir
  rec = motion.load("TRAIN", root)
  assert rec.classes == _CLASSES and rec.series.shape == (8, 6, 40)
  np.testing.assert_allclose(rec.series, series, rtol=1e-6)
  assert [rec.classes[i] for i in rec.labels] == labels


def test_read_ts_errors_name_the_file_and_line(tmp_path):
  bad = tmp_path / "x.ts"
  bad.write_text("@classLabel true A B\n@data\n1,2,3:4,5,6:A\n1,2:3,4:B\n")
  with pytest.raises(ValueError, match=r"x.ts:4: recordings must share one shape"):
    motion.read_ts(bad)
  bad.write_text("@classLabel true A B\n@data\n1,2,3:C\n")
  with pytest.raises(ValueError, match=r"x.ts:3: label 'C' is not one of"):
    motion.read_ts(bad)
  bad.write_text("@classLabel true A B\n@data\n1,?,3:A\n")
  with pytest.raises(ValueError, match=r"x.ts:3: not a number"):
    motion.read_ts(bad)
  bad.write_text("@data\n1,2:A\n")
  with pytest.raises(ValueError, match=r"x.ts:2: @data before any '@classLabel"):
    motion.read_ts(bad)
  with pytest.raises(FileNotFoundError, match="BasicMotions_TEST.ts not found; searched"):
    motion.find_file("TEST", tmp_path / "nowhere")
  with pytest.raises(ValueError, match="split must be"):
    motion.find_file("VALID", tmp_path)


def test_clips_follow_the_recording_and_stay_in_range(motion_dir):
  root, _, _ = motion_dir
  rec = motion.load("TRAIN", root)
  s = jnp.asarray(rec.series)
  key = jax.random.key(0)
  c0 = motion.motion_clip(key, s[0], s[1], num_frames=6, size=16)
  assert c0.shape == (6, 16, 16, 3) and float(c0.min()) >= 0.0 and float(c0.max()) <= 1.0
  np.testing.assert_array_equal(c0, motion.motion_clip(key, s[0], s[1], num_frames=6, size=16))
  # Same key (window, colours, clutter, noise), another recording for the actor: another clip.
  c2 = motion.motion_clip(key, s[2], s[1], num_frames=6, size=16)
  assert float(jnp.abs(c0 - c2).max()) > 0.1
  with pytest.raises(ValueError, match="recording must be"):
    motion.motion_clip(key, s[0, :2], s[1], num_frames=6, size=16)


def test_normalized_motion_hides_amplitude_and_keeps_still_windows_still(motion_dir):
  # normalize=True: a recording and the same recording 4× louder (both above the floors) give
  # the same clip, so the class cannot be read from how far the actor moves; without it they
  # differ. A window whose spread is below the floor stays small (a standing person stays still).
  root, _, _ = motion_dir
  s = jnp.asarray(motion.load("TRAIN", root).series)  # N(0, 5²) values: above both floors
  key = jax.random.key(3)
  clip = lambda r, norm: motion.motion_clip(key, r, s[1], num_frames=6, size=16, normalize=norm)
  np.testing.assert_allclose(clip(4.0 * s[0], True), clip(s[0], True), atol=1e-5)
  assert float(jnp.abs(clip(4.0 * s[0], False) - clip(s[0], False)).max()) > 0.1
  x, y, scale, angle = motion._path(key, 0.01 * s[0], 6, 16, 0.0, 16, True)
  still = motion._path(key, 0.0 * s[0], 6, 16, 0.0, 16, True)
  for moved, rest in zip((x, y, scale), still[:3]):
    assert float(jnp.abs(moved - rest).max()) < 0.05 * 16
  # the floors are what keep it still: without them the tiny window would fill the range
  big = motion._path(key, s[0], 6, 16, 0.0, 16, True)
  assert float(jnp.ptp(big[0])) > 10 * float(jnp.ptp(x))


def test_train_clips_come_from_train_recordings_and_eval_clips_from_test(motion_dir):
  root, _, _ = motion_dir
  cfg = config_lib.get_config("smoke")
  cfg.dataset, cfg.data_dir, cfg.num_classes = "recorded_motion", str(root), 4
  tr = train.batch_fn(cfg)(jax.random.key(1))
  ev = train.batch_fn(cfg, split="test")(jax.random.key(1))
  assert tr.clips.shape == (cfg.batch_size, cfg.num_frames, cfg.size, cfg.size, 3)
  assert set(np.asarray(ev.labels).tolist()) == {_CLASSES.index("Walking")}  # the test file's
  batch = motion.motion_batch(jax.random.key(2), motion.load("TRAIN", root), 64, num_frames=4,
                              size=8)
  assert len(set(np.asarray(batch.labels).tolist())) == 4  # every train class drawn
  cfg.num_classes = 10
  with pytest.raises(ValueError, match="num_classes must be 4 for recorded_motion"):
    train.batch_fn(cfg)


def test_train_and_evaluate_runs_on_recorded_motion(motion_dir, tmp_path):
  root, _, _ = motion_dir
  cfg = config_lib.get_config("smoke")
  cfg.dataset, cfg.data_dir, cfg.num_classes = "recorded_motion", str(root), 4
  out = train.train_and_evaluate(cfg, str(tmp_path / "w"))
  assert 0.0 <= out["a"]["mean_accuracy"] <= 1.0
