"""RETAIN with deterministic, stochastic and uncertainty-aware attention.

Heo, Lee, Lee, Kim, Park, Yang, Hwang. "Uncertainty-Aware Attention for Reliable Interpretation and
Prediction", NeurIPS 2018 (UA), built on Choi et al. "RETAIN", NeurIPS 2016.

For a patient with visits ``x_1..x_T`` (``x_t ∈ R^D``) and a visit mask ``m_t``:

* embedding ``v_t = W_emb x_t`` (no bias, so contributions stay linear in ``x``);
* two GRUs (or LSTMs, ``cell="lstm"``, as the reference implementation) run in reverse time
  over ``v``: ``g_t`` (visit level) and ``h_t`` (variable level);
* visit attention logits ``z^α_t ~ N(μ_α(g_t), σ_α(g_t)²)`` and variable attention pre-activations
  ``z^β_t ~ N(μ_β(h_t), diag σ_β(h_t)²)``, sampled by reparameterisation ``z = μ + σ ⊙ ε``;
  ``α = softmax_t(z^α)`` over unmasked visits (masked visits get ``α_t = 0``) and ``β_t = tanh(z^β_t)``;
* context ``c = Σ_t α_t β_t ⊙ v_t`` and logit ``w·c + b``.

Variants (``variant=``):

* ``"retain_da"``: deterministic attention (σ ≡ 0), the original RETAIN.
* ``"retain_sa"``: stochastic attention with *input-independent* noise: σ_α and σ_β are free
  parameters (softplus of a learned scalar / vector).
* ``"ua"``: uncertainty-aware attention: σ_α, σ_β are input-dependent, ``softplus`` of linear
  heads on ``g_t`` / ``h_t``.
* ``"ua_plus"``: UA plus input-dependent noise on the output logit,
  ``logit ~ N(w·c + b, softplus(u·c + d)²)`` (heteroscedastic output noise).

Every σ head starts as in the reference implementation (jayheo/UA): kernel ``N(0, 0.01²)``, bias
0 (and the free σ parameters of RETAIN-SA at 0), so σ starts near ``softplus(0) = log 2 ≈ 0.69``.

The paper trains the variational posterior with a N(0, I) prior whose KL reduces, as in the
reference implementation, to L2 weight decay ``λ Σ ½‖θ‖²`` (λ = 0.002 for UA, 0.004 for UA+), see
:func:`l2_regularizer`.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_array, check_in, check_positive, is_concrete
from jaxpapers.ua_attention import _compile

VARIANTS = ("retain_da", "retain_sa", "ua", "ua_plus")
CELLS = ("gru", "lstm")

# σ heads as in the reference implementation: kernel N(0, 0.01²), bias 0 → σ ≈ softplus(0).
_SIGMA_KERNEL_INIT = nn.initializers.normal(stddev=0.01)
_SIGMA_BIAS_INIT = nn.initializers.zeros


class RetainOutput(NamedTuple):
  """Everything one forward pass of :class:`RetainModel` produces (batch-first shapes).

  Attributes:
    logit: ``(B,)`` the logit used for the prediction (includes UA+'s output noise).
    logit_mean: ``(B,)`` ``w·c + b`` before output noise.
    logit_sigma: ``(B,)`` standard deviation of the output noise (zeros except for UA+).
    alpha: ``(B, T)`` visit attention; sums to one over unmasked visits, zero on masked ones.
    beta: ``(B, T, E)`` variable attention in ``(-1, 1)``.
    alpha_mu: ``(B, T)`` mean of the visit-attention logits.
    alpha_sigma: ``(B, T)`` standard deviation of the visit-attention logits.
    beta_mu: ``(B, T, E)`` mean of the variable-attention pre-activations.
    beta_sigma: ``(B, T, E)`` their standard deviation.
    context: ``(B, E)`` the context vector ``c``.
  """

  logit: jax.Array
  logit_mean: jax.Array
  logit_sigma: jax.Array
  alpha: jax.Array
  beta: jax.Array
  alpha_mu: jax.Array
  alpha_sigma: jax.Array
  beta_mu: jax.Array
  beta_sigma: jax.Array
  context: jax.Array


def reparameterize(key: jax.Array, mu: jax.Array, sigma: jax.Array) -> jax.Array:
  """Draws ``z = μ + σ ⊙ ε`` with ``ε ~ N(0, I)`` (the reparameterisation trick of UA, eq. (4)).

  Args:
    key: a ``jax.random.key``.
    mu: mean, any shape.
    sigma: standard deviation, broadcastable to ``mu``'s shape, ``>= 0``.

  Returns:
    A sample with ``mu``'s shape whose gradient flows into ``mu`` and ``sigma``.
  """
  check_array(mu, "mu", dtype_kind="f")
  check_array(sigma, "sigma", dtype_kind="f")
  try:
    shape = jnp.broadcast_shapes(mu.shape, sigma.shape)
  except ValueError:
    shape = None
  if shape != mu.shape:
    raise ValueError(f"sigma with shape {sigma.shape} must broadcast to mu's shape {mu.shape}")
  if is_concrete(sigma) and np.any(np.asarray(sigma) < 0):
    raise ValueError("sigma must be >= 0 (a standard deviation)")
  eps = jax.random.normal(key, mu.shape, dtype=mu.dtype)
  return mu + sigma * eps


def masked_softmax(logits: jax.Array, mask: jax.Array, axis: int = -1) -> jax.Array:
  """Softmax over ``axis`` restricted to ``mask``; masked entries are exactly zero.

  A row with no unmasked entry returns all zeros (never NaN).
  """
  check_array(logits, "logits", dtype_kind="f")
  check_array(mask, "mask", shape=logits.shape, dtype_kind="biuf")
  logits = jnp.where(mask, logits, -jnp.inf)
  top = jnp.max(logits, axis=axis, keepdims=True)
  top = jnp.where(jnp.isfinite(top), top, 0.0)
  e = jnp.where(mask, jnp.exp(logits - top), 0.0)
  total = jnp.sum(e, axis=axis, keepdims=True)
  return e / jnp.where(total > 0, total, 1.0)


def l2_regularizer(params, weight: float) -> jax.Array:
  """``λ Σ_θ ½‖θ‖²`` over every leaf of ``params`` (the KL term as the reference implements it).

  Args:
    params: a pytree of float arrays.
    weight: λ (0.002 for UA, 0.004 for UA+ in the reference implementation).
  """
  check_positive(weight, "weight", allow_zero=True)
  leaves = jax.tree.leaves(params)
  if not leaves:
    return jnp.zeros((), jnp.float32)
  return weight * 0.5 * sum(jnp.sum(jnp.square(p)) for p in leaves)


class _GRUPairStep(nn.Module):
  """One reverse-time step of RETAIN's two RNNs; a masked step keeps the carry, outputs zeros."""

  features: int
  cell: str = "gru"

  @nn.compact
  def __call__(self, carry, inputs):
    xt, mt = inputs
    new_carry, outs = [], []
    keep = mt[:, None]
    for name, c in zip(("alpha_cell", "beta_cell"), carry):
      if self.cell == "gru":
        new, y = nn.GRUCell(self.features, name=name)(c, xt)
      else:  # LSTM carry is (c, h); its output is h.
        new, y = nn.LSTMCell(self.features, name=name)(c, xt)
      new_carry.append(jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, c))
      outs.append(y * keep.astype(y.dtype))
    return tuple(new_carry), tuple(outs)


class _ReverseMaskedGRUs(nn.Module):
  """RETAIN's visit-level and variable-level RNNs, run from the last visit to the first in one scan."""

  features: int
  cell: str = "gru"

  @nn.compact
  def __call__(self, x, mask):
    scan = nn.scan(_GRUPairStep, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=0, out_axes=0, reverse=True)
    zeros = jnp.zeros((x.shape[0], self.features), x.dtype)
    init = zeros if self.cell == "gru" else (zeros, zeros)
    _, (g, h) = scan(self.features, self.cell, name="step")(
        (init, init), (jnp.swapaxes(x, 0, 1), jnp.swapaxes(mask, 0, 1)))
    return jnp.swapaxes(g, 0, 1), jnp.swapaxes(h, 0, 1)


class RetainModel(nn.Module):
  """RETAIN-DA / RETAIN-SA / UA / UA+ over padded, masked visit sequences.

  Attributes:
    variant: one of ``VARIANTS``.
    embed_dim: embedding size (33 in the reference implementation).
    hidden_dim: GRU size (33 in the reference implementation).
    keep_embed: dropout keep probability on the embeddings ``v`` (0.95).
    keep_rnn: dropout keep probability on the GRU outputs ``g, h`` (0.75).
    keep_context: dropout keep probability on the context ``c`` (0.95).
    cell: ``"gru"`` (default) or ``"lstm"`` (the reference implementation's cell).

  Call with ``x: (B, T, D)`` float, ``mask: (B, T)`` bool; ``dropout=True`` needs a ``"dropout"``
  rng and ``sample=True`` (stochastic variants) a ``"noise"`` rng. ``sample=False`` uses the means
  of all Gaussians (σ-free forward pass).
  """

  variant: str = "ua"
  embed_dim: int = 33
  hidden_dim: int = 33
  keep_embed: float = 0.95
  keep_rnn: float = 0.75
  keep_context: float = 0.95
  cell: str = "gru"

  def _noise(self, mu, sigma, sample):
    if not sample:
      return mu
    return reparameterize(self.make_rng("noise"), mu, sigma)

  @nn.compact
  def __call__(self, x, mask, *, dropout: bool = False, sample: bool = True) -> RetainOutput:
    check_in(self.variant, "variant", VARIANTS)
    check_in(self.cell, "cell", CELLS)
    for name in ("keep_embed", "keep_rnn", "keep_context"):
      keep = getattr(self, name)
      if not 0.0 < keep <= 1.0:
        raise ValueError(f"{name} must be a keep probability in (0, 1], got {keep}")
    drop = lambda keep, name: nn.Dropout(rate=1.0 - keep, deterministic=not dropout, name=name)
    mask = mask.astype(bool)
    v = nn.Dense(self.embed_dim, use_bias=False, name="embedding")(x)
    v = drop(self.keep_embed, "drop_embed")(v)
    g, h = _ReverseMaskedGRUs(self.hidden_dim, self.cell, name="rnn")(v, mask)
    g = drop(self.keep_rnn, "drop_g")(g)
    h = drop(self.keep_rnn, "drop_h")(h)

    alpha_mu = nn.Dense(1, name="alpha_mu")(g)[..., 0]
    beta_mu = nn.Dense(self.embed_dim, name="beta_mu")(h)
    sigma_head = lambda features, name: nn.Dense(
        features, kernel_init=_SIGMA_KERNEL_INIT, bias_init=_SIGMA_BIAS_INIT, name=name)
    if self.variant == "retain_da":
      alpha_sigma = jnp.zeros_like(alpha_mu)
      beta_sigma = jnp.zeros_like(beta_mu)
    elif self.variant == "retain_sa":
      rho_a = self.param("alpha_rho", _SIGMA_BIAS_INIT, ())
      rho_b = self.param("beta_rho", _SIGMA_BIAS_INIT, (self.embed_dim,))
      alpha_sigma = jnp.broadcast_to(jax.nn.softplus(rho_a), alpha_mu.shape)
      beta_sigma = jnp.broadcast_to(jax.nn.softplus(rho_b), beta_mu.shape)
    else:
      alpha_sigma = jax.nn.softplus(sigma_head(1, "alpha_sigma")(g)[..., 0])
      beta_sigma = jax.nn.softplus(sigma_head(self.embed_dim, "beta_sigma")(h))
    stochastic = self.variant != "retain_da"
    z_alpha = self._noise(alpha_mu, alpha_sigma, sample and stochastic)
    z_beta = self._noise(beta_mu, beta_sigma, sample and stochastic)
    alpha = masked_softmax(z_alpha, mask, axis=-1)
    beta = jnp.tanh(z_beta)

    context = jnp.sum(alpha[..., None] * beta * v, axis=1)
    context = drop(self.keep_context, "drop_context")(context)
    logit_mean = nn.Dense(1, name="output")(context)[..., 0]
    if self.variant == "ua_plus":
      logit_sigma = jax.nn.softplus(sigma_head(1, "output_sigma")(context)[..., 0])
      logit = self._noise(logit_mean, logit_sigma, sample)
    else:
      logit_sigma = jnp.zeros_like(logit_mean)
      logit = logit_mean
    return RetainOutput(logit=logit, logit_mean=logit_mean, logit_sigma=logit_sigma,
                        alpha=alpha, beta=beta, alpha_mu=alpha_mu, alpha_sigma=alpha_sigma,
                        beta_mu=beta_mu, beta_sigma=beta_sigma, context=context)


def _check_inputs(x, mask):
  check_array(x, "x", ndim=3, dtype_kind="f")
  check_array(mask, "mask", ndim=2, dtype_kind="biuf")
  chex.assert_rank([x, mask], [3, 2])
  if mask.shape != x.shape[:2]:
    raise ValueError(f"mask must have shape {x.shape[:2]} (batch, visits) of x, got {mask.shape}")
  if is_concrete(mask) and mask.dtype != bool:
    m = np.asarray(mask)
    if not np.all((m == 0) | (m == 1)):
      raise ValueError("mask must be boolean or 0/1")


def init_params(key: jax.Array, model: RetainModel, x: jax.Array, mask: jax.Array):
  """Initialises ``model``'s parameters from example inputs ``x (B, T, D)``, ``mask (B, T)``."""
  _check_inputs(x, mask)
  return _init_jit(key, model, x, mask)


@_compile.jit(static_argnums=1)
def _init_jit(key, model, x, mask):
  k_params, k_noise, k_drop = jax.random.split(key, 3)
  variables = model.init({"params": k_params, "noise": k_noise, "dropout": k_drop}, x, mask)
  return variables["params"]


def apply_model(key: jax.Array, model: RetainModel, params, x: jax.Array, mask: jax.Array, *,
                dropout: bool = False, sample: bool = True) -> RetainOutput:
  """One stochastic forward pass: attention noise (and dropout if ``dropout``) drawn from ``key``.

  Args:
    key: a ``jax.random.key``; the same key gives identical outputs.
    model: the :class:`RetainModel` (its variant decides which noise exists).
    params: parameters from :func:`init_params`.
    x: ``(B, T, D)`` float visits.
    mask: ``(B, T)`` visit mask (bool or 0/1).
    dropout: apply dropout (training, or MC dropout at test time).
    sample: sample the Gaussian attention / output noise; ``False`` uses their means.
  """
  _check_inputs(x, mask)
  k_noise, k_drop = jax.random.split(key)
  return model.apply({"params": params}, x, mask, dropout=dropout, sample=sample,
                     rngs={"noise": k_noise, "dropout": k_drop})


class MCPrediction(NamedTuple):
  """Monte-Carlo predictive summary over ``S`` samples (UA, Section 3.3).

  Attributes:
    prob: ``(B,)`` predictive mean ``(1/S) Σ_s sigmoid(logit_s)``.
    variance: ``(B,)`` variance of ``sigmoid(logit_s)`` over samples (epistemic + attention noise).
    aleatoric: ``(B,)`` mean Bernoulli variance ``(1/S) Σ_s p_s (1 - p_s)``.
    probs: ``(S, B)`` per-sample probabilities.
    alpha: ``(B, T)`` MC mean of the visit attention.
    beta: ``(B, T, E)`` MC mean of the variable attention.
  """

  prob: jax.Array
  variance: jax.Array
  aleatoric: jax.Array
  probs: jax.Array
  alpha: jax.Array
  beta: jax.Array


MC_METHODS = ("map", "vmap", "fold")


def mc_predict(key: jax.Array, model: RetainModel, params, x: jax.Array, mask: jax.Array, *,
               num_samples: int = 30, mc_dropout: bool = True, method: str = "map"
               ) -> MCPrediction:
  """Monte-Carlo prediction with ``num_samples`` (S = 30 in the paper) samples in one call.

  Each sample draws fresh attention noise (and output noise for UA+); with ``mc_dropout`` the
  dropout masks are resampled too, as in the paper's model whose dropout stays stochastic at test
  time. For RETAIN-DA without MC dropout every sample is the same deterministic prediction.

  Args:
    key: a ``jax.random.key``.
    model: the model.
    params: its parameters.
    x: ``(B, T, D)`` visits.
    mask: ``(B, T)`` visit mask.
    num_samples: S, the number of samples.
    mc_dropout: keep dropout on at test time.
    method: how the S samples are computed inside the one call. ``"map"`` (default) runs them
      one after another with ``lax.map`` and ``"vmap"`` vectorises them; with both, sample ``s``
      equals ``apply_model(jax.random.split(key, S)[s], ...)``. ``"fold"`` stacks S copies of the
      batch into one ``(S·B)``-row pass with all noise drawn from ``key`` at once. On CPU,
      ``"map"`` is the fastest: generating vectorised dropout masks is several times slower
      (see ``experiments/ua_attention/benchmark.py``).
  """
  _check_inputs(x, mask)
  if not isinstance(num_samples, int) or num_samples < 1:
    raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
  check_in(method, "method", MC_METHODS)
  b = x.shape[0]
  one = lambda k: apply_model(k, model, params, x, mask, dropout=mc_dropout, sample=True)
  if method == "map":
    outs = jax.lax.map(one, jax.random.split(key, num_samples))
  elif method == "vmap":
    outs = jax.vmap(one)(jax.random.split(key, num_samples))
  else:
    tile = lambda a: jnp.broadcast_to(a, (num_samples, *a.shape)).reshape(-1, *a.shape[1:])
    out = apply_model(key, model, params, tile(x), tile(mask), dropout=mc_dropout, sample=True)
    outs = jax.tree.map(lambda a: a.reshape(num_samples, b, *a.shape[1:]), out)
  probs = jax.nn.sigmoid(outs.logit)
  prob = jnp.mean(probs, axis=0)
  return MCPrediction(prob=prob, variance=jnp.var(probs, axis=0),
                      aleatoric=jnp.mean(probs * (1.0 - probs), axis=0), probs=probs,
                      alpha=jnp.mean(outs.alpha, axis=0), beta=jnp.mean(outs.beta, axis=0))


def contributions(params, x: jax.Array, alpha: jax.Array, beta: jax.Array) -> jax.Array:
  """RETAIN's interpretation: the contribution of variable ``k`` at visit ``t`` to the logit.

  ``ω_{t,k} = α_t · w^T (β_t ⊙ W_emb[k, :]) · x_{t,k}``, so that without dropout
  ``Σ_{t,k} ω_{t,k} + b`` equals the logit ``w·c + b`` exactly.

  Args:
    params: model parameters (uses ``embedding`` and ``output``).
    x: ``(B, T, D)`` visits.
    alpha: ``(B, T)`` visit attention (a sample or an MC mean).
    beta: ``(B, T, E)`` variable attention.

  Returns:
    ``(B, T, D)`` contributions.
  """
  check_array(x, "x", ndim=3, dtype_kind="f")
  check_array(alpha, "alpha", ndim=2, shape=x.shape[:2], dtype_kind="f")
  w_emb = params["embedding"]["kernel"]  # (D, E)
  check_array(beta, "beta", ndim=3, shape=(*x.shape[:2], w_emb.shape[1]), dtype_kind="f")
  w_out = params["output"]["kernel"][:, 0]  # (E,)
  weighted = (beta * w_out) @ w_emb.T  # (B, T, D)
  return alpha[..., None] * weighted * x
