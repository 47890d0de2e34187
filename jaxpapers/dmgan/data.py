"""Data for the disconnected-manifold experiments: toy sets, digits, MNIST IDX, two-domain mixes.

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018.

* Toy 2-D sets with a known, disconnected support (4 or 3 disjoint segments, two circles, a ring
  of K Gaussians) as a hashable :class:`ToyDataset` with per-piece masses (``weights``), a jittable
  sampler and the exact distance to the support (for the off-manifold fraction).
* scikit-learn's 8x8 digits (bundled with scikit-learn; the default real image set on CPU).
* An IDX reader for MNIST's original files (``train-images-idx3-ubyte[.gz]`` and friends).
* A reader for CIFAR-10 stored as a tar of JPEGs (``/work/shared/data/cifar10-jpeg``) and a
  two-domain mixture builder (the paper's Face-Bed set mixes CelebA faces and LSUN bedrooms).

Training on your own data
-------------------------
The training loop only needs a pure, jittable sampler ``(key, batch) -> x`` of shape
``(batch, *data_shape)``. For data made of disjoint pieces with unequal masses, either describe
them as a :class:`ToyDataset` with ``weights`` (off-manifold metrics then come for free), or
combine one sampler per piece with :func:`mixture_sampler` (``weights`` are the pieces' masses,
normalised here), or weight the rows of an in-memory array with ``array_sampler(data, weights)``::

  import jax, jax.numpy as jnp
  from jaxpapers.dmgan import config as config_lib, core, data, networks, train
  seg = lambda a, b: (lambda k, n: a + jax.random.uniform(k, (n, 1)) * (b - a))
  sampler = data.mixture_sampler(
      [seg(jnp.array([0., 0.]), jnp.array([1., 0.])), seg(jnp.array([0., 1.]), jnp.array([1., 1.]))],
      weights=(0.7, 0.3))
  config = config_lib.get_config("cpu")              # steps, chunking, seed, ...
  generator, critic = networks.toy_models()          # or image models for images
  problem = train.Problem(core.variant_config("dmwgan_pl", 10), generator, critic, sampler)
  state, history, _ = train.train(config, workdir=None, problem=problem)
  r = core.prior_probs(state.prior.logits)           # learned masses of the generators

``train.evaluate`` then reports the prior's statistics (and toy metrics when ``problem.toy`` is a
:class:`ToyDataset`, e.g. ``ToyDataset("segments", pieces, weights=(0.7, 0.3))``).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import os
import pathlib
import struct
import tarfile

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.data import find_dataset
from jaxpapers._src.validation import check_array, check_in, check_positive

# ---------------------------------------------------------------------------------------------
# Toy sets.

TOY_KINDS = ("segments", "circles", "gaussians")


def _check_weights(weights, num: int, name: str = "weights") -> tuple[float, ...]:
  """Validates per-piece masses and returns them normalised to sum to 1."""
  if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
    raise TypeError(f"{name} must be a sequence of {num} non-negative numbers, got {weights!r}")
  w = np.asarray(weights, np.float64)
  if w.ndim != 1 or w.shape[0] != num:
    raise ValueError(f"{name} must have one entry per piece ({num}), got shape {w.shape}")
  if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
    raise ValueError(f"{name} must be finite, >= 0 and not all zero, got {tuple(w.tolist())}")
  return tuple(float(v) for v in w / w.sum())


@dataclasses.dataclass(frozen=True)
class ToyDataset:
  """A 2-D distribution on ``len(pieces)`` disjoint pieces, piece ``k`` chosen with mass ``w_k``.

  Attributes:
    kind: ``"segments"`` (pieces are ``((x0, y0), (x1, y1))``, uniform along each segment),
      ``"circles"`` (pieces are ``((cx, cy), radius)``, uniform in angle) or ``"gaussians"``
      (pieces are ``((mx, my), std)``, isotropic Gaussians).
    pieces: the pieces' parameters (tuples, so the dataset is hashable and static under jit).
    weights: the pieces' masses (normalised to sum to 1 on construction); ``None`` gives equal
      masses.

  Raises:
    ValueError: on an unknown ``kind``, no pieces, or masses that are negative, non-finite, all
      zero or not one per piece.
  """

  kind: str
  pieces: tuple
  weights: tuple | None = None

  def __post_init__(self):
    check_in(self.kind, "kind", TOY_KINDS)
    if len(self.pieces) < 1:
      raise ValueError("pieces must hold at least one piece")
    if self.weights is not None:
      object.__setattr__(self, "weights", _check_weights(self.weights, len(self.pieces)))

  @property
  def num_pieces(self) -> int:
    return len(self.pieces)

  @property
  def masses(self) -> tuple[float, ...]:
    """The pieces' probabilities (equal when ``weights`` is ``None``)."""
    if self.weights is None:
      return (1.0 / self.num_pieces,) * self.num_pieces
    return self.weights


def four_segments(weights=None) -> ToyDataset:
  """The reference's four disjoint segments (``run_dmgan.py``'s ``generate_line_data``).

  The middle halves of the edges of the diamond ``|x| + |y| = 1``: each segment runs over
  ``|x| ∈ [0.25, 0.75]``, has length ``0.5·√2``, and neighbouring segments are 0.5 apart.
  ``weights`` are optional per-segment masses (the reference's are equal).
  """
  return ToyDataset("segments", (((0.75, 0.25), (0.25, 0.75)), ((-0.75, -0.25), (-0.25, -0.75)),
                                 ((0.75, -0.25), (0.25, -0.75)), ((-0.75, 0.25), (-0.25, 0.75))),
                    weights)


def three_segments(weights=(0.5, 0.3, 0.2)) -> ToyDataset:
  """Three of the reference's four segments (all but the ``x < 0, y > 0`` one) with unequal
  masses (default 0.5 / 0.3 / 0.2): the prior must learn the masses, not only the count."""
  return ToyDataset("segments", four_segments().pieces[:3], weights)


def two_circles(radius: float = 1.0, gap: float = 2.0, weights=None) -> ToyDataset:
  """Two disjoint circles of ``radius`` whose closest points are ``gap`` apart.

  The defaults are the reference's ``generate_circle_data``: unit circles centred at ``(±2, 0)``.
  """
  check_positive(radius, "radius")
  check_positive(gap, "gap")
  if not (math.isfinite(radius) and math.isfinite(gap)):
    raise ValueError(f"radius and gap must be finite, got {radius}, {gap}")
  cx = radius + gap / 2
  return ToyDataset("circles", (((-cx, 0.0), radius), ((cx, 0.0), radius)), weights)


def gaussian_ring(num_modes: int = 6, radius: float = 1.0, std: float = 0.01,
                  weights=None) -> ToyDataset:
  """``num_modes`` isotropic Gaussians of ``std`` equally spaced on a circle of ``radius``."""
  if isinstance(num_modes, bool) or not isinstance(num_modes, int) or num_modes < 1:
    raise ValueError(f"num_modes must be an int >= 1, got {num_modes!r}")
  check_positive(radius, "radius")
  check_positive(std, "std")
  if not (math.isfinite(radius) and math.isfinite(std)):
    raise ValueError(f"radius and std must be finite, got {radius}, {std}")
  return ToyDataset("gaussians", tuple(
      ((radius * math.cos(2 * math.pi * k / num_modes), radius * math.sin(2 * math.pi * k / num_modes)),
       std) for k in range(num_modes)), weights)


TOY_NAMES = ("segments", "segments3", "circles", "ring")


def toy_dataset(name: str, **kwargs) -> ToyDataset:
  """``"segments"``, ``"segments3"`` (3 segments, masses 0.5/0.3/0.2), ``"circles"`` or ``"ring"``
  (a ring of Gaussians) by name; ``kwargs`` (e.g. ``weights``) go to the constructor."""
  check_in(name, "name", TOY_NAMES)
  return {"segments": four_segments, "segments3": three_segments, "circles": two_circles,
          "ring": gaussian_ring}[name](**kwargs)


def _piece_arrays(ds: ToyDataset):
  a = jnp.asarray([p[0] for p in ds.pieces], jnp.float32)
  b = jnp.asarray([p[1] for p in ds.pieces], jnp.float32)
  return a, b


def sample_toy(key, ds: ToyDataset, num: int):
  """``num`` i.i.d. samples ``(num, 2)``; piece ``k`` is drawn with mass ``ds.masses[k]``.

  Jittable (``ds`` and ``num`` static).

  Raises:
    TypeError: if ``ds`` is not a :class:`ToyDataset`.
    ValueError: if ``num`` is not an int >= 0.
  """
  if not isinstance(ds, ToyDataset):
    raise TypeError(f"ds must be a ToyDataset, got {type(ds).__name__}")
  if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
    raise ValueError(f"num must be an int >= 0, got {num!r}")
  k_piece, k_pos = jax.random.split(key)
  if ds.weights is None:
    idx = jax.random.randint(k_piece, (num,), 0, ds.num_pieces)
  else:
    idx = _draw_pieces(k_piece, ds.weights, num)
  a, b = _piece_arrays(ds)
  a, b = a[idx], b[idx]
  if ds.kind == "segments":
    t = jax.random.uniform(k_pos, (num, 1))
    return a + t * (b - a)
  if ds.kind == "circles":
    theta = jax.random.uniform(k_pos, (num,), minval=0.0, maxval=2 * jnp.pi)
    return a + b[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
  return a + b[:, None] * jax.random.normal(k_pos, (num, 2))


def _draw_pieces(key, weights, num: int):
  """``num`` piece indices with probabilities ``weights`` (zero-mass pieces are never drawn)."""
  w = np.asarray(weights, np.float64)
  logits = jnp.asarray(np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), -np.inf), jnp.float32)
  return jax.random.categorical(key, logits, shape=(num,)).astype(jnp.int32)


def toy_labels(ds: ToyDataset, x):
  """Index of the nearest piece for each point (pieces' identity for per-piece statistics)."""
  return jnp.argmin(piece_distances(ds, x), axis=1)


def piece_distances(ds: ToyDataset, x):
  """Euclidean distance from each point to each piece's support, ``(num, num_pieces)``.

  Segments: distance to the segment; circles: ``| ||x - c|| - R |``; Gaussians: distance to the
  mean (the support shrinks to the modes).
  """
  check_array(x, "x", ndim=2, shape=(None, 2))
  check_in(ds.kind, "ds.kind", TOY_KINDS)
  a, b = _piece_arrays(ds)
  if ds.kind == "segments":
    d = b - a  # (P, 2)
    t = jnp.clip(jnp.einsum("npk,pk->np", x[:, None, :] - a[None], d) / jnp.sum(d * d, 1), 0.0, 1.0)
    closest = a[None] + t[..., None] * d[None]
    return jnp.linalg.norm(x[:, None, :] - closest, axis=-1)
  r = jnp.linalg.norm(x[:, None, :] - a[None], axis=-1)
  return jnp.abs(r - b[None]) if ds.kind == "circles" else r


def distance_to_manifold(ds: ToyDataset, x):
  """Distance from each point to the nearest piece, ``(num,)``."""
  return jnp.min(piece_distances(ds, x), axis=1)


# ---------------------------------------------------------------------------------------------
# Images.


def to_unit_range(images, max_value: float = 255.0):
  """Maps ``[0, max_value]`` pixel values to ``[-1, 1]`` float32 (the generators' tanh range)."""
  return (np.asarray(images, np.float32) / max_value) * 2.0 - 1.0


def load_digits():
  """scikit-learn's 1797 8x8 digits as ``(images (N, 8, 8, 1) in [-1, 1], labels (N,))``."""
  from sklearn.datasets import load_digits as _load

  d = _load()
  images = to_unit_range(d.images[..., None], 16.0)
  return images, d.target.astype(np.int32)


_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (MNIST's format), gzip-compressed or not.

  The header is two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
  0x0D float32, 0x0E float64), the rank, then one big-endian uint32 per dimension.

  Raises:
    FileNotFoundError: if ``path`` does not exist.
    ValueError: on a bad magic number, an unknown type code or a size that does not match.
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"IDX file not found: {path}")
  opener = gzip.open if path.suffix == ".gz" else open
  with opener(path, "rb") as f:
    raw = f.read()
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
    raise ValueError(f"{path}: not an IDX file (magic must start with two zero bytes)")
  code, ndim = raw[2], raw[3]
  if code not in _IDX_DTYPES:
    raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}")
  if len(raw) < 4 + 4 * ndim:
    raise ValueError(f"{path}: truncated IDX header")
  shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
  dtype = _IDX_DTYPES[code]
  body = raw[4 + 4 * ndim:]
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(body) != expected:
    raise ValueError(f"{path}: IDX body has {len(body)} bytes, header shape {shape} needs {expected}")
  return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None):
  """MNIST from its IDX files as ``(images (N, 28, 28, 1) in [-1, 1], labels (N,))``.

  Files may be plain or ``.gz``; the folder is found with :func:`find_dataset` (``"mnist"``).
  """
  check_in(split, "split", tuple(MNIST_FILES))
  names = MNIST_FILES[split]
  for suffix in ("", ".gz"):
    files = [n + suffix for n in names]
    try:
      folder = find_dataset("mnist", files, data_dir)
    except FileNotFoundError:
      continue
    images, labels = read_idx(folder / files[0]), read_idx(folder / files[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
      raise ValueError(f"MNIST {split}: images {images.shape} and labels {labels.shape} disagree")
    return to_unit_range(images[..., None]), labels.astype(np.int32)
  return find_dataset("mnist", names, data_dir)  # raises DatasetNotFoundError with the paths


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")


def load_cifar10_jpeg(split: str = "train", classes=None, limit_per_class: int | None = None,
                      data_dir: str | os.PathLike | None = None):
  """CIFAR-10 from a tar(.gz) of ``<root>/<split>/<class>/<n>.jpg`` files.

  Returns ``(images (N, 32, 32, 3) in [-1, 1], labels (N,))`` with the official class indices.
  ``data_dir`` may be the tar file itself or a folder holding ``cifar10-jpeg.tar.gz``.
  """
  from PIL import Image

  check_in(split, "split", ("train", "test"))
  classes = CIFAR10_CLASSES if classes is None else tuple(classes)
  for c in classes:
    check_in(c, "classes", CIFAR10_CLASSES)
  if data_dir is not None and pathlib.Path(data_dir).is_file():
    tar_path = pathlib.Path(data_dir)
  else:
    tar_path = find_dataset("cifar10-jpeg", ["cifar10-jpeg.tar.gz"], data_dir) / "cifar10-jpeg.tar.gz"
  counts = {c: 0 for c in classes}
  images, labels = [], []
  with tarfile.open(tar_path, "r:*") as tar:
    for member in tar:
      parts = pathlib.PurePosixPath(member.name).parts
      if not member.isfile() or len(parts) < 3 or not parts[-1].endswith(".jpg"):
        continue
      if parts[-3] != split or parts[-2] not in counts:
        continue
      cls = parts[-2]
      if limit_per_class is not None and counts[cls] >= limit_per_class:
        continue
      with Image.open(io.BytesIO(tar.extractfile(member).read())) as img:
        images.append(np.asarray(img.convert("RGB"), np.uint8))
      labels.append(CIFAR10_CLASSES.index(cls))
      counts[cls] += 1
  if not images:
    raise ValueError(f"no {split} images of classes {classes} in {tar_path}")
  return to_unit_range(np.stack(images)), np.asarray(labels, np.int32)


def two_domain_mixture(key, images_a, images_b, num: int, fraction_a: float = 0.5,
                       size: tuple[int, int] | None = None):
  """A Face-Bed-style set: ``num`` images drawn from two domains, resized to one shape.

  Args:
    key: PRNG key for drawing images (with replacement) and the domain of each draw.
    images_a, images_b: ``(N, H, W, C)`` float images in ``[-1, 1]``; grey (C=1) is broadcast to
      the other domain's channel count.
    num: size of the mixture.
    fraction_a: probability that a draw comes from domain a.
    size: output ``(H, W)`` (default: domain a's).

  Returns:
    ``(images (num, H, W, C), domain (num,) in {0, 1})``.
  """
  check_array(images_a, "images_a", ndim=4, dtype_kind="f", finite=True)
  check_array(images_b, "images_b", ndim=4, dtype_kind="f", finite=True)
  for name, im in (("images_a", images_a), ("images_b", images_b)):
    if im.shape[0] < 1:
      raise ValueError(f"{name} must hold at least one image, got shape {tuple(im.shape)}")
  if not 0.0 <= fraction_a <= 1.0:
    raise ValueError(f"fraction_a must be in [0, 1], got {fraction_a}")
  if not isinstance(num, int) or num < 1:
    raise ValueError(f"num must be an int >= 1, got {num!r}")
  size = tuple(images_a.shape[1:3]) if size is None else tuple(size)
  channels = max(images_a.shape[-1], images_b.shape[-1])

  def prep(x):
    x = jnp.asarray(x)
    x = jnp.broadcast_to(x, x.shape[:3] + (channels,)) if x.shape[-1] == 1 else x
    if x.shape[-1] != channels:
      raise ValueError(f"cannot mix {images_a.shape[-1]}- and {images_b.shape[-1]}-channel images")
    return jax.image.resize(x, (x.shape[0], *size, channels), "linear")

  a, b = prep(images_a), prep(images_b)
  k_dom, k_a, k_b = jax.random.split(key, 3)
  domain = (jax.random.uniform(k_dom, (num,)) >= fraction_a).astype(jnp.int32)
  ia = jax.random.randint(k_a, (num,), 0, a.shape[0])
  ib = jax.random.randint(k_b, (num,), 0, b.shape[0])
  images = jnp.where(domain[:, None, None, None] == 0, a[ia], b[ib])
  return images, domain


def array_sampler(data, weights=None):
  """Pure ``(key, batch) -> data[random indices]`` over an in-memory array (with replacement).

  Args:
    data: ``(N, ...)`` float array of rank 2 to 4, finite.
    weights: optional per-row masses ``(N,)`` (normalised here); ``None`` draws rows uniformly.
      Giving every row of a piece the weight ``mass / rows_in_piece`` sets the pieces' masses.

  Raises:
    ValueError: if ``data`` has rank < 2, no rows, or NaN/inf entries, or ``weights`` is not one
      finite non-negative number per row with a positive sum.
  """
  check_array(data, "data", ndim=(2, 3, 4), dtype_kind="f", finite=True)
  if data.shape[0] < 1:
    raise ValueError("data must have at least one row")
  data = jnp.asarray(data)
  if weights is None:
    def sample(key, batch):
      return data[jax.random.randint(key, (batch,), 0, data.shape[0])]
    return sample
  w = _check_weights(np.asarray(weights), data.shape[0])

  def sample_weighted(key, batch):
    return data[_draw_pieces(key, w, batch)]

  return sample_weighted


def mixture_sampler(samplers, weights=None):
  """Pure ``(key, batch) -> x`` drawing each sample from piece ``k`` with mass ``weights[k]``.

  Every piece sampler ``(key, batch) -> (batch, ...)`` is run on the whole batch and the pieces
  are selected per sample, so the result is jittable with a static ``batch``.

  Args:
    samplers: one pure sampler per piece, all with the same output shape.
    weights: per-piece masses (normalised here); ``None`` gives equal masses.

  Returns:
    The sampler; its ``.weights`` attribute holds the normalised masses.

  Raises:
    TypeError: if a sampler is not callable.
    ValueError: if ``samplers`` is empty or ``weights`` is not one finite non-negative mass per
      piece with a positive sum.
  """
  samplers = tuple(samplers)
  if not samplers:
    raise ValueError("samplers must hold at least one piece sampler")
  for i, f in enumerate(samplers):
    if not callable(f):
      raise TypeError(f"samplers[{i}] must be callable (key, batch) -> x, got {type(f).__name__}")
  w = (1.0 / len(samplers),) * len(samplers) if weights is None else _check_weights(
      weights, len(samplers))

  def sample(key, batch):
    k_piece, *k_each = jax.random.split(key, len(samplers) + 1)
    idx = _draw_pieces(k_piece, w, batch)
    xs = jnp.stack([f(k, batch) for f, k in zip(samplers, k_each)])  # (P, batch, ...)
    return xs[idx, jnp.arange(batch)]

  sample.weights = w
  return sample


def toy_sampler(ds: ToyDataset):
  """Pure ``(key, batch) -> samples`` of a toy set (pieces drawn with ``ds.masses``)."""
  if not isinstance(ds, ToyDataset):
    raise TypeError(f"ds must be a ToyDataset, got {type(ds).__name__}")
  return lambda key, batch: sample_toy(key, ds, batch)
