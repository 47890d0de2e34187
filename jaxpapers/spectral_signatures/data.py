"""Data for the spectral-signature experiments: CIFAR-10 in its released formats, digits, synthetic.

* :func:`load_cifar10_pickle` — the official "python version" (``data_batch_1`` … ``data_batch_5``,
  ``test_batch``: pickled dicts with ``b"data"`` ``(N, 3072)`` uint8 rows in channel-major order
  and ``b"labels"``).
* :func:`load_cifar10_binary` — the official binary version (``data_batch_1.bin`` …,
  ``test_batch.bin``: records of 1 label byte + 3072 pixel bytes, channel-major).
* :func:`load_image_folder` — ``<root>/<split>/<class name>/<file>.{jpg,png}`` as a folder or a
  (gzipped) tar, e.g. the JPEG copy in ``shared/data/cifar10-jpeg``.
* :func:`load_cifar10` — finds whichever of the three is available.
* :func:`load_digits` — scikit-learn's 8×8 digits, always available (the CPU-scale default).
* :func:`gaussian_mixture_reps` — synthetic "representations" with planted poisons.

Images are returned as ``(N, H, W, C)`` float32 in ``[0, 1]`` with int32 labels.
"""

from __future__ import annotations

import functools
import io
import os
import pathlib
import pickle
import tarfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.data import DatasetNotFoundError, find_dataset

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SPLITS = ("train", "test")


class Split(NamedTuple):
  """Images ``(N, H, W, C)`` float32 in [0, 1] and labels ``(N,)`` int32."""

  images: np.ndarray
  labels: np.ndarray


class Dataset(NamedTuple):
  train: Split
  test: Split
  num_classes: int
  name: str


def _check_split(split):
  if split not in _SPLITS:
    raise ValueError(f"split must be one of {list(_SPLITS)}, got {split!r}")


def _batch_names(split, suffix=""):
  return [f"data_batch_{i}{suffix}" for i in range(1, 6)] if split == "train" else [
      f"test_batch{suffix}"]


def _resolve(folder, names, sub):
  folder = pathlib.Path(folder)
  for cand in (folder, folder / sub):
    if all((cand / n).exists() for n in names):
      return cand
  raise DatasetNotFoundError(f"no {', '.join(names)} in {folder} or {folder / sub}")


def _rows_to_images(rows):
  rows = np.asarray(rows, dtype=np.uint8)
  if rows.ndim != 2 or rows.shape[1] != 3072:
    raise ValueError(f"CIFAR-10 rows must have 3072 bytes each, got shape {rows.shape}")
  return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _finish(images_u8, labels, limit_per_class):
  labels = np.asarray(labels, np.int64)
  if limit_per_class is not None:
    keep = np.concatenate([np.flatnonzero(labels == c)[:limit_per_class]
                           for c in np.unique(labels)]) if labels.size else np.zeros(0, int)
    keep.sort()
    images_u8, labels = images_u8[keep], labels[keep]
  return Split(images_u8.astype(np.float32) / 255.0, labels.astype(np.int32))


def load_cifar10_pickle(folder: str | os.PathLike, split: str = "train", *,
                        limit_per_class: int | None = None) -> Split:
  """Loads the official CIFAR-10 python-pickle batches from ``folder`` (or its
  ``cifar-10-batches-py/``).

  Args:
    folder: directory holding ``data_batch_{1..5}`` and ``test_batch``.
    split: ``"train"`` or ``"test"``.
    limit_per_class: keep only the first this-many images of each class (file order).
  """
  _check_split(split)
  names = _batch_names(split)
  base = _resolve(folder, names, "cifar-10-batches-py")
  images, labels = [], []
  for name in names:
    with open(base / name, "rb") as f:
      batch = pickle.load(f, encoding="bytes")
    if b"data" not in batch or b"labels" not in batch:
      raise ValueError(f"{base / name} is not a CIFAR-10 batch (keys {list(batch)})")
    images.append(_rows_to_images(batch[b"data"]))
    labels.append(np.asarray(batch[b"labels"]))
  return _finish(np.concatenate(images), np.concatenate(labels), limit_per_class)


def load_cifar10_binary(folder: str | os.PathLike, split: str = "train", *,
                        limit_per_class: int | None = None) -> Split:
  """Loads the official CIFAR-10 binary batches (``*.bin``, 3073-byte records) from ``folder``
  (or its ``cifar-10-batches-bin/``)."""
  _check_split(split)
  names = _batch_names(split, ".bin")
  base = _resolve(folder, names, "cifar-10-batches-bin")
  images, labels = [], []
  for name in names:
    raw = np.fromfile(base / name, dtype=np.uint8)
    if raw.size % 3073:
      raise ValueError(f"{base / name} has {raw.size} bytes, not a multiple of 3073")
    rec = raw.reshape(-1, 3073)
    labels.append(rec[:, 0])
    images.append(_rows_to_images(rec[:, 1:]))
  labels = np.concatenate(labels)
  if labels.size and labels.max() > 9:
    raise ValueError(f"label byte {labels.max()} out of range in {base}")
  return _finish(np.concatenate(images), labels, limit_per_class)


def _decode(data: bytes) -> np.ndarray:
  from PIL import Image  # Pillow: only needed for image folders/tars.

  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_image_folder(path: str | os.PathLike, split: str = "train", *,
                      classes: tuple[str, ...] = CIFAR10_CLASSES,
                      limit_per_class: int | None = None) -> Split:
  """Loads ``.../<split>/<class>/<file>`` images from a folder or a ``.tar``/``.tar.gz``.

  Files are taken in sorted-name order within each class, so ``limit_per_class`` is
  deterministic; the label is the class name's index in ``classes``.
  """
  _check_split(split)
  return load_image_splits(path, (split,), classes=classes,
                           limit_per_class={split: limit_per_class})[split]


def load_image_splits(path: str | os.PathLike, splits=("train", "test"), *,
                      classes: tuple[str, ...] = CIFAR10_CLASSES,
                      limit_per_class: dict | None = None) -> dict[str, Split]:
  """Several splits of an image folder/tar in one pass (a tar is read once)."""
  for split in splits:
    _check_split(split)
  limits = {sp: (limit_per_class or {}).get(sp) for sp in splits}
  path = pathlib.Path(path)
  index = {c: i for i, c in enumerate(classes)}
  found: dict[str, dict[int, list[tuple[str, object]]]] = {
      sp: {i: [] for i in range(len(classes))} for sp in splits}

  if path.is_dir():
    for f in sorted(path.rglob("*")):
      parts = f.parts
      if (f.suffix.lower() in _IMAGE_SUFFIXES and len(parts) >= 3 and parts[-3] in found
          and parts[-2] in index):
        found[parts[-3]][index[parts[-2]]].append((f.name, f))
  elif path.is_file() and tarfile.is_tarfile(path):
    with tarfile.open(path, "r:*") as tar:
      for member in tar:
        parts = member.name.split("/")
        if (member.isfile() and len(parts) >= 3 and parts[-3] in found and parts[-2] in index
            and parts[-1].lower().endswith(_IMAGE_SUFFIXES)):
          found[parts[-3]][index[parts[-2]]].append((parts[-1], tar.extractfile(member).read()))
  else:
    raise DatasetNotFoundError(f"{path} is neither a folder nor a tar archive")
  out = {}
  for sp in splits:
    images, labels = [], []
    for i, items in found[sp].items():
      items = sorted(items, key=lambda t: t[0])[: limits[sp]]
      images.extend(_decode(b if isinstance(b, bytes) else b.read_bytes()) for _, b in items)
      labels.extend([i] * len(items))
    if not images:
      raise DatasetNotFoundError(f"no '{sp}/<class>/*.jpg|png' images found in {path}")
    out[sp] = _finish(np.stack(images), np.asarray(labels), None)
  return out


def load_cifar10(data_dir: str | os.PathLike | None = None, *, limit_per_class: int | None = None,
                 test_limit_per_class: int | None = None) -> Dataset:
  """CIFAR-10 from ``data_dir`` in pickle, binary or image-folder/tar form (first found).

  Without ``data_dir`` it looks for the ``cifar10-jpeg`` folder via
  :func:`jaxpapers._src.data.find_dataset` (``$JAXPAPERS_DATA`` or ``../shared/data``).
  """
  kw = dict(limit_per_class=limit_per_class)
  kw_test = dict(limit_per_class=test_limit_per_class)
  if data_dir is not None:
    for loader in (load_cifar10_pickle, load_cifar10_binary):
      try:
        return Dataset(loader(data_dir, "train", **kw), loader(data_dir, "test", **kw_test), 10,
                       "cifar10")
      except DatasetNotFoundError:
        pass
  folder = find_dataset("cifar10-jpeg", (), data_dir)
  tar = folder / "cifar10-jpeg.tar.gz"
  src = tar if tar.exists() else folder
  splits = load_image_splits(src, limit_per_class={"train": limit_per_class,
                                                   "test": test_limit_per_class})
  return Dataset(splits["train"], splits["test"], 10, "cifar10")


def _digits_arrays():
  """(1797, 8, 8) images and labels from scikit-learn's bundled ``digits.csv.gz``.

  The file is read directly (importing ``sklearn.datasets`` costs seconds on a busy machine);
  falls back to ``sklearn.datasets.load_digits`` if the file is not where it usually is.
  """
  import gzip
  import importlib.util

  spec = importlib.util.find_spec("sklearn")
  for base in (spec.submodule_search_locations or []) if spec else []:
    path = pathlib.Path(base) / "datasets" / "data" / "digits.csv.gz"
    if path.exists():
      with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
      return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int32)
  from sklearn.datasets import load_digits as _load

  d = _load()
  return d.images.astype(np.float32), d.target.astype(np.int32)


def load_digits(test_fraction: float = 0.3, seed: int = 0) -> Dataset:
  """scikit-learn's digits (1797 8×8 images, values 0..16 scaled to [0, 1]) with a stratified
  train/test split: ``round(test_fraction · n_c)`` random images of each class c go to the test
  split (deterministic given ``seed``)."""
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
  images, y = _digits_arrays()
  x = (images / 16.0)[..., None]
  rng = np.random.default_rng(seed)
  test = np.zeros(y.size, bool)
  for c in np.unique(y):
    idx = rng.permutation(np.flatnonzero(y == c))
    test[idx[: int(np.floor(test_fraction * idx.size + 0.5))]] = True
  return Dataset(Split(x[~test], y[~test]), Split(x[test], y[test]), 10, "digits")


class MixtureReps(NamedTuple):
  reps: jax.Array
  labels: jax.Array
  poison_mask: jax.Array


def gaussian_mixture_reps(key: jax.Array, *, num_classes: int = 3, n_per_class: int = 300,
                          dim: int = 32, epsilon: float = 0.1, gap_sq: float | None = None,
                          offset: float = 10.0) -> MixtureReps:
  """Synthetic representations: clean ``N(μ_y, I)``, poisons ``N(μ_0 + Δ, I)`` in class 0.

  Class 0 gets ``round(ε n/(1−ε))`` poisons so they are a fraction ε of it; ``‖Δ‖² = gap_sq``
  (default ``6/ε``, the separation of the paper's Lemma); ``‖μ_y‖ = offset`` gives the classes a
  common non-zero mean, as ReLU features have (it is what defeats the uncentred score).
  """
  if not 0.0 < epsilon < 0.5:
    raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon}")
  for name, v in (("num_classes", num_classes), ("n_per_class", n_per_class), ("dim", dim)):
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"{name} must be a positive int, got {v!r}")
  gap_sq = 6.0 / epsilon if gap_sq is None else float(gap_sq)
  n_p = int(np.floor(epsilon * n_per_class / (1.0 - epsilon) + 0.5))
  return _mixture(key, num_classes, n_per_class, dim, n_p, gap_sq, float(offset))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _mixture(key, num_classes, n_per_class, dim, n_p, gap_sq, offset):
  k_mu, k_delta, k_clean, k_pois = jax.random.split(key, 4)
  mus = jax.random.normal(k_mu, (num_classes, dim))
  mus = offset * mus / jnp.linalg.norm(mus, axis=1, keepdims=True)
  delta = jax.random.normal(k_delta, (dim,))
  delta = jnp.sqrt(gap_sq) * delta / jnp.linalg.norm(delta)
  labels = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), n_per_class)
  clean = mus[labels] + jax.random.normal(k_clean, (num_classes * n_per_class, dim))
  poisons = mus[0] + delta + jax.random.normal(k_pois, (n_p, dim))
  return MixtureReps(jnp.concatenate([clean, poisons]),
                     jnp.concatenate([labels, jnp.zeros((n_p,), jnp.int32)]),
                     jnp.arange(num_classes * n_per_class + n_p) >= num_classes * n_per_class)
