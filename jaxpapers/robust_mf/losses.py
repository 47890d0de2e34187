"""Robust losses φ(z), z = |residual| ≥ 0, and their derivatives (Yao & Kwok, NeurIPS 2018).

Every nonconvex φ here is concave, non-decreasing on [0, ∞) with φ(0) = 0, which is what the MM
surrogate of Yao & Kwok (2018) needs: φ(z) ≤ φ(z₀) + φ′(z₀)(z − z₀) for all z, z₀ ≥ 0.
The shape parameter θ > 0 sets the residual scale at which the loss saturates.

===========  =====================  ==========================
loss         φ(z)                   φ′(z)
===========  =====================  ==========================
``l1``       z                      1
``lsp``      log(1 + z/θ)           1/(θ + z)
``geman``    z/(θ + z)              θ/(θ + z)²
``laplace``  1 − exp(−z/θ)          exp(−z/θ)/θ
===========  =====================  ==========================

The parameterisation (θ inside φ, no outer scale) is ours; θ = 1 is used in the experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


def l1(z, theta=1.0):
  """ℓ1 loss φ(z) = z (``theta`` is ignored; kept for a uniform signature)."""
  del theta
  return jnp.asarray(z)


def l1_derivative(z, theta=1.0):
  """φ′(z) = 1 for the ℓ1 loss."""
  del theta
  return jnp.ones_like(jnp.asarray(z))


def lsp(z, theta=1.0):
  """Log-sum penalty φ(z) = log(1 + z/θ) (Candès, Wakin & Boyd 2008)."""
  return jnp.log1p(z / theta)


def lsp_derivative(z, theta=1.0):
  """φ′(z) = 1/(θ + z) for LSP."""
  return 1.0 / (theta + z)


def geman(z, theta=1.0):
  """Geman penalty φ(z) = z/(θ + z) (Geman & Yang 1995)."""
  return z / (theta + z)


def geman_derivative(z, theta=1.0):
  """φ′(z) = θ/(θ + z)² for the Geman penalty."""
  return theta / (theta + z) ** 2


def laplace(z, theta=1.0):
  """Laplace penalty φ(z) = 1 − exp(−z/θ) (Trzasko & Manduca 2009)."""
  return -jnp.expm1(-z / theta)


def laplace_derivative(z, theta=1.0):
  """φ′(z) = exp(−z/θ)/θ for the Laplace penalty."""
  return jnp.exp(-z / theta) / theta


class Loss(NamedTuple):
  """A loss as a pair of pure functions ``value(z, theta)`` and ``derivative(z, theta)``."""

  value: Callable
  derivative: Callable


LOSSES: dict[str, Loss] = {
    "l1": Loss(l1, l1_derivative),
    "lsp": Loss(lsp, lsp_derivative),
    "geman": Loss(geman, geman_derivative),
    "laplace": Loss(laplace, laplace_derivative),
}


LOSS_NAMES: tuple[str, ...] = ("l1", "lsp", "geman", "laplace")


def loss_id(name: str) -> int:
  """The integer id of loss ``name`` (its position in ``LOSS_NAMES``), for traced dispatch."""
  get_loss(name)
  return LOSS_NAMES.index(name)


def value(loss, z, theta):
  """φ(z) for ``loss`` given by name (static) or by a traced integer id (``lax.switch``)."""
  if isinstance(loss, str):
    return get_loss(loss).value(z, theta)
  return jax.lax.switch(loss, [LOSSES[k].value for k in LOSS_NAMES], z, theta)


def derivative(loss, z, theta):
  """φ′(z) for ``loss`` given by name (static) or by a traced integer id (``lax.switch``)."""
  if isinstance(loss, str):
    return get_loss(loss).derivative(z, theta)
  return jax.lax.switch(loss, [LOSSES[k].derivative for k in LOSS_NAMES], z, theta)


def get_loss(name: str) -> Loss:
  """Returns the :class:`Loss` called ``name`` (one of ``l1``, ``lsp``, ``geman``, ``laplace``).

  Raises:
    ValueError: if ``name`` is not a known loss.
  """
  if not isinstance(name, str) or name not in LOSSES:
    raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
  return LOSSES[name]
