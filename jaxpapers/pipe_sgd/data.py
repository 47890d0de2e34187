"""Data for the Pipe-SGD experiments (Li et al., NeurIPS 2018: MNIST and CIFAR-10).

* :func:`load_digits` — scikit-learn's 8×8 digits (the default: no download, CPU sized).
* :func:`read_idx` / :func:`load_mnist` — the MNIST IDX format (``train-images-idx3-ubyte`` …,
  optionally gzipped).
* :func:`read_cifar10_bin` / :func:`load_cifar10` — the CIFAR-10 binary batches
  (``data_batch_{1..5}.bin``, ``test_batch.bin``: records of 1 label byte + 3072 pixel bytes,
  channel-major 3×32×32).
* :func:`load_cifar10_jpeg_tar` — the folder-of-JPEGs copy in ``shared/data/cifar10-jpeg``.
* :func:`batches` — an endless, reproducible stream of shuffled minibatches.

Images are returned as float32 NHWC in ``[0, 1]`` (standardised per channel by the caller if
wanted), labels as int32.
"""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import struct
import tarfile
from typing import NamedTuple

import numpy as np

from jaxpapers._src.data import find_dataset

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class Dataset(NamedTuple):
  """A classification split: NHWC float32 images in [0, 1] and int32 labels."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int


def _open(path: pathlib.Path):
  return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _resolve(folder: pathlib.Path, name: str) -> pathlib.Path:
  for cand in (folder / name, folder / (name + ".gz")):
    if cand.exists():
      return cand
  raise FileNotFoundError(f"neither {folder / name} nor {folder / name}.gz exists")


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (MNIST format, optionally ``.gz``) into a NumPy array.

  The header is two zero bytes, a type byte (0x08 = uint8, …), the number of dimensions, then
  one big-endian uint32 per dimension.

  Raises:
    ValueError: on a bad magic number, unknown type or truncated data.
  """
  path = pathlib.Path(path)
  with _open(path) as f:
    raw = f.read()
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
    raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4]!r})")
  dtype = _IDX_DTYPES.get(raw[2])
  if dtype is None:
    raise ValueError(f"{path}: unknown IDX type byte 0x{raw[2]:02x}")
  ndim = raw[3]
  dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
  data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
  if data.size != int(np.prod(dims)):
    raise ValueError(f"{path}: expected {int(np.prod(dims))} values for shape {dims}, "
                     f"found {data.size}")
  return data.reshape(dims).astype(np.dtype(dtype).newbyteorder("="))


def load_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
  """MNIST from the four IDX files (raw or ``.gz``) in ``data_dir`` (or the ``mnist`` dataset).

  ``data_dir`` may be the data set's folder or a data root holding ``mnist/`` (the rule of every
  loader, as :func:`jaxpapers._src.data.find_dataset`).
  """
  if data_dir is None:
    folder = find_dataset("mnist")
  else:
    folder = pathlib.Path(data_dir)
    probe = MNIST_FILES[0]
    if not any((folder / n).exists() for n in (probe, probe + ".gz")) and (folder / "mnist").is_dir():
      folder = folder / "mnist"
  arrays = [read_idx(_resolve(folder, f)) for f in MNIST_FILES]
  xtr, ytr, xte, yte = arrays
  if xtr.ndim != 3 or xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0]:
    raise ValueError(f"inconsistent MNIST shapes {[a.shape for a in arrays]}")
  def prep(x):
    return (x.astype(np.float32) / 255.0)[..., None]
  return Dataset(prep(xtr), ytr.astype(np.int32), prep(xte), yte.astype(np.int32), 10)


def read_cifar10_bin(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Reads one CIFAR-10 binary batch: ``(uint8 images [N, 32, 32, 3], int32 labels [N])``."""
  path = pathlib.Path(path)
  with _open(path) as f:
    raw = np.frombuffer(f.read(), dtype=np.uint8)
  rec = 1 + 3 * 32 * 32
  if raw.size == 0 or raw.size % rec:
    raise ValueError(f"{path}: size {raw.size} is not a multiple of the {rec}-byte record")
  raw = raw.reshape(-1, rec)
  labels = raw[:, 0].astype(np.int32)
  if labels.max() > 9:
    raise ValueError(f"{path}: label {labels.max()} out of range 0..9")
  images = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return images, labels


def load_cifar10(data_dir: str | os.PathLike, max_train: int | None = None,
                 max_test: int | None = None) -> Dataset:
  """CIFAR-10 from ``data_batch_1..5.bin`` and ``test_batch.bin`` in ``data_dir``.

  Missing training batches are skipped (at least one is required).
  """
  folder = pathlib.Path(data_dir)
  sub = folder / "cifar-10-batches-bin"
  if sub.is_dir():
    folder = sub
  parts = []
  for i in range(1, 6):
    try:
      parts.append(read_cifar10_bin(_resolve(folder, f"data_batch_{i}.bin")))
    except FileNotFoundError:
      continue
  if not parts:
    raise FileNotFoundError(f"no data_batch_*.bin in {folder}")
  xtr = np.concatenate([p[0] for p in parts])[:max_train]
  ytr = np.concatenate([p[1] for p in parts])[:max_train]
  xte, yte = read_cifar10_bin(_resolve(folder, "test_batch.bin"))
  return Dataset(xtr.astype(np.float32) / 255.0, ytr, xte[:max_test].astype(np.float32) / 255.0,
                 yte[:max_test], 10)


def load_cifar10_jpeg_tar(path: str | os.PathLike | None = None, max_per_class: int = 100,
                          max_test_per_class: int = 20) -> Dataset:
  """CIFAR-10 from a tar of ``<root>/{train,test}/<class>/<id>.jpg`` (the shared JPEG copy).

  Reads only the first ``max_per_class`` (train) / ``max_test_per_class`` (test) files of each
  class met in the archive (returned sorted by file name), and stops reading once every class
  is full, so small experiments stay fast.
  """
  from PIL import Image

  if path is None:
    path = find_dataset("cifar10-jpeg", ["cifar10-jpeg.tar.gz"]) / "cifar10-jpeg.tar.gz"
  limits = {"train": max_per_class, "test": max_test_per_class}
  found: dict[tuple[str, int], list[tuple[str, np.ndarray]]] = {}
  with tarfile.open(path, "r:*") as tar:
    for member in tar:
      parts = member.name.split("/")
      if not member.isfile() or len(parts) < 3 or not parts[-1].lower().endswith(".jpg"):
        continue
      split, cls = parts[-3], parts[-2]
      if split not in limits or cls not in CIFAR10_CLASSES:
        continue
      key = (split, CIFAR10_CLASSES.index(cls))
      bucket = found.setdefault(key, [])
      if len(bucket) >= limits[split]:
        continue
      img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
      bucket.append((parts[-1], np.asarray(img, dtype=np.uint8)))
      if len(found) == 20 and all(len(b) >= limits[k[0]] for k, b in found.items()):
        break  # every (split, class) bucket is full: skip the rest of the archive
  out = []
  for split in ("train", "test"):
    xs, ys = [], []
    for c in range(10):
      for _, img in sorted(found.get((split, c), []), key=lambda t: t[0]):
        xs.append(img)
        ys.append(c)
    if not xs:
      raise ValueError(f"{path}: no {split} images found")
    out += [np.stack(xs).astype(np.float32) / 255.0, np.asarray(ys, np.int32)]
  return Dataset(*out, 10)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's digits, read from its bundled ``digits.csv.gz`` (importing
  ``sklearn.datasets`` takes seconds); falls back to ``sklearn.datasets.load_digits``."""
  import importlib.util

  spec = importlib.util.find_spec("sklearn")
  if spec is not None and spec.submodule_search_locations:
    path = pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if path.exists():
      table = np.loadtxt(path, delimiter=",", dtype=np.float64)
      return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
  from sklearn.datasets import load_digits as sk_digits

  d = sk_digits()
  return d.images, d.target


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
  """scikit-learn's 1,797 8×8 digits as ``[N, 8, 8, 1]`` images in [0, 1], split at random."""
  if not 0 < test_fraction < 1:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
  images, target = _digits_arrays()
  x = (images.astype(np.float32) / 16.0)[..., None]
  y = target.astype(np.int32)
  perm = np.random.default_rng(seed).permutation(len(y))
  n_test = int(round(test_fraction * len(y)))
  te, tr = perm[:n_test], perm[n_test:]
  return Dataset(x[tr], y[tr], x[te], y[te], 10)


def load_dataset(name: str, data_dir: str | None = None, **kwargs) -> Dataset:
  """Loads ``name`` in ``("digits", "mnist", "cifar10", "cifar10_jpeg")``."""
  if name == "digits":
    return load_digits(**kwargs)
  if name == "mnist":
    return load_mnist(data_dir)
  if name == "cifar10":
    if data_dir is None:
      raise ValueError("dataset 'cifar10' (binary batches) needs data_dir")
    return load_cifar10(data_dir, **kwargs)
  if name == "cifar10_jpeg":
    return load_cifar10_jpeg_tar(data_dir, **kwargs)
  raise ValueError(f"dataset must be one of ['digits', 'mnist', 'cifar10', 'cifar10_jpeg'], "
                   f"got {name!r}")


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
  """Endless generator of ``{"x", "y"}`` minibatches, reshuffled every epoch (drop remainder)."""
  if batch_size < 1 or batch_size > len(y):
    raise ValueError(f"batch_size must be in [1, {len(y)}], got {batch_size}")
  rng = np.random.default_rng(seed)
  while True:
    perm = rng.permutation(len(y))
    for i in range(0, len(y) - batch_size + 1, batch_size):
      idx = perm[i:i + batch_size]
      yield {"x": x[idx], "y": y[idx]}


def stacked_batches(x: np.ndarray, y: np.ndarray, batch_size: int, num: int, seed: int) -> dict:
  """``num`` minibatches of :func:`batches` stacked on a leading axis (for ``lax.scan``)."""
  gen = batches(x, y, batch_size, seed)
  bs = [next(gen) for _ in range(num)]
  return {"x": np.stack([b["x"] for b in bs]), "y": np.stack([b["y"] for b in bs])}
