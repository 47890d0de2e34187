"""Streaming Jester/IsoGD loaders: clips decoded per batch from disk, a bounded prefetch buffer.

:func:`~jaxpapers.convlstm_attention.data.load_jester` and
:func:`~jaxpapers.convlstm_attention.data.load_isogd` read a whole split into one float32 array
(Jester train at 16×112×112×3 is ≈ 285 GB). A :class:`ClipStream` instead keeps only the file
list in memory and decodes the frames of each batch when it is needed, on ``num_workers``
threads, at most ``prefetch`` batches ahead of the consumer. Frames are held as uint8 (a quarter
of float32); ``dtype="float32"`` converts one batch at a time on the consumer side, to exactly
the values the whole-split loaders return.

Memory is bounded independently of the number of clips: at most ``prefetch`` batches are
allocated ahead of the consumer, plus the batch being handed over and the one the consumer still
holds, i.e. ``(prefetch + 2) × batch_size × T×H×W×3`` bytes of uint8; with ``dtype="float32"``,
``(prefetch + 1)`` uint8 batches and two float32 batches (:attr:`ClipStream.bound_bytes`).

Order: evaluation streams (``train=False``) visit every clip exactly once, in list order; the last
batch is zero-padded to ``batch_size`` and its padded rows have ``mask=False`` (labels 0), like
:func:`~jaxpapers.convlstm_attention.train.full_pass_eval`. Training streams (``train=True``)
visit a permutation that depends only on ``(seed, epoch)``, with the random temporal offsets and
crops of each clip drawn from a generator seeded by ``(seed, epoch, clip index)``, so an epoch is
reproducible whatever the thread scheduling. By default training streams drop the last partial
batch.
"""

from __future__ import annotations

import collections
import itertools
import os
import pathlib
import threading
import weakref
from collections.abc import Iterator, Sequence
from concurrent import futures
from typing import NamedTuple

import numpy as np

from jaxpapers.convlstm_attention import data

_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
_stream_ids = itertools.count()


class StreamBatch(NamedTuple):
  """One batch: ``clips [B, T, H, W, 3]`` (uint8 or float32 in [0, 1]), ``labels [B]`` int32,
  ``mask [B]`` bool (False on padded rows)."""

  clips: np.ndarray
  labels: np.ndarray
  mask: np.ndarray


class ClipDecodeError(RuntimeError):
  """A clip's frames could not be read; ``path`` is the folder or frame file that failed."""

  def __init__(self, path: str | os.PathLike, reason: str):
    self.path = pathlib.Path(path)
    super().__init__(f"{self.path}: {reason}")


def decode_clip(folder: str | os.PathLike, num_frames: int, size: int, *, train: bool = False,
                rng: np.random.Generator | None = None, out: np.ndarray | None = None
                ) -> np.ndarray:
  """Decodes ``num_frames`` frames of one frame folder as uint8 ``[T, size, size, 3]``.

  The same sampling, crop and resize as the whole-split loaders (``data._load_frames``), which
  return exactly this array ``/ 255`` as float32. Writes into ``out`` when given.

  Raises:
    ClipDecodeError: naming the folder (missing, no frames) or the frame file that failed.
  """
  from PIL import Image

  folder = pathlib.Path(folder)
  try:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FRAME_SUFFIXES)
  except OSError as e:
    raise ClipDecodeError(folder, f"cannot list frame folder ({e})") from e
  if not files:
    raise ClipDecodeError(folder, "no .jpg/.png frames in folder")
  idx = data.sample_frame_indices(len(files), num_frames, train=train, rng=rng)
  if out is None:
    out = np.empty((num_frames, size, size, 3), np.uint8)
  for t, i in enumerate(idx):
    path = files[i]
    try:
      with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)  # centre square crop (random in training), then resize
        if train and rng is not None:
          left = int(rng.integers(0, w - side + 1))
          top = int(rng.integers(0, h - side + 1))
        else:
          left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        out[t] = np.asarray(im, dtype=np.uint8)
    except Exception as e:  # PIL raises OSError, ValueError, SyntaxError, ... on bad files
      raise ClipDecodeError(path, f"cannot decode frame ({type(e).__name__}: {e})") from e
  return out


class ClipStream:
  """Batches of clips decoded per batch from frame folders, with a bounded prefetch buffer.

  Iterate with ``for batch in stream`` (successive calls give epochs 0, 1, 2, ...) or
  ``stream.epoch(e)``; one iteration at a time. Use as a context manager (or call
  :meth:`close`) so the decode threads are joined.

  Args:
    folders: one frame folder per clip.
    labels: one integer label per clip.
    batch_size: clips per batch.
    num_frames: frames sampled per clip (``T``).
    size: side of the square frames (``H = W``).
    train: random temporal offsets and crops, shuffled order per epoch.
    seed: seeds the order and the augmentation (with the epoch).
    prefetch: batches decoded ahead of the consumer (the buffer bound), ``>= 1``.
    num_workers: decode threads.
    dtype: ``"uint8"`` (0..255) or ``"float32"`` (in [0, 1], converted per batch).
    drop_remainder: drop the last partial batch; default: ``train``.
  """

  def __init__(self, folders: Sequence[str | os.PathLike], labels: Sequence[int], *,
               batch_size: int, num_frames: int = 16, size: int = 112, train: bool = False,
               seed: int = 0, prefetch: int = 4, num_workers: int = 4, dtype: str = "uint8",
               drop_remainder: bool | None = None):
    if len(folders) != len(labels):
      raise ValueError(f"got {len(folders)} folders but {len(labels)} labels")
    for name, value in (("batch_size", batch_size), ("num_frames", num_frames), ("size", size),
                        ("prefetch", prefetch), ("num_workers", num_workers)):
      if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if dtype not in ("uint8", "float32"):
      raise ValueError(f"dtype must be 'uint8' or 'float32', got {dtype!r}")
    self.folders = [pathlib.Path(f) for f in folders]
    self.labels = np.asarray(labels, np.int32).reshape(-1)
    self.batch_size, self.num_frames, self.size = int(batch_size), int(num_frames), int(size)
    self.train, self.seed, self.dtype = bool(train), int(seed), dtype
    self.prefetch, self.num_workers = int(prefetch), int(num_workers)
    self.drop_remainder = self.train if drop_remainder is None else bool(drop_remainder)
    self.thread_name_prefix = f"ClipStream-{next(_stream_ids)}"
    self._executor = futures.ThreadPoolExecutor(self.num_workers, self.thread_name_prefix)
    self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False,
                                       cancel_futures=True)
    self._lock = threading.Lock()
    self._active: weakref.ref | None = None
    self._closed = False
    self._next_epoch = 0
    self._ready_clips = 0
    self.max_ready_clips = 0  # most decoded clips waiting for the consumer at any time
    self.max_buffered_batches = 0  # most batches allocated ahead of the consumer at any time
    self.decoded_clips = 0
    self.yielded_batches = 0

  # --------------------------------------------------------------------------- sizes and order

  @property
  def num_clips(self) -> int:
    return len(self.folders)

  @property
  def clip_shape(self) -> tuple[int, int, int, int]:
    return (self.num_frames, self.size, self.size, 3)

  @property
  def bound_bytes(self) -> int:
    """Upper bound on the clip memory the stream holds (see the module docstring)."""
    batch = self.batch_size * int(np.prod(self.clip_shape))
    if self.dtype == "float32":  # uint8: the buffer and the batch being converted; float32: the
      return (self.prefetch + 1) * batch + 2 * 4 * batch  # new batch and the consumer's last one
    return (self.prefetch + 2) * batch

  def __len__(self) -> int:
    n, b = self.num_clips, self.batch_size
    return n // b if self.drop_remainder else -(-n // b)

  def order(self, epoch: int = 0) -> np.ndarray:
    """Clip indices in the order epoch ``epoch`` visits them (dropped remainder included)."""
    if not self.train:
      return np.arange(self.num_clips)
    return np.random.default_rng((self.seed, 0, int(epoch))).permutation(self.num_clips)

  def clip_rng(self, epoch: int, index: int) -> np.random.Generator | None:
    """The augmentation generator of clip ``index`` in epoch ``epoch`` (None when evaluating)."""
    if not self.train:
      return None
    return np.random.default_rng((self.seed, 1, int(epoch), int(index)))

  # --------------------------------------------------------------------------- iteration

  def __iter__(self) -> Iterator[StreamBatch]:
    epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
    return self.epoch(epoch)

  def epoch(self, epoch: int, start: int = 0) -> Iterator[StreamBatch]:
    """Iterates the batches of epoch ``epoch``, from batch ``start`` on (earlier batches are not
    decoded: a resumed run continues mid-epoch with exactly the batches it had not seen)."""
    if int(start) != start or not 0 <= start <= len(self):
      raise ValueError(f"start must be an int in [0, {len(self)}], got {start!r}")
    if self._closed:
      raise RuntimeError("the stream is closed")
    active = self._active() if self._active is not None else None
    if active is not None and active.gi_frame is not None:
      raise RuntimeError("another iteration of this stream is still running; finish or close it")
    gen = self._batches(int(epoch), int(start))
    self._active = weakref.ref(gen)
    return gen

  def _decode_into(self, out, slot, index, epoch):
    decode_clip(self.folders[index], self.num_frames, self.size, train=self.train,
                rng=self.clip_rng(epoch, index), out=out[slot])
    with self._lock:
      self.decoded_clips += 1
      self._ready_clips += 1
      self.max_ready_clips = max(self.max_ready_clips, self._ready_clips)

  def _batches(self, epoch: int, start: int = 0) -> Iterator[StreamBatch]:
    order = self.order(epoch)
    bs = self.batch_size
    chunks = (order[i:i + bs] for i in range(start * bs, len(self) * bs, bs))
    pending: collections.deque = collections.deque()

    def submit():
      idx = next(chunks, None)
      if idx is None:
        return
      clips = np.zeros((bs,) + self.clip_shape, np.uint8)
      labels = np.zeros((bs,), np.int32)
      labels[:len(idx)] = self.labels[idx]
      mask = np.arange(bs) < len(idx)
      futs = [self._executor.submit(self._decode_into, clips, slot, int(i), epoch)
              for slot, i in enumerate(idx)]
      pending.append((StreamBatch(clips, labels, mask), futs))
      self.max_buffered_batches = max(self.max_buffered_batches, len(pending))

    try:
      for _ in range(self.prefetch):
        submit()
      while pending:
        batch, futs = pending.popleft()
        for f in futs:
          f.result()  # re-raises a worker's ClipDecodeError here, in the consumer
        with self._lock:
          self._ready_clips -= len(futs)
        submit()
        self.yielded_batches += 1
        if self.dtype == "float32":  # one batch at a time; the uint8 batch is freed here
          clips = batch.clips.astype(np.float32)
          clips /= 255.0  # in place: the same float32 values as ``uint8_array / 255.0``
          batch = batch._replace(clips=clips)
          del clips
        yield batch
        del batch
    finally:
      for _, futs in pending:
        for f in futs:
          f.cancel()
      for _, futs in pending:  # let running decodes finish before the buffers go away
        futures.wait(futs)
      pending.clear()
      with self._lock:
        self._ready_clips = 0

  # --------------------------------------------------------------------------- cleanup

  def close(self) -> None:
    """Stops the running iteration (if any) and joins the decode threads. Idempotent."""
    if self._closed:
      return
    self._closed = True
    active = self._active() if self._active is not None else None
    if active is not None:
      active.close()
    self._executor.shutdown(wait=True, cancel_futures=True)
    self._finalizer.detach()

  def __enter__(self) -> ClipStream:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def threads(self) -> list[threading.Thread]:
    """The stream's live decode threads (empty after :meth:`close`)."""
    return [t for t in threading.enumerate()
            if t.name.startswith(self.thread_name_prefix + "_") and t.is_alive()]


def jester_stream(root: str | os.PathLike, split: str = "train", *, batch_size: int,
                  num_frames: int = 16, size: int = 112, limit: int | None = None,
                  train: bool = False, seed: int = 0, prefetch: int = 4, num_workers: int = 4,
                  dtype: str = "uint8", drop_remainder: bool | None = None) -> ClipStream:
  """A :class:`ClipStream` over a Jester layout (the one :func:`data.load_jester` reads).

  ``root/jester-v1-labels.csv``, ``root/jester-v1-<split>.csv`` (``id;Label``) and a folder of
  frames per video, ``root/20bn-jester-v1/<id>/00001.jpg`` (or ``root/<id>/``).
  """
  root = pathlib.Path(root)
  labels = data.read_jester_labels(root / "jester-v1-labels.csv")
  rows = data.read_jester_split(root / f"jester-v1-{split}.csv", labels)[:limit]
  frames_root = root / "20bn-jester-v1" if (root / "20bn-jester-v1").is_dir() else root
  return ClipStream([frames_root / vid for vid, _ in rows], [lab for _, lab in rows],
                    batch_size=batch_size, num_frames=num_frames, size=size, train=train,
                    seed=seed, prefetch=prefetch, num_workers=num_workers, dtype=dtype,
                    drop_remainder=drop_remainder)


def isogd_stream(root: str | os.PathLike, list_file: str = "train_list.txt", *,
                 batch_size: int, modality: str = "rgb", num_frames: int = 32, size: int = 112,
                 limit: int | None = None, train: bool = False, seed: int = 0, prefetch: int = 4,
                 num_workers: int = 4, dtype: str = "uint8", drop_remainder: bool | None = None
                 ) -> ClipStream:
  """A :class:`ClipStream` over an IsoGD layout (the one :func:`data.load_isogd` reads).

  Each ``.avi`` in ``root/<list_file>`` is read from its extracted frame folder (the path without
  ``.avi``); ``modality`` picks the RGB (``M_``) or depth (``K_``) stream. Labels are 0-based.
  """
  if modality not in ("rgb", "depth"):
    raise ValueError(f"modality must be 'rgb' or 'depth', got {modality!r}")
  root = pathlib.Path(root)
  rows = data.read_isogd_list(root / list_file)[:limit]
  folders = [root / pathlib.Path(rgb if modality == "rgb" else depth).with_suffix("")
             for rgb, depth, _ in rows]
  return ClipStream(folders, [r[2] for r in rows], batch_size=batch_size, num_frames=num_frames,
                    size=size, train=train, seed=seed, prefetch=prefetch,
                    num_workers=num_workers, dtype=dtype, drop_remainder=drop_remainder)
