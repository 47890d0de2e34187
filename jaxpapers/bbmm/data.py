"""Regression data for the BBMM experiments: UCI ``.mat`` files, CSV, and synthetic GP-like data.

The exact-GP benchmarks of Gardner et al. (NeurIPS 2018) and Wang et al. (NeurIPS 2019) use UCI
regression sets stored as MATLAB files. Two layouts occur and both are read here:

* Wilson/GPyTorch style: one matrix ``data`` of shape ``(n, d + 1)`` whose last column is ``y``;
* ``X`` ``(n, d)`` and ``Y`` ``(n, 1)`` matrices.

Splits are random (the papers use 64/16/20 train/validation/test, or 90/10), and inputs and targets
are z-scored with training-split statistics.
"""

from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import data as data_lib
from jaxpapers._src import validation

DATASET_FOLDER = "uci-gp-mat"
UCI_FILES = {
    "pol": "pol_wilson.mat",
    "pol_delve": "pol_delve.mat",
    "elevators": "elevators.mat",
    "kin40k": "kin40k.mat",
    "puma32": "puma32.mat",
    "yacht": "yacht_wilson.mat",
}


class Split(NamedTuple):
  """A train/validation/test split (NumPy float arrays)."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def load_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Reads a UCI regression ``.mat`` file into ``(X (n, d) float64, y (n,) float64)``.

  Raises:
    ValueError: if the file has neither a ``data`` matrix nor ``X``/``Y`` matrices, or rows
      disagree, or values are not finite.
  """
  from scipy import io

  try:
    mat = io.loadmat(os.fspath(path))
  except FileNotFoundError:
    raise
  except Exception as e:  # noqa: BLE001 - scipy raises ValueError/TypeError/... for broken files
    raise ValueError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from e
  if "data" in mat:
    arr = np.asarray(mat["data"], np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
      raise ValueError(f"{path}: 'data' must be an (n, d + 1) matrix, got shape {arr.shape}")
    x, y = arr[:, :-1], arr[:, -1]
  elif "X" in mat and "Y" in mat:
    x = np.asarray(mat["X"], np.float64)
    y = np.asarray(mat["Y"], np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
      raise ValueError(f"{path}: X {x.shape} and Y ({y.shape[0]} values) disagree")
  else:
    keys = sorted(k for k in mat if not k.startswith("__"))
    raise ValueError(f"{path}: expected a 'data' matrix or 'X' and 'Y' matrices, found {keys}")
  if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
    raise ValueError(f"{path}: contains NaN or inf values")
  return x, y


def load_csv(path: str | os.PathLike, *, target_column: int = -1, delimiter: str = ","
             ) -> tuple[np.ndarray, np.ndarray]:
  """Reads a numeric CSV (an optional non-numeric header row is skipped) into ``(X, y)``."""
  path = pathlib.Path(path)
  with open(path, encoding="utf-8") as f:
    first = f.readline()
  try:
    [float(v) for v in first.strip().split(delimiter)]
    skip = 0
  except ValueError:
    skip = 1
  arr = np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=np.float64)
  if arr.shape[1] < 2:
    raise ValueError(f"{path}: need at least 2 columns (inputs and a target), got {arr.shape[1]}")
  if not -arr.shape[1] <= target_column < arr.shape[1]:
    raise ValueError(f"target_column {target_column} out of range for {arr.shape[1]} columns")
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"{path}: contains NaN or inf values")
  y = arr[:, target_column]
  x = np.delete(arr, target_column % arr.shape[1], axis=1)
  return x, y


def load_uci(name: str, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Loads one of :data:`UCI_FILES` from ``<data_dir or shared data>/uci-gp-mat/``."""
  validation.check_in(name, "name", list(UCI_FILES))
  folder = data_lib.find_dataset(DATASET_FOLDER, [UCI_FILES[name]], data_dir)
  return load_mat(folder / UCI_FILES[name])


def split(key: jax.Array, x: np.ndarray, y: np.ndarray,
          fractions: tuple[float, float, float] = (0.64, 0.16, 0.20),
          max_train: int | None = None) -> Split:
  """Random train/validation/test split.

  Args:
    key: PRNG key for the permutation.
    x: ``(n, d)`` inputs; y: ``(n,)`` targets.
    fractions: train/validation/test fractions (summing to 1).
    max_train: optional cap on the training-set size (the rest of the training part is dropped).
  """
  x = np.asarray(x)
  y = np.asarray(y)
  if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
    raise ValueError(f"x must be (n, d) and y (n,) with equal n, got {x.shape} and {y.shape}")
  if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
    raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
  n = x.shape[0]
  perm = np.asarray(jax.random.permutation(key, n))
  n_tr = int(round(fractions[0] * n))
  n_va = int(round(fractions[1] * n))
  tr, va, te = perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]
  if max_train is not None:
    tr = tr[:max_train]
  return Split(x[tr], y[tr], x[va], y[va], x[te], y[te])


def normalize(s: Split) -> tuple[Split, dict]:
  """Z-scores inputs and targets with training statistics (constant columns are left centred)."""
  mx = s.x_train.mean(0)
  sx = s.x_train.std(0)
  sx = np.where(sx > 0, sx, 1.0)
  my = s.y_train.mean()
  sy = s.y_train.std() if s.y_train.std() > 0 else 1.0
  f = lambda x: (x - mx) / sx
  g = lambda y: (y - my) / sy
  out = Split(f(s.x_train), g(s.y_train), f(s.x_val), g(s.y_val), f(s.x_test), g(s.y_test))
  return out, {"x_mean": mx, "x_std": sx, "y_mean": my, "y_std": sy}


def synthetic(key: jax.Array, n: int, dim: int = 2, *, lengthscale: float = 0.3,
              noise: float = 0.01, num_features: int = 1024, dtype=jnp.float32
              ) -> tuple[jax.Array, jax.Array]:
  """Inputs uniform on ``[0, 1]^d`` and targets from an (approximate) RBF-GP draw plus noise.

  The latent function is a random-Fourier-feature draw ``f(x) = √(2/F) Σ w_f cos(ω_fᵀ x + b_f)``
  with ``ω_f ~ N(0, ℓ⁻² I)``, which converges to a GP with the unit-scale RBF kernel as ``F``
  grows; ``y = f(x) + ε``, ``ε ~ N(0, noise)``.
  """
  if n < 1 or dim < 1 or num_features < 1:
    raise ValueError(f"n, dim and num_features must be >= 1, got {n}, {dim}, {num_features}")
  validation.check_positive(lengthscale, "lengthscale")
  validation.check_positive(noise, "noise", allow_zero=True)
  kx, kw, kb, ka, ke = jax.random.split(key, 5)
  x = jax.random.uniform(kx, (n, dim), dtype)
  omega = jax.random.normal(kw, (dim, num_features), dtype) / lengthscale
  phase = jax.random.uniform(kb, (num_features,), dtype, 0.0, 2 * np.pi)
  w = jax.random.normal(ka, (num_features,), dtype)
  f = jnp.sqrt(2.0 / num_features) * jnp.cos(x @ omega + phase) @ w
  y = f + jnp.sqrt(noise) * jax.random.normal(ke, (n,), dtype)
  return x, y
