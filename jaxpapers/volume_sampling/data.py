"""Data for the volume-sampling experiments: LIBSVM/CSV loaders, design preparation, synthetic designs.

Reference: Dereziński, Warmuth, Hsu. "Leveraged volume sampling for linear regression". NeurIPS 2018
(experiments on LIBSVM regression data sets: cpusmall, cadata, abalone, housing, bodyfat, ...).

Real copies live in ``../shared/data/libsvm-regression/`` (see its README.txt); only
``housing_scale`` is in svmlight format, the others are the raw originals LIBSVM built its
versions from and are read by :func:`load_csv` with per-data-set settings (:data:`DATASETS`).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import data as data_lib

FOLDER = "libsvm-regression"


def load_svmlight(path: str | os.PathLike, n_features: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Reads a LIBSVM/svmlight regression file (``y idx:val ...``) into dense float64 arrays.

  Args:
    path: the file.
    n_features: number of feature columns (default: the largest index in the file).

  Returns:
    ``(X, y)`` with ``X`` of shape ``(n, n_features)``; missing entries are 0.
  """
  from sklearn.datasets import load_svmlight_file

  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"path: no such svmlight file {path}")
  try:
    X, y = load_svmlight_file(str(path), n_features=n_features, dtype=np.float64)
  except (ValueError, UnicodeDecodeError) as e:
    raise ValueError(f"{path}{_first_bad_svmlight_line(path)}: not a valid svmlight file ({e})"
                     ) from e
  X, y = np.asarray(X.todense()), np.asarray(y, dtype=np.float64)
  if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
    raise ValueError(f"{path}: contains NaN or inf values")
  return X, y


def _first_bad_svmlight_line(path: pathlib.Path) -> str:
  """``":<line>"`` of the first line that does not parse as ``y idx:val ...`` ("" if none)."""
  try:
    with open(path, "rb") as f:
      for i, raw in enumerate(f, 1):
        text = raw.decode("utf-8").split("#", 1)[0].split()
        if not text:
          continue
        float(text[0])
        for tok in text[1:]:
          idx, val = tok.split(":")
          if int(idx) < 0 or not np.isfinite(float(val)):
            return f":{i}"
  except (ValueError, UnicodeDecodeError):
    return f":{i}"
  return ""


def load_csv(path: str | os.PathLike, *, target: int | str, delimiter: str = ",",
             header: bool = True, max_rows: int | None = None, drop: tuple = (),
             categorical: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Reads a delimited text file (UCI/StatLib/Delve style) into float64 ``(X, y)``.

  Args:
    path: the file (CRLF and quoted fields are handled).
    target: the response column, by index or by header name.
    delimiter: field separator.
    header: whether the first line names the columns.
    max_rows: keep only the first ``max_rows`` data rows (e.g. 8192 for cpusmall).
    drop: columns (indices or names) left out of ``X`` besides ``target``.
    categorical: ``{column: {label: code}}`` numeric codes for categorical columns.

  Returns:
    ``(X, y)``: the remaining columns in file order, and the target.

  Raises:
    ValueError: unknown column names, ragged rows or non-numeric entries (naming row and column).
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"path: no such file {path}")
  try:
    with open(path, newline="", encoding="utf-8") as f:
      rows = [r for r in csv.reader(f, delimiter=delimiter) if r and any(c.strip() for c in r)]
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not UTF-8 text at byte {e.start} ({e.reason})") from e
  except csv.Error as e:
    raise ValueError(f"{path}: malformed delimited text ({e})") from e
  names = [c.strip() for c in rows[0]] if header else None
  body = rows[1:] if header else rows
  if max_rows is not None:
    body = body[:max_rows]
  if not body:
    raise ValueError(f"path: {path} has no data rows")
  width = len(body[0])

  def col(c):
    if isinstance(c, str):
      if names is None or c not in names:
        raise ValueError(f"column {c!r} not in header {names} of {path}")
      return names.index(c)
    if not -width <= c < width:
      raise ValueError(f"column index {c} out of range for {width} columns in {path}")
    return c % width

  t = col(target)
  dropped = {col(c) for c in drop} | {t}
  cats = {col(c): m for c, m in (categorical or {}).items()}
  out = np.empty((len(body), width), dtype=np.float64)
  for i, row in enumerate(body):
    if len(row) != width:
      raise ValueError(f"row {i + 1} of {path} has {len(row)} fields, expected {width}")
    for j, v in enumerate(row):
      v = v.strip()
      if j in cats:
        if v not in cats[j]:
          raise ValueError(f"row {i + 1}, column {j} of {path}: unknown category {v!r}")
        out[i, j] = cats[j][v]
      elif j in dropped and j != t:
        out[i, j] = np.nan
      else:
        try:
          out[i, j] = float(v)
        except ValueError:
          raise ValueError(f"row {i + 1}, column {j} of {path}: non-numeric value {v!r}") from None
  keep = [j for j in range(width) if j not in dropped]
  return out[:, keep], out[:, t]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to read one of the LIBSVM regression data sets from its file in ``libsvm-regression/``."""

  file: str
  kind: str  # "svmlight" or "csv"
  n: int
  num_features: int
  csv_kwargs: dict = dataclasses.field(default_factory=dict)


DATASETS: dict[str, DatasetSpec] = {
    # Delve comp-activ cpu-small = LIBSVM cpusmall; the file has 29 duplicated rows appended.
    "cpusmall": DatasetSpec("cpu_small.csv", "csv", 8192, 12,
                            dict(target="usr", delimiter=";", max_rows=8192)),
    # StatLib California housing = LIBSVM cadata.
    "cadata": DatasetSpec("cal_housing.data", "csv", 20640, 8,
                          dict(target="median_house_value")),
    # UCI abalone = LIBSVM abalone (sex coded 1/2/3 for M/F/I as in LIBSVM's version).
    "abalone": DatasetSpec("abalone.data", "csv", 4177, 8,
                           dict(target=8, header=False,
                                categorical={0: {"M": 1.0, "F": 2.0, "I": 3.0}})),
    # LIBSVM housing_scale (Boston housing, svmlight).
    "housing": DatasetSpec("housing_scale", "svmlight", 506, 13),
    # StatLib bodyfat = LIBSVM bodyfat: 14 features (density included), target percent fat.
    "bodyfat": DatasetSpec("bodyfat.csv", "csv", 252, 14,
                           dict(target="percent.fat", drop=(0,))),
}


def load_dataset(name: str, data_dir: str | os.PathLike | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Loads one of :data:`DATASETS` as raw float64 ``(X, y)`` (no intercept, no scaling).

  Args:
    name: one of ``cpusmall``, ``cadata``, ``abalone``, ``housing``, ``bodyfat``.
    data_dir: the ``libsvm-regression`` folder or a root containing it (default: searched by
      :func:`jaxpapers._src.data.find_dataset`).

  Raises:
    ValueError: unknown name, or a file whose shape differs from the data set's known shape.
    DatasetNotFoundError: the folder/file is missing.
  """
  if name not in DATASETS:
    raise ValueError(f"name must be one of {sorted(DATASETS)}, got {name!r}")
  spec = DATASETS[name]
  folder = data_lib.find_dataset(FOLDER, [spec.file], data_dir)
  path = folder / spec.file
  if spec.kind == "svmlight":
    X, y = load_svmlight(path, n_features=spec.num_features)
  else:
    X, y = load_csv(path, **spec.csv_kwargs)
  if X.shape != (spec.n, spec.num_features):
    raise ValueError(f"{path}: expected {spec.n} x {spec.num_features} features, got {X.shape}")
  return X, y


def has_dataset(name: str) -> bool:
  """Whether :func:`load_dataset` can find ``name`` (for test skips)."""
  return data_lib.has_dataset(FOLDER, [DATASETS[name].file])


def prepare_design(X, *, intercept: bool = True, standardize: bool = True) -> np.ndarray:
  """Column-scales ``X`` and optionally appends an all-ones intercept column (float64 NumPy).

  Scaling never changes ``range(X)`` (so loss ratios are unchanged): columns are divided by their
  standard deviation, and centred only when an intercept is added (then ``1`` is in the span).

  Args:
    X: ``(n, p)`` raw features.
    intercept: append a column of ones (``d = p + 1``).
    standardize: scale (and, with an intercept, centre) each column.

  Raises:
    ValueError: NaN/inf entries, or a constant column (collinear with the intercept/zero).
  """
  X = np.asarray(X, dtype=np.float64)
  if X.ndim != 2:
    raise ValueError(f"X must have rank 2, got shape {X.shape}")
  if not np.all(np.isfinite(X)):
    raise ValueError("X contains NaN or inf entries")
  if standardize:
    std = X.std(axis=0)
    if np.any(std == 0):
      raise ValueError(f"X has constant columns {np.flatnonzero(std == 0).tolist()}; drop them")
    X = (X - X.mean(axis=0) if intercept else X) / std
  if intercept:
    X = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
  return X


def lower_bound_instance(n: int, d: int, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
  """A least-squares problem on which volume sampling's loss ratio is ``1 + (n - k)/(n - d)``.

  Rows: ``e_1, ..., e_{d-1}`` (response 0; leverage 1, in every volume sample), one row ``e_d``
  with response 1, and ``n - d`` rows ``eps e_d`` with response 0.  Volume sampling then picks
  ``k - d + 1`` of the ``n - d + 1`` rows along ``e_d`` with probability proportional to the
  sum of their squared norms, so it misses the heavy row only with probability
  ``≈ (n - k) eps^2``; but that miss costs a loss of ``1`` against ``L* ≈ (n - d) eps^2``, so
  ``E[L(w_S)]/L* -> 1 + (n - k)/(n - d)`` as ``eps -> 0`` for every ``k`` (exact value at a given
  ``eps``: :func:`jaxpapers.volume_sampling.exact.lower_bound_expected_ratio`).  The expected
  ratio stays far from 1 until ``k`` nears ``n`` -- the paper's point that volume sampling can be
  worse than i.i.d. leverage-score sampling, which draws the heavy row w.p. ``≈ 1/d`` each time.

  Args:
    n: rows (``n > d``).
    d: columns (``>= 1``).
    eps: scale of the light rows (``0 < eps``; the formula is the ``eps -> 0`` limit).
  """
  if d < 1 or n <= d:
    raise ValueError(f"need n > d >= 1, got n={n}, d={d}")
  if not eps > 0:
    raise ValueError(f"eps must be > 0, got {eps}")
  X = np.zeros((n, d))
  X[: d - 1, : d - 1] = np.eye(d - 1)
  X[d - 1, d - 1] = 1.0
  X[d:, d - 1] = eps
  y = np.zeros(n)
  y[d - 1] = 1.0
  return X, y


def synthetic_regression(key: jax.Array, n: int, d: int, *, spread: float = 1.0,
                         noise: float = 1.0, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
  """A design with very non-uniform leverage (log-normal row scales) and a linear response.

  ``x_i = exp(spread * g_i) z_i`` with ``g_i ~ N(0, 1)``, ``z_i ~ N(0, I_d)`` (a Gaussian scale
  mixture: heavy-tailed rows), ``y = X w0 + noise * N(0, 1)`` with ``w0 ~ N(0, I)``.

  Args:
    key: typed PRNG key.
    n: rows.
    d: columns (``n >= d``).
    spread: standard deviation of the log row scales (0: Gaussian design, uniform-ish leverage).
    noise: response noise scale.
    dtype: float dtype.
  """
  if d < 1 or n < d:
    raise ValueError(f"need n >= d >= 1, got n={n}, d={d}")
  if not spread >= 0:
    raise ValueError(f"spread must be >= 0, got {spread}")
  kz, kg, kw, ke = jax.random.split(key, 4)
  X = jax.random.normal(kz, (n, d), dtype) * jnp.exp(spread * jax.random.normal(kg, (n, 1), dtype))
  w0 = jax.random.normal(kw, (d,), dtype)
  y = X @ w0 + noise * jax.random.normal(ke, (n,), dtype)
  return X, y
