"""Configurations of the loss-ratio experiments (Dereziński, Warmuth, Hsu, NeurIPS 2018)."""

from __future__ import annotations

import ml_collections

from jaxpapers._src import validation

METHODS = ("volume", "leveraged_volume", "leverage", "uniform")


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """Returns the experiment configuration at ``scale`` (``smoke`` / ``cpu`` / ``full``).

  * ``datasets``: LIBSVM regression data sets (see ``data.DATASETS``), each with an intercept
    column and standardised columns, so ``d = #features + 1``.
  * ``k_over_d``: sample sizes ``k = round(f d)`` for each ``f`` (``f = 1`` is ``k = d``).
  * ``num_draws``: independent samples per (data set, method, k) point (vmapped; the issue asks
    for >= 200), summarised by mean, standard error, median and quartiles.
  * ``lower_bound``: the lower-bound instance (``data.lower_bound_instance``) whose volume
    sampling curve is compared with its exact value at ``eps`` and the ``eps -> 0`` limit
    ``1 + (n - k)/(n - d)`` (``eps`` is not tiny so that the rare, expensive event -- missing
    the heavy row -- is seen in ``num_draws`` draws).
  """
  if scale == "quick":  # one run of the cpu setting; the quick reproduction tier picks its rows
    return get_config("cpu")
  validation.check_in(scale, "scale", ("smoke", "cpu", "full"))
  cfg = ml_collections.ConfigDict()
  cfg.scale = scale
  cfg.seed = 0
  cfg.x64 = True
  cfg.intercept = True
  cfg.standardize = True
  cfg.methods = METHODS
  cfg.data_dir = ""  # empty: ../shared/data or $JAXPAPERS_DATA
  cfg.plot = True
  cfg.lower_bound = ml_collections.ConfigDict()
  cfg.lower_bound.methods = ("volume", "leveraged_volume")
  if scale == "smoke":
    cfg.datasets = ("housing",)
    cfg.k_over_d = (3.0,)
    cfg.num_draws = 200
    cfg.lower_bound.n, cfg.lower_bound.d, cfg.lower_bound.eps = 40, 3, 0.1
    cfg.lower_bound.ks = (10,)
    cfg.lower_bound.methods = ("volume",)
  elif scale == "cpu":
    cfg.datasets = ("bodyfat", "housing", "abalone", "cpusmall", "cadata")
    cfg.k_over_d = (1.0, 2.0, 3.0, 5.0, 8.0)
    cfg.num_draws = 500
    cfg.lower_bound.n, cfg.lower_bound.d, cfg.lower_bound.eps = 100, 5, 0.05
    cfg.lower_bound.ks = (5, 10, 20, 40, 60, 80)
  else:
    cfg.datasets = ("bodyfat", "housing", "abalone", "cpusmall", "cadata")
    cfg.k_over_d = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
    cfg.num_draws = 2000
    cfg.lower_bound.n, cfg.lower_bound.d, cfg.lower_bound.eps = 200, 10, 0.02
    cfg.lower_bound.ks = (10, 20, 40, 60, 80, 100, 140, 180)
  return cfg
