"""Gesture clips rendered from *real recorded motion*: the BasicMotions smart-watch recordings.

BasicMotions (UEA archive; shipped inside the ``aeon`` package's data, ``pip install
'jaxpapers[motion]'``) holds 80 ten-second recordings, at 10 Hz, of a watch's 3-D accelerometer
and 3-D gyroscope while four students stood, walked, ran and played badminton (40 train / 40 test
recordings, each person recorded several times). A clip here is that motion made visible: the
actor (the L-shaped sprite of :mod:`data`) moves with the recorded accelerometer — x and y
position from the x / y acceleration, size from z — and turns with the integrated z gyroscope,
over a random window of the recording; a distractor (a blue square) moves with *another*
recording; the background is cluttered and the frames noisy. The class is the recording's
activity, so a model has to read the actor's motion and ignore the distractor's. Train clips
come only from the train recordings and evaluation clips only from the test recordings, so the
held-out accuracy measures generalisation to motion never seen in training, not to fresh noise.

:func:`read_ts` reads the archive's ``.ts`` format (``@``-header, ``@data``, one recording per
line: the dimensions' comma-separated values separated by ``:``, the class label last).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.data import DatasetNotFoundError
from jaxpapers.convlstm_attention import data

NAME = "BasicMotions"
_ACC_SCALE = 8.0  # tanh(a / 8): the recordings' accelerations reach ±30 (badminton, running)
_GYRO_DT = 0.1  # 10 Hz
# normalize=True: each window's axes are standardised, with these floors on the standard
# deviation (m/s² and rad/s), so a near-still window (standing) stays near still instead of
# having its sensor noise blown up to the size of a stride.
_ACC_STD_FLOOR = 1.0
_GYRO_STD_FLOOR = 0.5
TEMPO_RANGE = (0.5, 2.0)  # normalize=True: the window's sampling step is stride × U_log[0.5, 2]
_NORMALIZED_STRIDE = 1  # normalize=True: 12 frames span 12 samples (1.2 s at tempo 1)


class Recordings(NamedTuple):
  """Equal-length multivariate recordings: ``series [N, dims, length]`` float32, ``labels [N]``
  int32 indices into ``classes`` (the file's ``@classLabel`` order)."""

  series: np.ndarray
  labels: np.ndarray
  classes: tuple[str, ...]


def read_ts(path: str | os.PathLike) -> Recordings:
  """Reads an equal-length, labelled ``.ts`` file; errors name the file and line."""
  path = pathlib.Path(path)
  try:
    lines = path.read_text(encoding="utf-8").splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f"{path}: cannot read ({type(e).__name__}: {e})") from e
  classes, in_data, rows, labels = None, False, [], []
  for no, raw in enumerate(lines, 1):
    line = raw.strip()
    if not line or line.startswith("#"):
      continue
    if not in_data:
      low = line.lower()
      if low.startswith("@classlabel"):
        parts = line.split()
        if len(parts) < 3 or parts[1].lower() != "true":
          raise ValueError(f"{path}:{no}: expected '@classLabel true <labels...>', got {line!r}")
        classes = tuple(parts[2:])
      elif low == "@data":
        in_data = True
      continue
    if classes is None:
      raise ValueError(f"{path}:{no}: @data before any '@classLabel true ...' line")
    *dims, label = line.split(":")
    if not dims:
      raise ValueError(f"{path}:{no}: expected '<values>:...:<label>', got {line[:60]!r}")
    if label not in classes:
      raise ValueError(f"{path}:{no}: label {label!r} is not one of {list(classes)}")
    try:
      values = [np.asarray([float(v) for v in d.split(",")], np.float32) for d in dims]
    except ValueError as e:
      raise ValueError(f"{path}:{no}: not a number ({e})") from e
    lengths = {v.size for v in values}
    if len(lengths) != 1 or (rows and (len(values), values[0].size) != rows[0].shape):
      raise ValueError(f"{path}:{no}: recordings must share one shape (dims × length); got "
                       f"{len(values)} × {sorted(lengths)}"
                       + (f", earlier {rows[0].shape}" if rows else ""))
    if not all(np.all(np.isfinite(v)) for v in values):
      raise ValueError(f"{path}:{no}: missing or non-finite values")
    rows.append(np.stack(values))
    labels.append(classes.index(label))
  if not rows:
    raise ValueError(f"{path}: no recordings after @data")
  return Recordings(np.stack(rows), np.asarray(labels, np.int32), classes)


def _aeon_data_dir() -> pathlib.Path | None:
  spec = importlib.util.find_spec("aeon")  # locates the package without importing it
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def find_file(split: str = "TRAIN", data_dir: str | os.PathLike | None = None,
              name: str = NAME) -> pathlib.Path:
  """``<name>_<split>.ts`` in ``data_dir`` (or its ``<name>/`` folder), else in aeon's data."""
  if split not in ("TRAIN", "TEST"):
    raise ValueError(f"split must be 'TRAIN' or 'TEST', got {split!r}")
  roots = [pathlib.Path(data_dir)] if data_dir else []
  aeon = _aeon_data_dir()
  roots += [aeon] if aeon is not None else []
  tried = []
  for root in roots:
    for cand in (root / name / f"{name}_{split}.ts", root / f"{name}_{split}.ts"):
      tried.append(str(cand))
      if cand.is_file():
        return cand
  raise DatasetNotFoundError(
      f"{name}_{split}.ts not found; searched {tried or 'nothing (no data_dir, aeon not installed)'}"
      ". Install the data with pip install 'jaxpapers[motion]' (aeon ships it) or pass data_dir")


def load(split: str = "TRAIN", data_dir: str | os.PathLike | None = None,
         name: str = NAME) -> Recordings:
  """The ``split`` recordings of ``name`` (see :func:`find_file`)."""
  return read_ts(find_file(split, data_dir, name))


def _standardise(v, floor):
  """``(v − mean) / max(std, floor)`` along the last axis (time)."""
  v = v - jnp.mean(v, -1, keepdims=True)
  return v / jnp.maximum(jnp.std(v, -1, keepdims=True), floor)


def _path(key, rec, num_frames, size, box_left, box_width, normalize=False):
  """Per-frame (x, y, scale, angle) of an actor driven by one recording ``[dims, length]``.

  ``normalize``: the window is played at a random tempo (:data:`TEMPO_RANGE`) and its
  accelerations and rotation rate are standardised per axis (floors :data:`_ACC_STD_FLOOR`,
  :data:`_GYRO_STD_FLOOR`), so walking, running and badminton move the actor by the same amount
  at overlapping rhythms and differ in the shape of the motion.
  """
  dims, length = rec.shape
  stride = max(1, (length // 2) // num_frames)  # a window over about half the recording
  k_start, k_tempo = jax.random.split(key)
  if normalize:
    # A random tempo: the window is played 1/TEMPO_RANGE[1] … 1/TEMPO_RANGE[0] times as fast
    # (linear interpolation between samples), so a fast walk and a slow run share a rhythm.
    tempo = jnp.exp(jax.random.uniform(k_tempo, (), minval=np.log(TEMPO_RANGE[0]),
                                       maxval=np.log(TEMPO_RANGE[1])))
    step = _NORMALIZED_STRIDE * tempo
    span = (num_frames - 1) * step
    start = jax.random.uniform(k_start, (), maxval=jnp.maximum(length - 1 - span, 0.0))
    t = jnp.minimum(start + step * jnp.arange(num_frames), length - 1)
    lo = jnp.floor(t).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, length - 1)
    w = t - lo
    window = rec[:, lo] * (1 - w) + rec[:, hi] * w
    gyro = window[min(5, dims - 1)] if dims > 3 else jnp.zeros((num_frames,))
    acc = jnp.tanh(0.5 * _standardise(window[:3], _ACC_STD_FLOOR))
    angle = jnp.cumsum(0.3 * _standardise(gyro, _GYRO_STD_FLOOR))
  else:
    span = (num_frames - 1) * stride + 1
    start = jax.random.randint(key, (), 0, max(1, length - span + 1))
    idx = start + stride * jnp.arange(num_frames)
    gyro = rec[min(5, dims - 1), idx] if dims > 3 else jnp.zeros((num_frames,))
    acc = jnp.tanh(rec[:3, idx] / _ACC_SCALE)  # [3, T] in (-1, 1)
    angle = jnp.cumsum(gyro * _GYRO_DT * stride)
  x = box_left + box_width * (0.5 + 0.3 * acc[0])
  y = size * (0.5 + 0.3 * acc[1])
  scale = 0.13 * size * (1.0 + 0.35 * acc[2])
  return x, y, scale, angle


def motion_clip(key: jax.Array, recording: jax.Array, other: jax.Array, *, num_frames: int = 12,
                size: int = 32, clutter: bool = True, noise: float = 0.05,
                normalize: bool = False) -> jax.Array:
  """One clip ``[T, size, size, 3]`` in [0, 1]: the actor moves with ``recording``
  (``[dims ≥ 3, length]``: accelerometer x, y, z first, then gyroscope), the distractor with
  ``other``; random windows, colours and clutter from ``key``. ``normalize``: both motions are
  amplitude-standardised per window (see :func:`_path`)."""
  data._check_clip_shape(num_frames, size)
  for name, r in (("recording", recording), ("other", other)):
    if r.ndim != 2 or r.shape[0] < 3:
      raise ValueError(f"{name} must be [dims >= 3, length], got shape {r.shape}")
  k_t, k_o, k_col, k_bg, k_noise = jax.random.split(key, 5)
  render = jax.vmap(lambda a, b, c, d: data._render_sprite(a, b, c, d, size))
  actor = render(*_path(k_t, recording, num_frames, size, 0.0, size, normalize))
  dx, dy, _, _ = _path(k_o, other, num_frames, size, 0.0, size, normalize)
  dis = jax.vmap(lambda a, b: data._render_sprite(a, b, 0.07 * size, 0.0, size))(dx, dy)
  frames = jnp.zeros((num_frames, size, size, 3))
  if clutter:
    coarse = jax.random.uniform(k_bg, (size // 8 + 1, size // 8 + 1, 3), maxval=0.35)
    frames = frames + jax.image.resize(coarse, (size, size, 3), "linear")[None]
  frames = frames * (1 - dis[..., None]) + dis[..., None] * jnp.array([0.3, 0.3, 0.9])
  colour = jax.random.uniform(k_col, (3,), minval=0.6, maxval=1.0)
  frames = frames * (1 - actor[..., None]) + actor[..., None] * colour
  frames = frames + noise * jax.random.normal(k_noise, frames.shape)
  return jnp.clip(frames, 0.0, 1.0)


def motion_batch(key: jax.Array, recordings: Recordings, batch_size: int, *, num_frames: int = 12,
                 size: int = 32, clutter: bool = True, normalize: bool = False) -> data.Clips:
  """A batch: recordings drawn uniformly (with replacement), each clip's distractor another
  recording of the same set; labels are the drawn recordings' classes."""
  n = recordings.series.shape[0]
  if n < 2:
    raise ValueError(f"recordings must hold at least 2 recordings (actor and distractor), got {n}")
  data._check_batch_args(batch_size, num_frames, size, len(recordings.classes))
  series = jnp.asarray(recordings.series, jnp.float32)
  k_i, k_j, k_c = jax.random.split(key, 3)
  i = jax.random.randint(k_i, (batch_size,), 0, n)
  j = (i + jax.random.randint(k_j, (batch_size,), 1, n)) % n  # never the actor's own recording
  clips = jax.vmap(lambda k, a, b: motion_clip(k, series[a], series[b], num_frames=num_frames,
                                               size=size, clutter=clutter,
                                               normalize=normalize))(
      jax.random.split(k_c, batch_size), i, j)
  return data.Clips(clips, jnp.asarray(recordings.labels)[i])
