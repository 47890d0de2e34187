"""Data for the spectral-signature experiments: CIFAR-10 in its released formats, digits, synthetic.

* :func:`load_cifar10_pickle` — the official "python version" (``data_batch_1`` … ``data_batch_5``,
  ``test_batch``: pickled dicts with ``b"data"`` ``(N, 3072)`` uint8 rows in channel-major order
  and ``b"labels"``). Unpickling can run arbitrary code, so it needs ``allow_pickle=True``.
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
import zlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.data import DatasetNotFoundError, find_dataset
from jaxpapers._src.validation import check_in

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SPLITS = ("train", "test")
_ON_ERROR = ("raise", "skip")


class Split(NamedTuple):
  """Images ``(N, H, W, C)`` float32 in [0, 1] and labels ``(N,)`` int32.

  ``skipped`` counts undecodable image files left out (``on_error="skip"``; otherwise 0).
  """

  images: np.ndarray
  labels: np.ndarray
  skipped: int = 0


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
                        limit_per_class: int | None = None, allow_pickle: bool = False) -> Split:
  """Loads the official CIFAR-10 python-pickle batches from ``folder`` (or its
  ``cifar-10-batches-py/``).

  Args:
    folder: directory holding ``data_batch_{1..5}`` and ``test_batch``.
    split: ``"train"`` or ``"test"``.
    limit_per_class: keep only the first this-many images of each class (file order).
    allow_pickle: must be ``True``: unpickling a file can execute arbitrary code, so only do it
      for files you trust (the binary or image versions need no such trust).

  Raises:
    ValueError: ``allow_pickle`` is false, or a file is not a CIFAR-10 batch.
  """
  _check_split(split)
  names = _batch_names(split)
  base = _resolve(folder, names, "cifar-10-batches-py")
  if not allow_pickle:
    raise ValueError(f"{base} holds CIFAR-10 python-pickle batches; unpickling can execute "
                     "arbitrary code, so it is refused unless allow_pickle=True (or use the "
                     "binary or image versions)")
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


class ImageDecodeError(ValueError):
  """An image file of a folder/archive that cannot be decoded (names the archive and member)."""


def _decode(data: bytes, where: str) -> np.ndarray:
  from PIL import Image, UnidentifiedImageError  # Pillow: only needed for image folders/tars.

  try:
    with Image.open(io.BytesIO(data)) as im:
      return np.asarray(im.convert("RGB"), dtype=np.uint8)
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise ImageDecodeError(f"cannot decode image {where}: {type(e).__name__}: {e}") from None


def load_image_folder(path: str | os.PathLike, split: str = "train", *,
                      classes: tuple[str, ...] = CIFAR10_CLASSES,
                      limit_per_class: int | None = None, on_error: str = "raise") -> Split:
  """Loads ``.../<split>/<class>/<file>`` images from a folder or a ``.tar``/``.tar.gz``.

  Files are taken in sorted-name order within each class, so ``limit_per_class`` is
  deterministic; the label is the class name's index in ``classes``. See
  :func:`load_image_splits` for ``on_error``.
  """
  _check_split(split)
  return load_image_splits(path, (split,), classes=classes,
                           limit_per_class={split: limit_per_class}, on_error=on_error)[split]


def load_image_splits(path: str | os.PathLike, splits=("train", "test"), *,
                      classes: tuple[str, ...] = CIFAR10_CLASSES,
                      limit_per_class: dict | None = None,
                      on_error: str = "raise") -> dict[str, Split]:
  """Several splits of an image folder/tar in one pass (a tar is read once).

  Args:
    path: a folder or a ``.tar``/``.tar.gz`` archive.
    splits: which of ``"train"``/``"test"`` to load.
    classes: class folder names; the label is the index in this tuple.
    limit_per_class: ``{split: n}``: keep the first ``n`` files (sorted names) of each class.
    on_error: ``"raise"`` (default): an undecodable file raises :class:`ImageDecodeError`
      naming the archive/folder and the member; ``"skip"``: leave it out and count it in the
      split's ``skipped`` (``limit_per_class`` then counts decodable files).

  Raises:
    ImageDecodeError: a file cannot be decoded and ``on_error="raise"``.
    DatasetNotFoundError: no images for a split.
  """
  check_in(on_error, "on_error", _ON_ERROR)
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
    last = None  # the member being read when a truncated/corrupt archive fails.
    try:
      with tarfile.open(path, "r:*") as tar:
        for member in tar:
          last = member.name
          parts = member.name.split("/")
          if (member.isfile() and len(parts) >= 3 and parts[-3] in found and parts[-2] in index
              and parts[-1].lower().endswith(_IMAGE_SUFFIXES)):
            raw = tar.extractfile(member).read()
            found[parts[-3]][index[parts[-2]]].append((parts[-1], (member.name, raw)))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
      where = f"at or after member {last!r}" if last else "at its start"
      raise ImageDecodeError(f"cannot read archive {path} ({where}; truncated or corrupt?): "
                             f"{type(e).__name__}: {e}") from None
  else:
    raise DatasetNotFoundError(f"{path} is neither a folder nor a tar archive")
  out = {}
  for sp in splits:
    images, labels, skipped = [], [], 0
    for i, items in found[sp].items():
      taken = 0
      for _, item in sorted(items, key=lambda t: t[0]):
        if limits[sp] is not None and taken >= limits[sp]:
          break
        if isinstance(item, tuple):
          where, raw = f"member {item[0]!r} of archive {path}", item[1]
        else:
          where, raw = f"file {item}", item.read_bytes()
        try:
          images.append(_decode(raw, where))
        except ImageDecodeError:
          if on_error == "raise":
            raise
          skipped += 1
          continue
        labels.append(i)
        taken += 1
    if not images:
      raise DatasetNotFoundError(f"no decodable '{sp}/<class>/*.jpg|png' images found in {path} "
                                 f"({skipped} skipped)")
    out[sp] = _finish(np.stack(images), np.asarray(labels), None)._replace(skipped=skipped)
  return out


def _has_batches(folder, names, sub):
  try:
    _resolve(folder, names, sub)
    return True
  except DatasetNotFoundError:
    return False


def load_cifar10(data_dir: str | os.PathLike | None = None, *, limit_per_class: int | None = None,
                 test_limit_per_class: int | None = None, allow_pickle: bool = False,
                 on_error: str = "raise") -> Dataset:
  """CIFAR-10 from ``data_dir`` in pickle, binary or image-folder/tar form (first found).

  Without ``data_dir`` it looks for the ``cifar10-jpeg`` folder via
  :func:`jaxpapers._src.data.find_dataset` (``$JAXPAPERS_DATA`` or ``../shared/data``).

  Args:
    data_dir: folder holding one of the formats (or ``None``).
    limit_per_class: first this-many training images of each class.
    test_limit_per_class: same for the test split.
    allow_pickle: load the python-pickle batches if they are there (they are tried first);
      without it pickles are never unpickled: the binary batches are used if present, otherwise
      a ``ValueError`` is raised.
    on_error: for image folders/tars, ``"raise"`` or ``"skip"`` undecodable files (see
      :func:`load_image_splits`).
  """
  check_in(on_error, "on_error", _ON_ERROR)
  kw = dict(limit_per_class=limit_per_class)
  kw_test = dict(limit_per_class=test_limit_per_class)
  if data_dir is not None:
    has_pickles = _has_batches(data_dir, _batch_names("train"), "cifar-10-batches-py")
    if has_pickles and allow_pickle:
      return Dataset(load_cifar10_pickle(data_dir, "train", allow_pickle=True, **kw),
                     load_cifar10_pickle(data_dir, "test", allow_pickle=True, **kw_test), 10,
                     "cifar10")
    try:
      return Dataset(load_cifar10_binary(data_dir, "train", **kw),
                     load_cifar10_binary(data_dir, "test", **kw_test), 10, "cifar10")
    except DatasetNotFoundError:
      if has_pickles:
        raise ValueError(f"{data_dir} holds CIFAR-10 python-pickle batches only; unpickling can "
                         "execute arbitrary code, so pass allow_pickle=True if you trust them"
                         ) from None
  folder = find_dataset("cifar10-jpeg", (), data_dir)
  tar = folder / "cifar10-jpeg.tar.gz"
  src = tar if tar.exists() else folder
  splits = load_image_splits(src, limit_per_class={"train": limit_per_class,
                                                   "test": test_limit_per_class},
                             on_error=on_error)
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
  common non-zero mean, as ReLU features have (its offset ``R̂·v`` is what can defeat the
  reference code's uncentred projection ``|R_i·v|``).
  """
  if not 0.0 < epsilon < 0.5:
    raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon}")
  for name, v in (("num_classes", num_classes), ("n_per_class", n_per_class), ("dim", dim)):
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"{name} must be a positive int, got {v!r}")
  gap_sq = 6.0 / epsilon if gap_sq is None else float(gap_sq)
  if not (np.isfinite(gap_sq) and gap_sq >= 0):
    raise ValueError(f"gap_sq must be a finite number >= 0, got {gap_sq}")
  if not (np.isfinite(float(offset)) and float(offset) >= 0):
    raise ValueError(f"offset must be a finite number >= 0, got {offset}")
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
