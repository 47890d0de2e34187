"""Gesture data: a synthetic moving-sprite generator and loaders for Jester- and IsoGD-style layouts.

The synthetic generator keeps the property the paper's datasets test: the class is defined only by
the *temporal* pattern of a moving hand (sprite), so an order-free bag of frames cannot tell
time-reversed twin classes apart (swipe left/right, up/down, zoom in/out, rotate
clockwise/counter-clockwise), while clutter and a randomly moving distractor add nuisance motion. A
single frame sees only a pose: where the hand is and how large (like the first frame of a real
gesture, the start position hints at a swipe's direction), never the motion.
"""

from __future__ import annotations

import csv
import os
import pathlib
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

CLASSES = (
    "swipe_left", "swipe_right", "swipe_up", "swipe_down", "zoom_in", "zoom_out",
    "rotate_cw", "rotate_ccw", "shake", "none",
)
# Pairs of classes whose clips are each other's time reversal.
TWINS = ((0, 1), (2, 3), (4, 5), (6, 7))


class Clips(NamedTuple):
  """A batch of clips ``[B, T, H, W, 3]`` in [0, 1] and integer labels ``[B]``."""

  clips: jax.Array
  labels: jax.Array


# ----------------------------------------------------------------------------- synthetic


def _trajectory(key, label, t, size):
  """Per-frame sprite centre (x, y), scale and angle for one clip of class ``label``."""
  k1, k2, k3, k4 = jax.random.split(key, 4)
  s = jnp.linspace(0.0, 1.0, t)
  # A random onset/offset of the motion inside the clip, as real gestures do.
  start = jax.random.uniform(k1, (), minval=0.0, maxval=0.25)
  stop = start + jax.random.uniform(k2, (), minval=0.55, maxval=0.75)
  s = jnp.clip((s - start) / (stop - start), 0.0, 1.0)
  centre = jax.random.uniform(k3, (2,), minval=0.4 * size, maxval=0.6 * size)
  travel = 0.45 * size
  base_scale = 0.13 * size
  angle0 = jax.random.uniform(k4, (), minval=-np.pi, maxval=np.pi)
  zero, one = jnp.zeros_like(s), jnp.ones_like(s)
  shake = jnp.sin(2 * np.pi * 3 * s) * 0.15 * size
  # columns: dx, dy, scale multiplier, d-angle
  table = jnp.stack([
      jnp.stack([(0.5 - s) * travel, zero, one, zero], -1),  # swipe left
      jnp.stack([(s - 0.5) * travel, zero, one, zero], -1),  # swipe right
      jnp.stack([zero, (0.5 - s) * travel, one, zero], -1),  # swipe up
      jnp.stack([zero, (s - 0.5) * travel, one, zero], -1),  # swipe down
      jnp.stack([zero, zero, 0.55 + 0.9 * s, zero], -1),  # zoom in
      jnp.stack([zero, zero, 1.45 - 0.9 * s, zero], -1),  # zoom out
      jnp.stack([zero, zero, one, s * np.pi / 1.5], -1),  # rotate cw
      jnp.stack([zero, zero, one, -s * np.pi / 1.5], -1),  # rotate ccw
      jnp.stack([shake, zero, one, zero], -1),  # shake
      jnp.stack([zero, zero, one, zero], -1),  # none
  ])
  row = table[label]
  x = centre[0] + row[:, 0]
  y = centre[1] + row[:, 1]
  return x, y, base_scale * row[:, 2], angle0 + row[:, 3]


def _render_sprite(x, y, scale, angle, size, sharpness=3.0):
  """Soft L-shaped sprite (asymmetric, so rotations are visible) on a ``size×size`` grid."""
  grid = jnp.arange(size, dtype=jnp.float32) + 0.5
  gy, gx = jnp.meshgrid(grid, grid, indexing="ij")
  dx, dy = gx - x, gy - y
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  u = (cos * dx + sin * dy) / scale
  v = (-sin * dx + cos * dy) / scale

  def box(u0, u1, v0, v1):
    return (jax.nn.sigmoid(sharpness * (u - u0) * 4) * jax.nn.sigmoid(sharpness * (u1 - u) * 4)
            * jax.nn.sigmoid(sharpness * (v - v0) * 4) * jax.nn.sigmoid(sharpness * (v1 - v) * 4))

  return jnp.clip(box(-1.0, 1.0, -1.0, -0.35) + box(-1.0, -0.35, -1.0, 1.0), 0.0, 1.0)


def synthetic_clip(key: jax.Array, label, *, num_frames: int = 16, size: int = 32,
                   clutter: bool = True, distractor: bool = True, noise: float = 0.05) -> jax.Array:
  """One synthetic gesture clip ``[T, size, size, 3]`` in [0, 1] whose class is ``label``.

  ``label`` must lie in ``[0, len(CLASSES))`` (checked when concrete).
  """
  _check_clip_shape(num_frames, size)
  if not isinstance(label, jax.core.Tracer):
    lab = np.asarray(label)
    if lab.ndim or lab.dtype.kind not in "iu" or not 0 <= int(lab) < len(CLASSES):
      raise ValueError(f"label must be an int in [0, {len(CLASSES)}), got {label!r}")
  k_traj, k_col, k_bg, k_dis, k_noise = jax.random.split(key, 5)
  x, y, scale, angle = _trajectory(k_traj, label, num_frames, size)
  sprite = jax.vmap(lambda a, b, c, d: _render_sprite(a, b, c, d, size))(x, y, scale, angle)
  colour = jax.random.uniform(k_col, (3,), minval=0.6, maxval=1.0)
  frames = jnp.zeros((num_frames, size, size, 3))
  if clutter:  # a static low-frequency background texture
    coarse = jax.random.uniform(k_bg, (size // 8 + 1, size // 8 + 1, 3), maxval=0.35)
    bg = jax.image.resize(coarse, (size, size, 3), "linear")
    frames = frames + bg[None]
  if distractor:  # a small square doing a random walk, unrelated to the class
    kd1, kd2 = jax.random.split(k_dis)
    start = jax.random.uniform(kd1, (2,), minval=0.2 * size, maxval=0.8 * size)
    steps = jax.random.normal(kd2, (num_frames, 2)) * 0.04 * size
    path = jnp.clip(start + jnp.cumsum(steps, 0), 0.1 * size, 0.9 * size)
    dis = jax.vmap(lambda p: _render_sprite(p[0], p[1], 0.06 * size, 0.0, size))(path)
    frames = frames * (1 - dis[..., None]) + dis[..., None] * jnp.array([0.3, 0.3, 0.9])
  frames = frames * (1 - sprite[..., None]) + sprite[..., None] * colour
  frames = frames + noise * jax.random.normal(k_noise, frames.shape)
  return jnp.clip(frames, 0.0, 1.0)


def _check_clip_shape(num_frames, size):
  for name, v in (("num_frames", num_frames), ("size", size)):
    if not isinstance(v, (int, np.integer)) or v < 1:
      raise ValueError(f"{name} must be a positive int, got {v!r}")


def _check_batch_args(batch_size, num_frames, size, num_classes):
  if not 2 <= num_classes <= len(CLASSES):
    raise ValueError(f"num_classes must be in [2, {len(CLASSES)}], got {num_classes}")
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
  _check_clip_shape(num_frames, size)


def synthetic_batch(key: jax.Array, batch_size: int, *, num_frames: int = 16, size: int = 32,
                    num_classes: int = len(CLASSES), clutter: bool = True,
                    distractor: bool = True) -> Clips:
  """A batch of synthetic clips with uniformly drawn labels (vmapped :func:`synthetic_clip`)."""
  _check_batch_args(batch_size, num_frames, size, num_classes)
  k_lab, k_clip = jax.random.split(key)
  labels = jax.random.randint(k_lab, (batch_size,), 0, num_classes)
  keys = jax.random.split(k_clip, batch_size)
  clips = jax.vmap(lambda k, lab: synthetic_clip(k, lab, num_frames=num_frames, size=size,
                                                 clutter=clutter, distractor=distractor))(keys, labels)
  return Clips(clips, labels)


# ----------------------------------------------------------------------------- cued two-actor set


def _ring(x, y, radius, size, width=1.0):
  grid = jnp.arange(size, dtype=jnp.float32) + 0.5
  gy, gx = jnp.meshgrid(grid, grid, indexing="ij")
  r = jnp.sqrt((gx - x) ** 2 + (gy - y) ** 2)
  # full brightness within width − 0.5 of the radius, a half-pixel soft edge
  return jnp.clip((width - jnp.abs(r - radius)) / 0.5, 0.0, 1.0)


def cued_clip_parts(key: jax.Array, label, *, num_frames: int = 16, size: int = 32,
                    cue_frames: int = 2, clutter: bool = True, noise: float = 0.05):
  """:func:`cued_clip` plus its hidden variables: ``(clip, side, other_label)``.

  ``side`` is 0 when the cued (target) actor is in the left half, 1 in the right half;
  ``other_label`` is the class the uncued actor performs (never ``label``).
  """
  _check_clip_shape(num_frames, size)
  if not isinstance(cue_frames, (int, np.integer)) or not 1 <= cue_frames < num_frames:
    raise ValueError(f"cue_frames must be an int in [1, num_frames), got {cue_frames!r}")
  if not isinstance(label, jax.core.Tracer):
    lab = np.asarray(label)
    if lab.ndim or lab.dtype.kind not in "iu" or not 0 <= int(lab) < len(CLASSES):
      raise ValueError(f"label must be an int in [0, {len(CLASSES)}), got {label!r}")
  k_side, k_t, k_o, k_other, k_col, k_bg, k_noise = jax.random.split(key, 7)
  other = (label + jax.random.randint(k_other, (), 1, len(CLASSES))) % len(CLASSES)
  side = jax.random.bernoulli(k_side).astype(jnp.int32)
  half = size / 2

  def actor(k, lab, box_left):
    # the single-actor trajectory in a half-width box, vertically centred
    x, y, scale, angle = _trajectory(k, lab, num_frames, half)
    return x + box_left, y + size / 4, scale, angle

  target = actor(k_t, label, side * half)
  distract = actor(k_o, other, (1 - side) * half)
  render = jax.vmap(lambda a, b, c, d: _render_sprite(a, b, c, d, size))
  sprites = jnp.maximum(render(*target), render(*distract))
  colour = jax.random.uniform(k_col, (3,), minval=0.5, maxval=0.85)  # both actors alike
  frames = jnp.zeros((num_frames, size, size, 3))
  if clutter:
    coarse = jax.random.uniform(k_bg, (size // 8 + 1, size // 8 + 1, 3), maxval=0.35)
    frames = frames + jax.image.resize(coarse, (size, size, 3), "linear")[None]
  frames = frames * (1 - sprites[..., None]) + sprites[..., None] * colour
  # The cue: a white ring around the target's first position, shown only in the first frames.
  ring = _ring(target[0][0], target[1][0], 0.3 * half, size)
  shown = (jnp.arange(num_frames) < cue_frames).astype(frames.dtype)[:, None, None, None]
  frames = frames * (1 - shown * ring[..., None]) + shown * ring[..., None]
  frames = frames + noise * jax.random.normal(k_noise, frames.shape)
  return jnp.clip(frames, 0.0, 1.0), side, other


def cued_clip(key: jax.Array, label, *, num_frames: int = 16, size: int = 32,
              cue_frames: int = 2, clutter: bool = True, noise: float = 0.05) -> jax.Array:
  """A two-actor clip ``[T, size, size, 3]`` whose class is the *cued* actor's gesture.

  Two look-alike actors, one in each half of the frame, perform different gestures (the uncued one
  a uniformly drawn other class). A white ring around one of them in the first ``cue_frames``
  frames marks the target; afterwards nothing distinguishes them. The class is therefore defined
  by *where* the cue was: a model has to keep a location-specific memory from the first frames
  and integrate the motion there. Gates without spatial convolutions (variant (a): one gate value
  per channel for the whole frame) cannot select a location through the gates, while the
  single-actor set loses nothing to them; (a) keeps a spatially varying input path, so whether
  it is at a disadvantage here is an empirical question.
  """
  return cued_clip_parts(key, label, num_frames=num_frames, size=size, cue_frames=cue_frames,
                         clutter=clutter, noise=noise)[0]


def cued_batch(key: jax.Array, batch_size: int, *, num_frames: int = 16, size: int = 32,
               num_classes: int = len(CLASSES), cue_frames: int = 2,
               clutter: bool = True) -> Clips:
  """A batch of :func:`cued_clip` clips with uniformly drawn labels in ``[0, num_classes)``."""
  _check_batch_args(batch_size, num_frames, size, num_classes)
  k_lab, k_clip = jax.random.split(key)
  labels = jax.random.randint(k_lab, (batch_size,), 0, num_classes)
  keys = jax.random.split(k_clip, batch_size)
  clips = jax.vmap(lambda k, lab: cued_clip(k, lab, num_frames=num_frames, size=size,
                                            cue_frames=cue_frames, clutter=clutter))(keys, labels)
  return Clips(clips, labels)


# ----------------------------------------------------------------------------- frame sampling


def sample_frame_indices(num_available: int, num_frames: int, *, train: bool = False,
                         rng: np.random.Generator | None = None) -> np.ndarray:
  """Indices of ``num_frames`` frames from a video of ``num_available``.

  Uniform temporal sampling over the whole video (evenly spaced segment centres); in training a
  random offset inside each segment. Short videos repeat frames (their last frame pads).
  """
  if num_available < 1 or num_frames < 1:
    raise ValueError(f"need num_available >= 1 and num_frames >= 1, got {num_available}, {num_frames}")
  edges = np.linspace(0, num_available, num_frames + 1)
  if train:
    rng = rng or np.random.default_rng()
    idx = edges[:-1] + rng.uniform(size=num_frames) * (edges[1:] - edges[:-1])
  else:
    idx = (edges[:-1] + edges[1:]) / 2
  return np.clip(np.floor(idx).astype(np.int64), 0, num_available - 1)


def _load_frames(folder: pathlib.Path, num_frames: int, size: int, *, train: bool,
                 rng: np.random.Generator | None) -> np.ndarray:
  files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
  if not files:
    raise FileNotFoundError(f"no .jpg/.png frames in {folder}")
  idx = sample_frame_indices(len(files), num_frames, train=train, rng=rng)
  frames = []
  for i in idx:
    try:
      frames.append(_read_frame(files[i], size, train=train, rng=rng))
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for unreadable images
      raise ValueError(f"{files[i]}: cannot decode frame ({type(e).__name__}: {e})") from e
  return np.stack(frames)


def _read_frame(path: pathlib.Path, size: int, *, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
  from PIL import Image

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
    return np.asarray(im, dtype=np.float32) / 255.0


# ----------------------------------------------------------------------------- Jester


def read_jester_labels(path: str | os.PathLike) -> list[str]:
  """Label names, one per line (``jester-v1-labels.csv``)."""
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


def read_jester_split(path: str | os.PathLike, labels: Sequence[str] | None = None
                      ) -> list[tuple[str, int]]:
  """``(video_id, label_index)`` pairs from a ``;``-separated split list (``id;Label name``).

  The test split of Jester has no labels; those rows get label ``-1``.
  """
  index = {name: i for i, name in enumerate(labels or [])}
  rows = []
  with open(path, encoding="utf-8", newline="") as f:
    for rec in csv.reader(f, delimiter=";"):
      if not rec or not rec[0].strip():
        continue
      vid = rec[0].strip()
      if len(rec) > 1 and rec[1].strip():
        name = rec[1].strip()
        if name not in index:
          raise ValueError(f"{path}: unknown label {name!r} for video {vid}")
        rows.append((vid, index[name]))
      else:
        rows.append((vid, -1))
  return rows


def load_jester(root: str | os.PathLike, split: str = "train", *, num_frames: int = 16,
                size: int = 112, limit: int | None = None, train: bool = False,
                seed: int = 0) -> Clips:
  """Loads a Jester-style layout.

  Expects ``root/jester-v1-labels.csv``, ``root/jester-v1-<split>.csv`` and a folder of frames
  per video, ``root/20bn-jester-v1/<id>/00001.jpg`` (or ``root/<id>/``).
  """
  root = pathlib.Path(root)
  labels = read_jester_labels(root / "jester-v1-labels.csv")
  rows = read_jester_split(root / f"jester-v1-{split}.csv", labels)[:limit]
  frames_root = root / "20bn-jester-v1" if (root / "20bn-jester-v1").is_dir() else root
  rng = np.random.default_rng(seed)
  clips = [_load_frames(frames_root / vid, num_frames, size, train=train, rng=rng) for vid, _ in rows]
  return Clips(jnp.asarray(np.stack(clips)), jnp.asarray([lab for _, lab in rows], jnp.int32))


# ----------------------------------------------------------------------------- IsoGD


def read_isogd_list(path: str | os.PathLike) -> list[tuple[str, str, int]]:
  """``(rgb_path, depth_path, label)`` from an IsoGD list file (``M_x.avi K_x.avi label``).

  IsoGD labels are 1-based in the list files; they are returned 0-based. Lines without a label
  (the test list) get ``-1``.
  """
  rows = []
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      if len(parts) not in (2, 3):
        raise ValueError(f"{path}:{n}: expected 'rgb depth [label]', got {line.strip()!r}")
      label = int(parts[2]) - 1 if len(parts) == 3 else -1
      rows.append((parts[0], parts[1], label))
  return rows


def load_isogd(root: str | os.PathLike, list_file: str = "train_list.txt", *, modality: str = "rgb",
               num_frames: int = 32, size: int = 112, limit: int | None = None, train: bool = False,
               seed: int = 0) -> Clips:
  """Loads IsoGD-style videos whose frames were extracted next to each ``.avi``.

  The video ``root/train/001/M_00001.avi`` is read from the frame folder
  ``root/train/001/M_00001/`` (extract frames once, e.g. with ffmpeg); ``modality`` picks the
  RGB (``M_``) or depth (``K_``) stream.
  """
  if modality not in ("rgb", "depth"):
    raise ValueError(f"modality must be 'rgb' or 'depth', got {modality!r}")
  root = pathlib.Path(root)
  rows = read_isogd_list(root / list_file)[:limit]
  rng = np.random.default_rng(seed)
  clips = []
  for rgb, depth, _ in rows:
    rel = rgb if modality == "rgb" else depth
    folder = root / pathlib.Path(rel).with_suffix("")
    clips.append(_load_frames(folder, num_frames, size, train=train, rng=rng))
  return Clips(jnp.asarray(np.stack(clips)), jnp.asarray([r[2] for r in rows], jnp.int32))
