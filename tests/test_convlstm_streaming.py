"""Streaming Jester/IsoGD loaders: same clips as the whole-split loaders, order, errors, buffer
bound and thread cleanup, on small files written here in the real layouts."""

import time

import numpy as np
import pytest
from PIL import Image

from jaxpapers.convlstm_attention import data, streaming

_LABELS = ("Swiping Left", "Swiping Right", "No gesture")


def _write_frames(folder, n, seed, size=(22, 14), suffix=".jpg"):
  """``n`` frames ``00001.jpg ...`` of a non-square (W×H) image, content varying per frame."""
  folder.mkdir(parents=True)
  rng = np.random.default_rng(seed)
  for t in range(n):
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(folder / f"{t + 1:05d}{suffix}")


def _jester(root, num_videos=7, frames=(9, 6, 12, 4, 10, 8, 7)):
  (root / "jester-v1-labels.csv").write_text("".join(f"{x}\n" for x in _LABELS))
  rows = [(str(100 + v), _LABELS[v % 3]) for v in range(num_videos)]
  (root / "jester-v1-validation.csv").write_text("".join(f"{v};{lab}\n" for v, lab in rows))
  (root / "jester-v1-test.csv").write_text("".join(f"{v}\n" for v, _ in rows[:3]))
  for v, (vid, _) in enumerate(rows):
    _write_frames(root / "20bn-jester-v1" / vid, frames[v % len(frames)], seed=v)
  return rows


def _isogd(root):
  lines = []
  for i, lab in ((1, 5), (2, 249), (3, 17)):
    for prefix in ("M", "K"):
      _write_frames(root / "train" / "001" / f"{prefix}_0000{i}", 5 + i, seed=10 * i + len(prefix),
                    suffix=".png")
    lines.append(f"train/001/M_0000{i}.avi train/001/K_0000{i}.avi {lab}\n")
  (root / "train_list.txt").write_text("".join(lines))


def _collect(stream, epoch=0):
  batches = list(stream.epoch(epoch))
  clips = np.concatenate([b.clips for b in batches])
  labels = np.concatenate([b.labels for b in batches])
  mask = np.concatenate([b.mask for b in batches])
  return batches, clips, labels, mask


def test_jester_stream_matches_whole_split_loader(tmp_path):
  _jester(tmp_path)
  ref = data.load_jester(tmp_path, "validation", num_frames=5, size=8)
  with streaming.jester_stream(tmp_path, "validation", batch_size=3, num_frames=5, size=8,
                               dtype="float32", num_workers=2, prefetch=2) as s:
    assert len(s) == 3
    _, clips, labels, mask = _collect(s)
  assert clips.dtype == np.float32 and labels.dtype == np.int32
  np.testing.assert_array_equal(clips[mask], np.asarray(ref.clips))  # bitwise, not allclose
  np.testing.assert_array_equal(labels[mask], np.asarray(ref.labels))
  with streaming.jester_stream(tmp_path, "validation", batch_size=4, num_frames=5, size=8) as s:
    _, raw, _, mask = _collect(s)
  assert raw.dtype == np.uint8
  np.testing.assert_array_equal(raw[mask].astype(np.float32) / 255.0, np.asarray(ref.clips))
  with streaming.jester_stream(tmp_path, "test", batch_size=2, num_frames=2, size=4) as s:
    _, _, labels, mask = _collect(s)
  np.testing.assert_array_equal(labels[mask], [-1, -1, -1])


def test_isogd_stream_matches_whole_split_loader(tmp_path):
  _isogd(tmp_path)
  for modality in ("rgb", "depth"):
    ref = data.load_isogd(tmp_path, "train_list.txt", modality=modality, num_frames=4, size=6)
    with streaming.isogd_stream(tmp_path, "train_list.txt", modality=modality, batch_size=2,
                                num_frames=4, size=6, dtype="float32") as s:
      _, clips, labels, mask = _collect(s)
    np.testing.assert_array_equal(clips[mask], np.asarray(ref.clips))
    np.testing.assert_array_equal(labels[mask], [4, 248, 16])
  with pytest.raises(ValueError, match="modality"):
    streaming.isogd_stream(tmp_path, batch_size=2, modality="flow")


def test_eval_order_every_clip_once_padded_batch_masked(tmp_path):
  rows = _jester(tmp_path)
  with streaming.jester_stream(tmp_path, "validation", batch_size=3, num_frames=3,
                               size=4) as s:
    batches, clips, labels, mask = _collect(s)
    assert len(batches) == len(s) == 3
    assert all(b.clips.shape == (3, 3, 4, 4, 3) for b in batches)
    np.testing.assert_array_equal(mask, [True] * 7 + [False] * 2)
    np.testing.assert_array_equal(labels[:7], [_LABELS.index(lab) for _, lab in rows])
    assert not clips[7:].any() and not labels[7:].any()  # padding is zeros
    np.testing.assert_array_equal(s.order(0), np.arange(7))
    _, again, _, _ = _collect(s, epoch=5)  # evaluation ignores the epoch
    np.testing.assert_array_equal(again, clips)


def test_train_order_is_seeded_permutation_and_reproducible(tmp_path):
  _jester(tmp_path)
  kw = dict(batch_size=2, num_frames=3, size=4, train=True, num_workers=2)
  with streaming.jester_stream(tmp_path, "validation", seed=1, **kw) as s:
    assert len(s) == 3 and s.drop_remainder  # 7 clips, remainder dropped
    orders = [s.order(e) for e in range(4)]
    for o in orders:
      np.testing.assert_array_equal(np.sort(o), np.arange(7))
    assert len({tuple(o) for o in orders}) > 1  # depends on the epoch
    first = [_collect(s, e) for e in (0, 1)]
    by_iter = [np.concatenate([b.clips for b in s]) for _ in range(2)]  # epochs 0, 1
    # labels follow the epoch's permutation
    np.testing.assert_array_equal(first[0][2], s.labels[orders[0][:6]])
    # augmentation: clip i of the epoch is the whole-split decoder with the clip's generator
    i = int(orders[1][0])
    expect = data._load_frames(s.folders[i], 3, 4, train=True, rng=s.clip_rng(1, i))
    np.testing.assert_array_equal(first[1][1][0].astype(np.float32) / 255.0, expect)
  with streaming.jester_stream(tmp_path, "validation", seed=1, **kw) as s2:
    for e in (0, 1):
      again = _collect(s2, e)
      np.testing.assert_array_equal(again[1], first[e][1])
      np.testing.assert_array_equal(again[2], first[e][2])
      np.testing.assert_array_equal(by_iter[e], first[e][1])
  with streaming.jester_stream(tmp_path, "validation", seed=2, **kw) as s3:
    assert any(not np.array_equal(s3.order(e), orders[e]) for e in range(4))


def test_corrupt_or_missing_frames_raise_naming_the_path(tmp_path):
  _jester(tmp_path)
  bad = tmp_path / "20bn-jester-v1" / "104" / "00002.jpg"
  bad.write_bytes(b"not a jpeg at all")
  with streaming.jester_stream(tmp_path, "validation", batch_size=2, num_frames=4, size=4,
                               prefetch=3) as s:
    it = iter(s)
    next(it)
    next(it)  # clips 0-3 are fine
    with pytest.raises(streaming.ClipDecodeError, match="00002.jpg") as err:
      next(it)  # clip 4 ("104") fails, raised here in the consumer
    assert err.value.path == bad
  truncated = tmp_path / "20bn-jester-v1" / "104" / "00002.jpg"
  good = (tmp_path / "20bn-jester-v1" / "104" / "00001.jpg").read_bytes()
  truncated.write_bytes(good[:len(good) // 2])
  with streaming.jester_stream(tmp_path, "validation", batch_size=8, num_frames=4, size=4) as s:
    with pytest.raises(streaming.ClipDecodeError, match=r"104.00002\.jpg"):
      list(s)
  missing = tmp_path / "20bn-jester-v1" / "102"
  for f in missing.iterdir():
    f.unlink()
  missing.rmdir()
  with streaming.jester_stream(tmp_path, "validation", batch_size=8, num_frames=4, size=4) as s:
    with pytest.raises(streaming.ClipDecodeError, match="102") as err:
      list(s)
    assert err.value.path == missing
  assert not s.threads()


def test_buffer_is_bounded_with_a_slow_consumer(tmp_path):
  _jester(tmp_path, num_videos=24, frames=(4,))
  prefetch, bs = 2, 3
  with streaming.jester_stream(tmp_path, "validation", batch_size=bs, num_frames=4, size=8,
                               prefetch=prefetch, num_workers=3) as s:
    seen = 0
    for batch in s:
      time.sleep(0.05)  # decoding is much faster: the workers fill the buffer and wait
      seen += int(batch.mask.sum())
    assert seen == 24 and s.yielded_batches == len(s) == 8 and s.decoded_clips == 24
    assert s.max_buffered_batches == prefetch
    assert s.max_ready_clips == prefetch * bs  # reached, never exceeded
    assert s.bound_bytes == (prefetch + 2) * bs * 4 * 8 * 8 * 3


def test_threads_are_joined_on_close_and_context_exit(tmp_path):
  _jester(tmp_path)
  s = streaming.jester_stream(tmp_path, "validation", batch_size=2, num_frames=3, size=4,
                              num_workers=3)
  it = iter(s)
  next(it)
  assert s.threads()
  with pytest.raises(RuntimeError, match="still running"):
    iter(s)
  s.close()
  assert not s.threads()
  with pytest.raises(StopIteration):
    next(it)  # close() also ended the running iteration
  s.close()  # idempotent
  with pytest.raises(RuntimeError, match="closed"):
    iter(s)
  with streaming.jester_stream(tmp_path, "validation", batch_size=2, num_frames=3, size=4) as s:
    for _ in s:
      break  # leaving mid-epoch
    for _ in s:  # the abandoned iteration is gone; a new one may start
      pass
    assert s.threads()
  assert not s.threads()
  with pytest.raises(ValueError, match="prefetch"):
    streaming.ClipStream([], [], batch_size=2, prefetch=0)


def test_whole_split_loader_names_an_undecodable_frame(tmp_path):
  from jaxpapers.convlstm_attention import data as data_lib

  folder = tmp_path / "clip"
  folder.mkdir()
  (folder / "00001.jpg").write_bytes(b"not a jpeg")
  with pytest.raises(ValueError, match="00001.jpg"):
    data_lib._load_frames(folder, 4, 8, train=False, rng=None)  # noqa: SLF001
