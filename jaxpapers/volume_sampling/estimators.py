"""Least-squares estimators from a sample of labelled rows, and the losses they are judged by.

Reference: Dereziński, Warmuth, Hsu. "Leveraged volume sampling for linear regression". NeurIPS 2018.

All estimators are ``w = argmin_w sum_t weights_t (x_{i_t}^T w - y_{i_t})^2 = (W^{1/2} X_S)^+ W^{1/2} y_S``
(minimum-norm when the sampled rows do not span ``R^d``):

* volume sampling: unit weights, ``w = X_S^+ y_S`` (unbiased: ``E[w] = w*``);
* leveraged volume sampling: ``weights = 1 / q`` (unbiased for any ``q``);
* i.i.d. leverage-score sampling: ``weights = 1 / (k q)`` (the standard rescaled, biased estimator).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation


def _check_xy(X, y):
  validation.check_array(X, "X", ndim=2, dtype_kind="f", finite=True)
  validation.check_array(y, "y", ndim=1, dtype_kind="f", finite=True)
  if y.shape[0] != X.shape[0]:
    raise ValueError(f"y must have one entry per row of X ({X.shape[0]}), got shape {y.shape}")


def least_squares_estimate(X: jax.Array, y: jax.Array, indices: jax.Array,
                           weights: jax.Array | None = None) -> jax.Array:
  """Weighted least squares on the sampled rows (only ``y[indices]`` is read).

  Args:
    X: ``(n, d)`` float design.
    y: ``(n,)`` responses.
    indices: ``(k,)`` int row indices (repeats allowed).
    weights: ``(k,)`` non-negative weights; ones when ``None``.

  Returns:
    ``(d,)`` minimum-norm minimiser of ``sum_t weights_t (x_{i_t}^T w - y_{i_t})^2``.

  Raises:
    ValueError: ``indices`` empty or outside ``[0, n)`` (JAX would clamp them into range and
      return a finite wrong estimate), non-finite inputs, mismatched shapes.
  """
  _check_xy(X, y)
  validation.check_array(indices, "indices", ndim=1, dtype_kind="iu")
  n = X.shape[0]
  if validation.is_concrete(indices):
    arr = np.asarray(indices)
    if arr.size == 0:
      raise ValueError("indices must not be empty")
    out = (arr < 0) | (arr >= n)
    if out.any():
      pos = int(np.flatnonzero(out)[0])
      raise ValueError(f"indices must lie in [0, {n}) (the rows of X), got {int(arr[pos])} at "
                       f"position {pos}")
  k = indices.shape[0]
  if weights is None:
    weights = jnp.ones((k,), X.dtype)
  validation.check_array(weights, "weights", shape=(k,), dtype_kind="f", finite=True)
  sw = jnp.sqrt(weights)[:, None]
  xs = X[indices] * sw
  ys = y[indices] * sw[:, 0]
  return jnp.linalg.pinv(xs) @ ys


def square_loss(X: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
  """Total square loss ``L(w) = ||X w - y||^2`` over all ``n`` points."""
  _check_xy(X, y)
  validation.check_array(w, "w", shape=(X.shape[1],), dtype_kind="f")
  r = X @ w - y
  return jnp.sum(r * r)


def optimal_weights(X: jax.Array, y: jax.Array) -> jax.Array:
  """The full-data least-squares solution ``w* = X^+ y``."""
  _check_xy(X, y)
  return jnp.linalg.lstsq(X, y)[0]


def optimal_loss(X: jax.Array, y: jax.Array) -> jax.Array:
  """``L* = min_w ||X w - y||^2``."""
  return square_loss(X, y, optimal_weights(X, y))


def loss_ratio(X: jax.Array, y: jax.Array, w: jax.Array, opt_loss: jax.Array | None = None
               ) -> jax.Array:
  """``L(w) / L*``, the paper's figure of merit (``>= 1``)."""
  if opt_loss is None:
    opt_loss = optimal_loss(X, y)
  return square_loss(X, y, w) / opt_loss
