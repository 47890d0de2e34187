"""Data for robust matrix factorization: MovieLens loaders, outlier injection, synthetic problems.

Formats (GroupLens, Harper & Konstan 2015):

* MovieLens-100K ``u.data`` / ``u1.base`` / ``u1.test``: ``user<TAB>item<TAB>rating<TAB>timestamp``,
  1-based ids.
* MovieLens-1M / 10M ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp`` (10M has half-star
  ratings and non-contiguous movie ids).

The synthetic generator follows the kind of setup of Yao & Kwok (NeurIPS 2018): a rank-r
ground truth U Vᵀ with N(0, 1) factors, a random observed set Ω, small Gaussian noise on every
observed entry and a fraction of observed entries corrupted by large outliers; the test entries
are unobserved positions with their clean values.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import data as data_lib
from jaxpapers._src import validation
from jaxpapers.robust_mf import observations as obs_lib


class Ratings(NamedTuple):
  """Raw ratings with the dataset's own (1-based, possibly sparse) ids.

  Attributes:
    users: int64[N] user ids.
    items: int64[N] item ids.
    ratings: float64[N] ratings.
  """

  users: np.ndarray
  items: np.ndarray
  ratings: np.ndarray


class SplitData(NamedTuple):
  """A train/test split as observations of the same m × n matrix.

  Attributes:
    train: :class:`~.observations.SparseObservations` used for fitting.
    test: :class:`~.observations.SparseObservations` held out for RMSE/MAE.
  """

  train: obs_lib.SparseObservations
  test: obs_lib.SparseObservations


class SyntheticProblem(NamedTuple):
  """A synthetic low-rank + outliers problem.

  Attributes:
    train: observed (noisy, corrupted) entries.
    test: unobserved entries with their clean values [U Vᵀ]_ij.
    u: (m, r) ground-truth factor.
    v: (n, r) ground-truth factor.
    outlier_mask: bool[|Ω|], which training entries were corrupted.
  """

  train: obs_lib.SparseObservations
  test: obs_lib.SparseObservations
  u: jax.Array
  v: jax.Array
  outlier_mask: jax.Array


def _parse(path, sep: str, rating_range: tuple[float, float]) -> Ratings:
  """Parses ``user<sep>item<sep>rating<sep>timestamp`` lines; every error names ``path:line``."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"ratings file not found: {path}")
  low, high = rating_range
  shown = "<TAB>" if sep == "\t" else sep
  fmt = shown.join(("user", "item", "rating", "timestamp"))
  rows = []
  with open(path, encoding="latin-1") as f:
    for lineno, line in enumerate(f, 1):
      line = line.strip()
      if not line:
        continue
      parts = line.split(sep) if sep != "\t" else line.split()
      if len(parts) != 4:
        raise ValueError(f"{path}:{lineno}: expected 4 fields {fmt}, got {len(parts)} in "
                         f"{line!r}")
      try:
        user, item, rating, _ = int(parts[0]), int(parts[1]), float(parts[2]), int(parts[3])
      except ValueError as e:
        raise ValueError(f"{path}:{lineno}: cannot parse {line!r}: {e}") from None
      if not np.isfinite(rating) or not low <= rating <= high:
        raise ValueError(f"{path}:{lineno}: rating must be a number in [{low:g}, {high:g}], got "
                         f"{parts[2]!r}")
      if user < 1 or item < 1:
        raise ValueError(f"{path}:{lineno}: user and item ids must be positive, got {line!r}")
      rows.append((user, item, rating))
  if not rows:
    raise ValueError(f"{path}: no ratings found")
  arr = np.asarray(rows, dtype=np.float64)
  return Ratings(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2])


def load_ratings_tsv(path, rating_range: tuple[float, float] = (1.0, 5.0)) -> Ratings:
  """Reads a MovieLens-100K file (``u.data``, ``u1.base``, ``u1.test``): tab-separated.

  Every line must have the format's 4 fields ``user item rating timestamp`` (integers but the
  rating), with a finite rating in ``rating_range`` (1–5 stars).

  Raises:
    FileNotFoundError: missing file.
    ValueError: naming ``path:line``, for a wrong field count, an unparsable field, a NaN/inf or
      out-of-range rating or a non-positive id; or an empty file.
  """
  return _parse(path, "\t", rating_range)


def load_ratings_dat(path, rating_range: tuple[float, float] = (0.5, 5.0)) -> Ratings:
  """Reads a MovieLens-1M/10M ``ratings.dat`` file: ``UserID::MovieID::Rating::Timestamp``.

  ML-1M ratings are whole stars 1–5; ML-10M has half stars down to 0.5, hence the default
  ``rating_range`` (pass ``(1, 5)`` for ML-1M). Errors as in :func:`load_ratings_tsv`.
  """
  return _parse(path, "::", rating_range)


def index_ratings(*parts: Ratings, dtype=jnp.float32) -> tuple[list[obs_lib.SparseObservations],
                                                              tuple[int, int]]:
  """Maps raw ids of several rating sets to shared contiguous 0-based indices.

  Users and items are indexed over the union of ``parts`` so that a train and a test set index
  the same matrix. Returns the observations (in order) and the matrix shape (m, n).
  """
  if not parts:
    raise ValueError("index_ratings needs at least one Ratings")
  users = np.unique(np.concatenate([p.users for p in parts]))
  items = np.unique(np.concatenate([p.items for p in parts]))
  shape = (int(users.size), int(items.size))
  out = []
  for p in parts:
    out.append(obs_lib.sparse_observations(np.searchsorted(users, p.users).astype(np.int32),
                                           np.searchsorted(items, p.items).astype(np.int32),
                                           p.ratings, shape, dtype=dtype))
  return out, shape


def load_movielens_100k(data_dir=None, split: str = "u1", dtype=jnp.float32) -> SplitData:
  """MovieLens-100K ``<split>.base`` / ``<split>.test`` (e.g. ``u1``) as a :class:`SplitData`.

  Args:
    data_dir: the ``movielens-100k`` folder or a root containing it (default: ``JAXPAPERS_DATA``
      or ``../shared/data``).
    split: the GroupLens split prefix (``u1`` … ``u5``, ``ua``, ``ub``).
    dtype: floating dtype of the values.
  """
  folder = data_lib.find_dataset("movielens-100k", [f"{split}.base", f"{split}.test"], data_dir)
  train = load_ratings_tsv(folder / f"{split}.base")
  test = load_ratings_tsv(folder / f"{split}.test")
  (tr, te), _ = index_ratings(train, test, dtype=dtype)
  return SplitData(tr, te)


ML100K_FOLD_SIZE = 20000


def load_movielens_100k_folds(data_dir=None, num_folds: int = 5,
                              dtype=jnp.float32) -> list[SplitData]:
  """The 5-fold cross-validation splits u1 … u5 of MovieLens-100K, rebuilt from ``u.data``.

  GroupLens ship ``u1.base``/``u1.test`` … ``u5.base``/``u5.test`` (80 %/20 %, disjoint test
  sets) and the script that makes them, ``mku.sh``: fold k's test set is lines
  20000 (k − 1) + 1 … 20000 k of ``u.data`` and its base the other 80 000 lines (README of the
  ml-100k distribution). Only ``u.data`` and fold 1 are in ``../shared/data``, so every fold is
  rebuilt from ``u.data`` that way; fold 1's (user, item) pairs equal the shipped ``u1.test``
  (tested). All folds index the same 943 × 1682 matrix (users and items of ``u.data``).

  Args:
    data_dir: as :func:`load_movielens_100k`.
    num_folds: how many of the 5 folds (the first ``num_folds``), 1 … 5.
    dtype: floating dtype of the values.
  """
  if not isinstance(num_folds, (int, np.integer)) or not 1 <= num_folds <= 5:
    raise ValueError(f"num_folds must be an int in 1..5, got {num_folds!r}")
  folder = data_lib.find_dataset("movielens-100k", ["u.data"], data_dir)
  path = folder / "u.data"
  every = load_ratings_tsv(path)
  n = every.ratings.shape[0]
  if n != 5 * ML100K_FOLD_SIZE:
    raise ValueError(f"{path}: expected {5 * ML100K_FOLD_SIZE} ratings (MovieLens-100K), got {n}")
  users, items = np.unique(every.users), np.unique(every.items)
  shape = (int(users.size), int(items.size))

  def obs(idx):
    return obs_lib.sparse_observations(
        np.searchsorted(users, every.users[idx]).astype(np.int32),
        np.searchsorted(items, every.items[idx]).astype(np.int32),
        every.ratings[idx], shape, dtype=dtype)

  folds = []
  for k in range(num_folds):
    test = np.zeros(n, bool)
    test[k * ML100K_FOLD_SIZE:(k + 1) * ML100K_FOLD_SIZE] = True
    folds.append(SplitData(obs(np.flatnonzero(~test)), obs(np.flatnonzero(test))))
  return folds


def split_ratings(key, ratings: Ratings, train_fraction: float = 0.5,
                  dtype=jnp.float32) -> SplitData:
  """Random train/test split of one rating file (used for MovieLens-1M/10M).

  Args:
    key: ``jax.random.key`` choosing the permutation.
    ratings: the raw ratings.
    train_fraction: share of ratings used for training, in (0, 1).
    dtype: floating dtype of the values.
  """
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
  n = ratings.ratings.shape[0]
  perm = np.asarray(jax.random.permutation(key, n))
  k = int(round(train_fraction * n))
  if k == 0 or k == n:
    raise ValueError(f"train_fraction={train_fraction} leaves an empty split of {n} ratings")
  tr = Ratings(*(a[perm[:k]] for a in ratings))
  te = Ratings(*(a[perm[k:]] for a in ratings))
  (tr, te), _ = index_ratings(tr, te, dtype=dtype)
  return SplitData(tr, te)


INJECTION_MODES = ("uniform", "opposite")


def inject_outliers(key, obs: obs_lib.SparseObservations, ratio: float,
                    low: float, high: float, mode: str = "uniform"
                    ) -> tuple[obs_lib.SparseObservations, jax.Array]:
  """Corrupts a random ``ratio`` of the observed values of a bounded scale [low, high].

  Modes:

  * ``"uniform"``: the value is replaced by a draw from U[low, high]. On a 1–5 rating scale this
    moves a rating by only ~1.3 on average (often less than a rating's natural noise), so these
    are mostly not outliers in the robust-statistics sense.
  * ``"opposite"``: the value is sent to the far end of the scale (``low`` if it is at least the
    midpoint, ``high`` otherwise): the largest error a bounded rating can carry (e.g. a rating
    entered on an inverted scale), a gross outlier of 2–4 stars on MovieLens.

  Returns:
    The corrupted observations and the bool[|Ω|] mask of corrupted entries.
  """
  if not isinstance(obs, obs_lib.SparseObservations):
    raise TypeError(f"obs must be SparseObservations, got {type(obs).__name__}")
  if not 0.0 <= ratio <= 1.0:
    raise ValueError(f"ratio must be in [0, 1], got {ratio}")
  if not high > low:
    raise ValueError(f"need high > low, got low={low}, high={high}")
  validation.check_in(mode, "mode", INJECTION_MODES)
  k1, k2 = jax.random.split(key)
  nnz = obs.values.shape[0]
  num = int(round(ratio * nnz))
  chosen = jax.random.permutation(k1, nnz)[:num]
  mask = jnp.zeros((nnz,), bool).at[chosen].set(True)
  if mode == "uniform":
    noise = jax.random.uniform(k2, (nnz,), obs.values.dtype, low, high)
  else:
    noise = jnp.where(obs.values >= 0.5 * (low + high), low, high).astype(obs.values.dtype)
  values = jnp.where(mask, noise, obs.values)
  return obs_lib.SparseObservations(obs.rows, obs.cols, values, obs.shape), mask


def holdout(key, obs: obs_lib.SparseObservations, fraction: float
            ) -> tuple[obs_lib.SparseObservations, obs_lib.SparseObservations]:
  """Splits observations at random into (kept, held out ``fraction``) of the same m × n matrix.

  Used to choose λ on a validation set carved out of the training ratings.
  """
  if not isinstance(obs, obs_lib.SparseObservations):
    raise TypeError(f"obs must be SparseObservations, got {type(obs).__name__}")
  nnz = obs.values.shape[0]
  num = int(round(fraction * nnz))
  if not 0 < num < nnz:
    raise ValueError(f"fraction={fraction} leaves an empty part of {nnz} observations")
  perm = np.asarray(jax.random.permutation(key, nnz))
  keep, held = np.sort(perm[num:]), np.sort(perm[:num])

  def part(idx):
    return obs_lib.SparseObservations(obs.rows[idx], obs.cols[idx], obs.values[idx], obs.shape)

  return part(keep), part(held)


def shift(obs: obs_lib.SparseObservations, offset) -> obs_lib.SparseObservations:
  """The observations with ``offset`` subtracted from every value (rating centring)."""
  return obs_lib.SparseObservations(obs.rows, obs.cols, obs.values - offset, obs.shape)


def _unique_pairs(rng: np.random.Generator, m: int, n: int, count: int,
                  exclude: np.ndarray | None = None) -> np.ndarray:
  """``count`` distinct flat indices i·n + j (not in ``exclude``), drawn without forming m × n."""
  total = m * n
  chosen = np.empty((0,), np.int64)
  while chosen.size < count:
    need = count - chosen.size
    draw = rng.integers(0, total, size=int(need * 1.2) + 16, dtype=np.int64)
    draw = np.unique(np.concatenate([chosen, draw]))
    if exclude is not None:
      draw = draw[~np.isin(draw, exclude, assume_unique=False)]
    chosen = draw
  return rng.permutation(chosen)[:count] if chosen.size > count else chosen


def synthetic(key, m: int, n: int, rank: int = 5, *, density: float | None = None,
              noise_std: float = 0.1, outlier_ratio: float = 0.0, outlier_magnitude: float = 10.0,
              num_test: int | None = None, dtype=jnp.float32) -> SyntheticProblem:
  """A synthetic robust-MF problem: X = U Vᵀ + noise on Ω, a share of Ω corrupted by outliers.

  U ∈ R^{m×r}, V ∈ R^{n×r} have N(0, 1) entries. Ω holds ``density · m · n`` distinct entries
  (default density min(0.5, 15 log(m) / m)), each observed with N(0, noise_std²) noise; a
  random ``outlier_ratio`` of Ω additionally gets U[−outlier_magnitude, outlier_magnitude]
  added. The test set is ``num_test`` unobserved entries (default min(|Ω|, m n − |Ω|)) with their
  clean values. Index sampling is done on the host without any m × n array.

  Args:
    key: ``jax.random.key``.
    m, n: matrix size.
    rank: ground-truth rank r.
    density: observed fraction |Ω| / (m n).
    noise_std: inlier Gaussian noise standard deviation.
    outlier_ratio: share of observed entries that are outliers, in [0, 1).
    outlier_magnitude: outliers add U[−a, a] with a = ``outlier_magnitude``.
    num_test: number of held-out test entries.
    dtype: floating dtype.

  Raises:
    ValueError: bad sizes, rank, density or ratio.
  """
  for name, val in (("m", m), ("n", n), ("rank", rank)):
    if not isinstance(val, (int, np.integer)) or val <= 0:
      raise ValueError(f"{name} must be a positive int, got {val!r}")
  if rank > min(m, n):
    raise ValueError(f"rank must be <= min(m, n) = {min(m, n)}, got {rank}")
  if density is None:
    density = min(0.5, 15.0 * np.log(max(m, 2)) / m)
  if not 0.0 < density < 1.0:
    raise ValueError(f"density must be in (0, 1), got {density}")
  if not 0.0 <= outlier_ratio < 1.0:
    raise ValueError(f"outlier_ratio must be in [0, 1), got {outlier_ratio}")
  validation.check_positive(noise_std, "noise_std", allow_zero=True)
  ku, kv, kidx, knoise, kout, kmag = jax.random.split(key, 6)
  u = jax.random.normal(ku, (m, rank), dtype)
  v = jax.random.normal(kv, (n, rank), dtype)
  seed = np.asarray(jax.random.randint(kidx, (4,), 0, np.iinfo(np.int32).max))
  rng = np.random.default_rng(seed)
  nnz = max(1, int(round(density * m * n)))
  train_idx = np.sort(_unique_pairs(rng, m, n, nnz))
  if num_test is None:
    num_test = min(nnz, m * n - nnz)
  num_test = min(int(num_test), m * n - nnz)
  if num_test < 1:
    raise ValueError("no unobserved entries are left for the test set")
  test_idx = np.sort(_unique_pairs(rng, m, n, num_test, exclude=train_idx))
  rows, cols = (train_idx // n).astype(np.int32), (train_idx % n).astype(np.int32)
  trows, tcols = (test_idx // n).astype(np.int32), (test_idx % n).astype(np.int32)
  clean = jnp.sum(u[rows] * v[cols], axis=-1)
  noisy = clean + noise_std * jax.random.normal(knoise, clean.shape, dtype)
  num_out = int(round(outlier_ratio * nnz))
  out_idx = jax.random.permutation(kout, nnz)[:num_out]
  outlier_mask = jnp.zeros((nnz,), bool).at[out_idx].set(True)
  kick = jax.random.uniform(kmag, (nnz,), dtype, -outlier_magnitude, outlier_magnitude)
  values = jnp.where(outlier_mask, noisy + kick, noisy)
  train = obs_lib.SparseObservations(jnp.asarray(rows), jnp.asarray(cols), values, (m, n))
  test_vals = jnp.sum(u[trows] * v[tcols], axis=-1)
  test = obs_lib.SparseObservations(jnp.asarray(trows), jnp.asarray(tcols), test_vals, (m, n))
  return SyntheticProblem(train, test, u, v, outlier_mask)
