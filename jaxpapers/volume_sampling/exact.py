"""Closed forms and brute-force enumeration of the sampling laws (NumPy, float64, small ``n``).

Reference: Dereziński, Warmuth, Hsu. "Leveraged volume sampling for linear regression". NeurIPS 2018.

Identities (Cauchy-Binet):

* volume sampling: ``sum_{|S|=k} det(X_S^T X_S) = C(n-d, k-d) det(X^T X)``; marginals
  ``P(i in S) = l_i + (1 - l_i)(k - d)/(n - d)``.
* q-rescaled volume sampling over sequences ``pi in [n]^k``:
  ``sum_pi det(sum_t x_{pi_t} x_{pi_t}^T / q_{pi_t}) prod_t q_{pi_t} = k!/(k-d)! det(X^T X)`` for any
  ``q``; ``P(pi_t = j) = l_j / k + (1 - d/k) q_j``, i.e. ``l_j / d`` for leveraged ``q = l / d``.
* ``k = d``: ``E[L(w_S)] = (d + 1) L*`` under volume sampling.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _as_design(X) -> np.ndarray:
  X = np.asarray(X, dtype=np.float64)
  if X.ndim != 2 or X.shape[0] < X.shape[1]:
    raise ValueError(f"X must be an (n, d) matrix with n >= d, got shape {X.shape}")
  if not np.all(np.isfinite(X)):
    raise ValueError("X contains NaN or inf entries")
  return X


def leverage_scores_np(X) -> np.ndarray:
  """Exact leverage scores in float64 (NumPy)."""
  X = _as_design(X)
  return np.einsum("ij,ji->i", X, np.linalg.solve(X.T @ X, X.T))


def volume_normalizer(X, k: int) -> float:
  """``C(n-d, k-d) det(X^T X)``, the normaliser of size-``k`` volume sampling."""
  X = _as_design(X)
  n, d = X.shape
  return math.comb(n - d, k - d) * float(np.linalg.det(X.T @ X))


def leveraged_normalizer(X, k: int) -> float:
  """``k!/(k-d)! det(X^T X)``, the normaliser of q-rescaled volume sampling (any ``q``)."""
  X = _as_design(X)
  d = X.shape[1]
  return math.perm(k, d) * float(np.linalg.det(X.T @ X))


def enumerate_volume(X, k: int) -> tuple[np.ndarray, np.ndarray]:
  """All ``C(n, k)`` subsets (rows of a ``(C, k)`` array) and their unnormalised ``det(X_S^T X_S)``."""
  X = _as_design(X)
  n = X.shape[0]
  subsets = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
  xs = X[subsets]
  return subsets, np.linalg.det(np.einsum("cki,ckj->cij", xs, xs))


def enumerate_leveraged(X, k: int, q=None) -> tuple[np.ndarray, np.ndarray]:
  """All ``n^k`` sequences and their unnormalised ``det(sum_t x x^T / q) prod_t q``.

  Args:
    X: ``(n, d)`` design.
    k: sequence length.
    q: ``(n,)`` positive probabilities; leverage ``l / d`` when ``None``.
  """
  X = _as_design(X)
  n, d = X.shape
  if q is None:
    q = leverage_scores_np(X) / d
  q = np.asarray(q, dtype=np.float64)
  seqs = np.array(list(itertools.product(range(n), repeat=k)), dtype=np.int64)
  rows = X[seqs] / np.sqrt(q[seqs])[..., None]
  dets = np.linalg.det(np.einsum("cki,ckj->cij", rows, rows))
  return seqs, dets * np.prod(q[seqs], axis=1)


def volume_marginals(X, k: int) -> np.ndarray:
  """``P(i in S) = l_i + (1 - l_i)(k - d)/(n - d)`` under size-``k`` volume sampling."""
  X = _as_design(X)
  n, d = X.shape
  lev = leverage_scores_np(X)
  return lev if n == d else lev + (1.0 - lev) * (k - d) / (n - d)


def leveraged_marginals(X, k: int, q=None) -> np.ndarray:
  """``P(pi_t = j) = l_j / k + (1 - d/k) q_j`` (``= l_j / d`` for leveraged ``q``)."""
  X = _as_design(X)
  d = X.shape[1]
  lev = leverage_scores_np(X)
  q = lev / d if q is None else np.asarray(q, dtype=np.float64)
  return lev / k + (1.0 - d / k) * q


def lower_bound_ratio(n: int, d: int, k: int) -> float:
  """``1 + (n - k)/(n - d)``: volume sampling's expected loss ratio on the lower-bound instance."""
  return 1.0 + (n - k) / (n - d)


def lower_bound_expected_ratio(n: int, d: int, k: int, eps: float) -> float:
  """Exact ``E[L(w_S)]/L*`` of size-``k`` volume sampling on ``data.lower_bound_instance(n, d, eps)``.

  Along ``e_d`` there are ``m = n - d + 1`` rows (one heavy ``e_d`` with response 1, ``m - 1``
  rows ``eps e_d`` with response 0) of which volume sampling keeps ``k' = k - d + 1`` with
  probability ``∝ sum_{i in S} x_{i,d}^2``: the heavy row is in ``S`` with weight
  ``C(m-1, k'-1)(1 + (k'-1) eps^2)`` (then ``w_d = 1/(1 + (k'-1) eps^2)``) and out with weight
  ``C(m-1, k') k' eps^2`` (then ``w_d = 0`` and ``L = 1``), while
  ``L* = (m-1) eps^2 / (1 + (m-1) eps^2)``.  Tends to :func:`lower_bound_ratio` as ``eps -> 0``.
  """
  if not (1 <= d <= k <= n and n > d):
    raise ValueError(f"need 1 <= d <= k <= n and n > d, got n={n}, d={d}, k={k}")
  m, kk, e2 = n - d + 1, k - d + 1, float(eps) ** 2
  w_in = math.comb(m - 1, kk - 1) * (1.0 + (kk - 1) * e2)
  w_out = math.comb(m - 1, kk) * kk * e2
  wd = 1.0 / (1.0 + (kk - 1) * e2)
  loss_in = (wd - 1.0) ** 2 + (m - 1) * e2 * wd ** 2
  opt = (m - 1) * e2 / (1.0 + (m - 1) * e2)
  return (w_in * loss_in + w_out * 1.0) / (w_in + w_out) / opt


def enumerate_ridge_volume(X, k: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
  """All ``C(n, k)`` subsets and their unnormalised ``det(X_S^T X_S + lam I)`` (float64)."""
  X = np.asarray(X, dtype=np.float64)
  if X.ndim != 2 or not np.all(np.isfinite(X)):
    raise ValueError(f"X must be a finite (n, d) matrix, got shape {X.shape}")
  n, d = X.shape
  subsets = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
  xs = X[subsets]
  gram = np.einsum("cki,ckj->cij", xs, xs) + lam * np.eye(d)
  return subsets, np.linalg.det(gram)
