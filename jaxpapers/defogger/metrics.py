"""Defogger metrics as the reference defines them: per-game precision and recall, averaged over
games, then F1 (``op_bt``, ``hid_u``, ``nmy_u``), and count errors."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_array, is_concrete


def _as_bool(a, name):
  """``a`` as booleans; NaN entries (which ``bool`` would turn into True) and a missing games
  axis raise."""
  a = jnp.asarray(a)
  if a.ndim < 1 or a.shape[0] < 1:
    raise ValueError(f"{name} must have a non-empty leading games axis, got shape {a.shape}")
  if np.dtype(a.dtype).kind in "fc" and is_concrete(a) and not bool(np.all(np.isfinite(np.asarray(a)))):
    raise ValueError(f"{name} contains NaN or inf entries (booleans or 0/1 values expected)")
  return a.astype(bool)


def per_game_pr(pred, true, mask=None):
  """Precision and recall of boolean predictions per game (leading axis = games).

  Args:
    pred, true: boolean arrays ``[games, ...]``.
    mask: optional boolean array broadcastable to ``pred`` restricting the counted entries.

  Returns:
    ``(precision, recall)``, each ``[games]``; a game with no predicted (true) positives has
    precision (recall) 0 — so an empty prediction scores F1 = 0 without NaNs.
  """
  pred, true = _as_bool(pred, "pred"), _as_bool(true, "true")
  if pred.shape != true.shape:
    raise ValueError(f"pred and true must have the same shape, got {pred.shape} and {true.shape}")
  if mask is not None:
    mask = _as_bool(mask, "mask")
    mask = jnp.broadcast_to(jnp.asarray(mask, bool), pred.shape)
    pred, true = pred & mask, true & mask
  axes = tuple(range(1, pred.ndim))
  tp = jnp.sum(pred & true, axes)
  fp = jnp.sum(pred & ~true, axes)
  fn = jnp.sum(~pred & true, axes)
  precision = jnp.where(tp + fp > 0, tp / jnp.maximum(tp + fp, 1), 0.0)
  recall = jnp.where(tp + fn > 0, tp / jnp.maximum(tp + fn, 1), 0.0)
  return precision, recall


def f1_score(pred, true, mask=None):
  """F1 from precision and recall averaged over games (not F1 averaged over games)."""
  p, r = per_game_pr(pred, true, mask)
  p, r = jnp.mean(p), jnp.mean(r)
  return jnp.where(p + r > 0, 2 * p * r / jnp.maximum(p + r, 1e-12), 0.0)


def defogger_metrics(pred_counts, pred_exist, pred_bt, true_counts, true_bt, visible):
  """All metrics for one horizon.

  Args:
    pred_counts: ``[games, T, G, G, N]`` predicted enemy counts.
    pred_exist: boolean ``[games, T, G, G, N]`` predicted enemy type presence per cell.
    pred_bt: boolean ``[games, T, 5]`` predicted enemy building types.
    true_counts: ``[games, T, G, G, N]`` true enemy counts at the target time.
    true_bt: ``[games, T, 5]`` true enemy building types at the target time.
    visible: boolean ``[games, T, G, G]`` cells visible in the *input* step.

  Returns:
    dict with ``op_bt``, ``hid_u``, ``nmy_u`` (F1), ``l1``/``l1_hidden`` (mean absolute count
    error per cell and type) and ``l1_sum`` (the reference's form: the absolute count error summed
    over cells and types of one step, averaged over steps and games).
  """
  pred_counts, true_counts = jnp.asarray(pred_counts), jnp.asarray(true_counts)
  check_array(true_counts, "true_counts", ndim=5, finite=True)
  check_array(pred_counts, "pred_counts", ndim=5, shape=tuple(true_counts.shape))
  check_array(jnp.asarray(visible), "visible", ndim=4, shape=tuple(true_counts.shape[:4]))
  chex.assert_equal_shape([pred_counts, true_counts])
  true_exist = true_counts > 0
  hidden = ~jnp.asarray(visible, bool)[..., None]
  err = jnp.abs(pred_counts - true_counts)
  return {
      "op_bt": f1_score(pred_bt, true_bt > 0),
      "hid_u": f1_score(pred_exist, true_exist, hidden),
      "nmy_u": f1_score(pred_exist, true_exist),
      "l1": jnp.mean(err),
      "l1_sum": jnp.mean(jnp.sum(err, axis=tuple(range(2, err.ndim)))),
      "l1_hidden": jnp.sum(err * hidden) / jnp.maximum(jnp.sum(jnp.broadcast_to(hidden, err.shape)), 1),
  }
