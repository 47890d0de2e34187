"""Experiment configurations for BBMM (Gardner et al., NeurIPS 2018) at smoke / cpu / full scale."""

from __future__ import annotations

import ml_collections

from jaxpapers._src import validation
from jaxpapers.bbmm.likelihood import Settings


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """Returns the experiment config at ``scale``.

  * ``smoke``: 2-D synthetic data, 256 training points, 2 Adam steps, exact GP by BBMM and
    Cholesky (the default lists all four models: BBMM, Cholesky, SGPR, SKI).
  * ``cpu``: elevators (UCI, d = 17), 2000 training points, 50 Adam steps; exact GP by BBMM and
    by Cholesky, and SGPR with 300 inducing points (SKI needs d ≤ 3).
  * ``full``: the paper's protocol on elevators: the full 64 % training split, 100 steps.
  """
  if scale == "quick":  # one run of the cpu setting; the quick reproduction tier picks its rows
    return get_config("cpu")
  validation.check_in(scale, "scale", ("smoke", "cpu", "full"))
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.seed = 0
  c.dataset = "synthetic"
  c.data_dir = ""
  c.n_synthetic = 400
  c.dim = 2
  c.synthetic_lengthscale = 0.3
  c.synthetic_noise = 0.01
  c.max_train = 0
  c.split = (0.64, 0.16, 0.20)
  c.kernel = "rbf"
  c.models = ("bbmm", "cholesky", "sgpr", "ski")
  c.num_steps = 3
  c.learning_rate = 0.1
  c.chunk_size = 25
  c.init_lengthscale = 0.6931
  c.init_scale = 0.6931
  c.init_noise = 0.6931
  c.block_size = 1024
  c.materialize = True
  c.num_inducing = 64
  c.ski_grid_size = 64
  c.ski_max_dim = 3
  c.love_rank = 50
  # Test variances: "cg" (exact up to tolerance 1e-3) or "love" (preconditioned LOVE with
  # love_rank Lanczos steps, used only where its error measured at training inputs is ≤ 1 %, else
  # CG: predict.predictive_variance). Plain rank-50 LOVE overestimated elevators' variances (test
  # NLL 0.52 vs 0.40 exact); CG stays the default.
  c.variance = "cg"
  c.settings = ml_collections.ConfigDict(Settings()._asdict())
  if scale == "smoke":
    c.variance = "love"
    c.models = ("bbmm", "cholesky")
    c.num_steps = 2
    c.settings.max_cg_iters = 200
  elif scale == "cpu":
    c.dataset = "elevators"
    c.max_train = 2000
    c.models = ("bbmm", "cholesky", "sgpr")
    c.num_steps = 50
    c.num_inducing = 300
  else:
    c.dataset = "elevators"
    c.models = ("bbmm", "cholesky", "sgpr")
    c.num_steps = 100
    c.num_inducing = 500
    c.materialize = False
    c.block_size = 2048
  return c


def check_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Validates the ranges of an experiment config (raises ``ValueError`` naming ``config.<field>``).

  ``config.settings`` is checked by :func:`jaxpapers.bbmm.likelihood.check_settings` when the
  trainer builds its :class:`~jaxpapers.bbmm.likelihood.Settings`.
  """
  def at_least(field, low):
    value = c[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
      raise ValueError(f"config.{field} must be an int >= {low}, got {value!r}")

  def positive(field):
    value = c[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
      raise ValueError(f"config.{field} must be finite and > 0, got {value!r}")

  validation.check_in(c.scale, "config.scale", ("smoke", "cpu", "full"))
  for field, low in (("n_synthetic", 2), ("dim", 1), ("max_train", 0), ("num_steps", 0),
                     ("chunk_size", 1), ("block_size", 1), ("num_inducing", 1),
                     ("ski_grid_size", 6), ("ski_max_dim", 1), ("love_rank", 1)):
    at_least(field, low)
  for field in ("synthetic_lengthscale", "synthetic_noise", "learning_rate", "init_lengthscale",
                "init_scale", "init_noise"):
    positive(field)
  validation.check_in(c.variance, "config.variance", ("cg", "love"))
  for model in c.models:
    validation.check_in(model, "config.models", ("bbmm", "cholesky", "sgpr", "ski"))
  split = tuple(c.split)
  if len(split) != 3 or any(not 0 < f < 1 for f in split) or sum(split) > 1 + 1e-9:
    raise ValueError(f"config.split must be three fractions in (0, 1) summing to <= 1, got {split}")
  return c
