"""DMWGAN / DMWGAN-PL losses, the learned prior, and one pure training iteration.

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018.

With generators ``G_1..G_{n_g}``, a prior ``r(c)`` over them, a critic ``D`` and an encoder
``Q(c|x)`` on the critic's last hidden layer, one iteration (the paper's defaults) is

* 5 critic steps of WGAN-GP: ``E D(G_c(z)) - E D(x) + 10 * GP`` with ``c ~ r``, ``z ~ U[-1,1]^100``
  and ``GP = E max(||∇D(x̂)|| - 1, 0)²`` (one-sided, as the reference) or ``E (||∇D(x̂)|| - 1)²``;
* a generator step on ``-E D(G_c(z)) + λ CE(Q(G_c(z)), c)`` (λ = 1, the InfoGAN-style bound on
  ``-I(c; x)``);
* an encoder step on ``CE(Q(G_c(z)), c)`` (generated samples only);
* (PL) one Adam(1e-3, β=(0.5, 0.5)) step on the prior logits ζ, ``r = softmax(ζ)``, of
  ``L_r(ζ) = -mean_{b,c} Q(c|x_b) log r_c - κ_t H(r)``, ``κ_t = 1000 · 0.999^(t+1)`` at
  generator step ``t = 0, 1, ...`` (the reference decays its counter *before* the first prior
  step, so ``κ_0 = 999``), over a real batch.

Everything here is a pure function of explicit parameters and keys (jit/vmap/scan-compatible).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers._src.validation import check_array, check_in, check_positive, is_concrete
from jaxpapers.dmgan import networks

# ---------------------------------------------------------------------------------------------
# The learned prior.


def entropy_weight(step, scale: float = 1000.0, decay: float = 0.999):
  """The prior's entropy weight at generator step ``t``: ``κ_t = scale · decay^(t + 1)``.

  The reference (``tf_dmgan.py``) keeps a counter initialised to 1 that is multiplied by
  ``decay`` under a control dependency *before* each prior loss is evaluated, so the first prior
  step (``t = 0``) already uses ``κ_0 = scale · decay = 999`` and step ``t`` uses
  ``scale · decay^(t + 1)``.

  Computed as ``scale · exp((t + 1) · log decay)`` with ``log decay`` in double precision, so
  float32 steps up to ~1e5 keep ~1e-5 relative accuracy (``0.999`` itself is inexact in float32).

  Args:
    step: generator step(s) ``t >= 0`` (int scalar or array; traced values are allowed).
    scale: ``κ`` before any decay (1000).
    decay: per-step factor in ``(0, 1]`` (0.999).

  Raises:
    ValueError: if ``decay`` is not positive or a concrete ``step`` is negative or non-finite.
  """
  check_positive(decay, "decay")
  if not math.isfinite(float(scale)):
    raise ValueError(f"scale must be finite, got {scale}")
  step = jnp.asarray(step)
  if is_concrete(step):
    s = np.asarray(step, np.float64)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
      raise ValueError(f"step must be finite and >= 0, got {step}")
  return scale * jnp.exp((step.astype(jnp.float32) + 1.0) * math.log(decay))


def prior_probs(logits):
  """``r = softmax(ζ)``."""
  return jax.nn.softmax(logits)


def prior_entropy(logits):
  """``H(r) = -Σ_c r_c log r_c`` in nats."""
  log_r = jax.nn.log_softmax(logits)
  return -jnp.sum(jnp.exp(log_r) * log_r)


def prior_loss(logits, posterior, kappa):
  """``L_r(ζ) = -mean_{b,c} Q(c|x_b) log r_c - κ H(r)`` with ``r = softmax(ζ)``.

  The mean runs over the batch *and* the ``n_g`` components (as in the reference), so with
  ``κ = 0`` the gradient is ``(softmax(ζ) - Q̄) / n_g`` where ``Q̄`` is the batch-mean posterior,
  and its minimiser is ``r = Q̄``.

  Args:
    logits: prior logits ζ, shape ``(n_g,)``.
    posterior: encoder posteriors ``Q(c|x_b)`` on real data, shape ``(B, n_g)``, rows summing to 1.
    kappa: entropy weight ``κ_t``.

  Raises:
    ValueError: on a wrong rank or shape, or (when the inputs are concrete, i.e. outside ``jit``)
      if ``logits``, ``posterior`` or ``kappa`` hold NaN/inf or ``posterior`` has entries outside
      ``[0, 1]``. Under ``jit`` a NaN input gives a NaN loss (never a finite one).
    TypeError: on non-floating ``logits``/``posterior``.
  """
  check_array(logits, "logits", ndim=1, dtype_kind="f", finite=True)
  check_array(posterior, "posterior", ndim=2, dtype_kind="f", shape=(None, logits.shape[0]),
              finite=True)
  chex.assert_rank([logits, posterior], [1, 2])
  if posterior.shape[0] < 1:
    raise ValueError("posterior must hold at least one row (B >= 1), got shape "
                     f"{tuple(posterior.shape)}")
  if is_concrete(posterior):
    p = np.asarray(posterior)
    if np.any(p < 0) or np.any(p > 1):
      raise ValueError("posterior entries must be probabilities in [0, 1]")
  if is_concrete(kappa) and not np.all(np.isfinite(np.asarray(kappa, np.float64))):
    raise ValueError(f"kappa must be finite, got {kappa}")
  log_r = jax.nn.log_softmax(logits)
  cross = -jnp.mean(posterior * log_r[None, :])
  return cross - kappa * prior_entropy(logits)


class PriorState(NamedTuple):
  """Prior logits ζ and their Adam state."""

  logits: jax.Array
  opt_state: Any


def prior_optimizer(learning_rate: float = 1e-3, b1: float = 0.5, b2: float = 0.5):
  """The reference's prior optimiser: Adam(1e-3, β1 = 0.5, β2 = 0.5)."""
  return optax.adam(learning_rate, b1=b1, b2=b2)


def init_prior(num_generators: int, optimizer=None) -> PriorState:
  """Uniform prior (ζ = 0) and a fresh optimiser state."""
  if not isinstance(num_generators, int) or num_generators < 1:
    raise ValueError(f"num_generators (n_g) must be an int >= 1, got {num_generators!r}")
  optimizer = prior_optimizer() if optimizer is None else optimizer
  logits = jnp.zeros((num_generators,), jnp.float32)
  return PriorState(logits, optimizer.init(logits))


def prior_update(state: PriorState, posterior, kappa, optimizer=None):
  """One optimiser step on :func:`prior_loss`; returns ``(new_state, loss)``.

  Raises:
    ValueError: as :func:`prior_loss` (NaN/inf posteriors raise when the inputs are concrete).
  """
  optimizer = prior_optimizer() if optimizer is None else optimizer
  if is_concrete(posterior) and is_concrete(state.logits):
    prior_loss(state.logits, posterior, kappa)  # its eager checks (the gradient traces them away)
  loss, grad = jax.value_and_grad(prior_loss)(state.logits, posterior, kappa)
  updates, opt_state = optimizer.update(grad, state.opt_state, state.logits)
  return PriorState(optax.apply_updates(state.logits, updates), opt_state), loss


def active_generators(probs, threshold: float = 0.05):
  """Number of generators with prior mass ``r_c > threshold`` (the paper's inferred count).

  Args:
    probs: prior probabilities ``r``, shape ``(n_g,)``.
    threshold: mass above which a generator counts as active, in ``[0, 1)``.

  Raises:
    ValueError: on a wrong rank, an empty ``probs``, a threshold outside ``[0, 1)``, or (concrete
      inputs) NaN/inf or negative probabilities — a NaN prior has no honest integer count.
  """
  check_array(probs, "probs", ndim=1, dtype_kind="f", finite=True)
  chex.assert_rank(probs, 1)
  if probs.shape[0] < 1:
    raise ValueError("probs must hold at least one generator, got shape (0,)")
  if not 0.0 <= float(threshold) < 1.0:
    raise ValueError(f"threshold must be in [0, 1), got {threshold}")
  if is_concrete(probs) and np.any(np.asarray(probs) < 0):
    raise ValueError("probs must be non-negative")
  return jnp.sum(probs > threshold)


# ---------------------------------------------------------------------------------------------
# WGAN-GP critic and generator losses.


def sample_latents(key, batch: int, latent_dim: int = 100):
  """``z ~ U[-1, 1]^latent_dim`` (the reference's latent distribution)."""
  return jax.random.uniform(key, (batch, latent_dim), jnp.float32, -1.0, 1.0)


def sample_components(key, logits, batch: int):
  """``c_b ~ r = softmax(ζ)`` i.i.d."""
  return jax.random.categorical(key, logits, shape=(batch,)).astype(jnp.int32)


def gradient_penalty(critic_score_fn, x_hat, one_sided: bool = True):
  """WGAN-GP penalty ``E (||∇_x D(x̂)|| - 1)²``; one-sided keeps only norms above 1.

  Args:
    critic_score_fn: ``x -> scores (B,)`` for a batch; samples must not interact (no batch norm),
      so the per-sample gradient is the gradient of the summed scores.
    x_hat: interpolates ``(B, ...)``.
    one_sided: the reference's ``max(||∇|| - 1, 0)²`` if true, else the two-sided penalty.
  """
  check_array(x_hat, "x_hat", dtype_kind="f", finite=True)
  if x_hat.ndim < 2 or x_hat.shape[0] < 1:
    raise ValueError(f"x_hat must be a non-empty batch (B >= 1, rank >= 2), got {tuple(x_hat.shape)}")
  grads = jax.grad(lambda x: jnp.sum(critic_score_fn(x)))(x_hat)
  sq = jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1)
  norm = jnp.sqrt(sq + 1e-12)
  gap = jnp.maximum(norm - 1.0, 0.0) if one_sided else norm - 1.0
  return jnp.mean(gap ** 2)


def interpolate(key, x_real, x_fake):
  """``x̂ = ε x + (1 - ε) x̃`` with one ``ε ~ U[0, 1]`` per sample."""
  eps = jax.random.uniform(key, (x_real.shape[0],) + (1,) * (x_real.ndim - 1), x_real.dtype)
  return eps * x_real + (1.0 - eps) * x_fake


def critic_loss(critic_params, critic, key, x_real, x_fake, gp_weight: float = 10.0,
                one_sided: bool = True):
  """``E D(x̃) - E D(x) + gp_weight · GP``; returns ``(loss, (w_distance, gp))``.

  Raises:
    ValueError: if ``x_real`` (when concrete) holds NaN/inf or its shape differs from ``x_fake``.
  """
  check_array(x_real, "x_real", dtype_kind="f", finite=True)
  check_array(x_fake, "x_fake", dtype_kind="f", shape=tuple(x_real.shape), finite=True)
  if x_real.ndim < 2 or x_real.shape[0] < 1:
    raise ValueError(f"x_real must be a non-empty batch (B >= 1, rank >= 2), got {tuple(x_real.shape)}")
  score = lambda x: critic.apply(critic_params, x)[0]
  d_real, d_fake = score(x_real), score(x_fake)
  gp = gradient_penalty(score, interpolate(key, x_real, x_fake), one_sided)
  w_dist = jnp.mean(d_real) - jnp.mean(d_fake)
  return -w_dist + gp_weight * gp, (w_dist, gp)


def generator_loss(gen_params, generator, critic_params, critic, encoder_params, z, c,
                   mi_weight: float = 1.0):
  """``-E D(G_c(z)) + λ CE(Q(G_c(z)), c)``; returns ``(loss, (x_fake, ce))``."""
  x_fake = networks.generate(generator, gen_params, z, c)
  score, feats = critic.apply(critic_params, x_fake)
  ce = cross_entropy(networks.encoder_logits(encoder_params, feats), c)
  return -jnp.mean(score) + mi_weight * ce, (x_fake, ce)


def cross_entropy(logits, labels):
  """Mean categorical cross entropy of integer ``labels`` under ``logits``.

  Raises:
    ValueError: if (concrete) ``labels`` lie outside ``[0, num_classes)``.
    TypeError: on non-integer ``labels``.
  """
  check_array(labels, "labels", ndim=1, dtype_kind="iu", shape=(logits.shape[0],))
  if is_concrete(labels):
    lv = np.asarray(labels)
    if lv.size and (lv.min() < 0 or lv.max() >= logits.shape[-1]):
      raise ValueError(f"labels (generator indices c) must lie in [0, {logits.shape[-1]}), got "
                       f"[{lv.min()}, {lv.max()}]")
  log_p = jax.nn.log_softmax(logits)
  return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=1))


def encoder_loss(encoder_params, critic_params, critic, x_fake, c, train_body: bool = True):
  """``CE(Q(x̃), c)`` on generated samples; with ``train_body`` the gradient also reaches the
  critic's hidden layers that ``Q`` shares (InfoGAN-style), otherwise only the head."""
  feats = critic.apply(critic_params, x_fake)[1]
  if not train_body:
    feats = jax.lax.stop_gradient(feats)
  return cross_entropy(networks.encoder_logits(encoder_params, feats), c)


def posterior(encoder_params, critic_params, critic, x):
  """``Q(c|x)`` rows for a batch ``x``."""
  return jax.nn.softmax(networks.encoder_logits(encoder_params, critic.apply(critic_params, x)[1]))


# ---------------------------------------------------------------------------------------------
# One training iteration.


@dataclasses.dataclass(frozen=True)
class DMGANConfig:
  """Static settings of one model (the paper's defaults).

  Attributes:
    num_generators: ``n_g`` (1 gives WGAN-GP).
    learn_prior: DMWGAN-PL if true; DMWGAN with a fixed uniform prior if false.
    mi_weight: λ on the InfoGAN term (0 switches it off).
    batch_size: 32.
    latent_dim: 100.
    critic_steps: 5 critic steps per generator step.
    gp_weight: 10.
    one_sided_penalty: the reference's one-sided penalty.
    g_lr, g_b1, g_b2 / d_lr, d_b1, d_b2: Adam(2e-4, 0.5, 0.5) for G and D.
    q_lr, q_b1, q_b2: Adam(2e-4, 0.9, 0.999) for the encoder.
    r_lr, r_b1, r_b2: Adam(1e-3, 0.5, 0.5) for the prior.
    kappa_scale, kappa_decay: ``κ_t = kappa_scale · kappa_decay^t``.
    encoder_hidden: units of the encoder head's hidden layer (128 as the reference; 0: linear).
    encoder_trains_body: whether the encoder loss also trains the critic layers it shares. The
      reference trains only the encoder's own variables (false).
  """

  num_generators: int = 10
  learn_prior: bool = True
  mi_weight: float = 1.0
  batch_size: int = 32
  latent_dim: int = 100
  critic_steps: int = 5
  gp_weight: float = 10.0
  one_sided_penalty: bool = True
  g_lr: float = 2e-4
  g_b1: float = 0.5
  g_b2: float = 0.5
  d_lr: float = 2e-4
  d_b1: float = 0.5
  d_b2: float = 0.5
  q_lr: float = 2e-4
  q_b1: float = 0.9
  q_b2: float = 0.999
  r_lr: float = 1e-3
  r_b1: float = 0.5
  r_b2: float = 0.5
  kappa_scale: float = 1000.0
  kappa_decay: float = 0.999
  encoder_hidden: int = 128
  encoder_trains_body: bool = False

  def __post_init__(self):
    if not isinstance(self.num_generators, int) or self.num_generators < 1:
      raise ValueError(f"num_generators (n_g) must be an int >= 1, got {self.num_generators!r}")
    if not isinstance(self.encoder_hidden, int) or self.encoder_hidden < 0:
      raise ValueError(f"encoder_hidden must be an int >= 0, got {self.encoder_hidden!r}")
    for name in ("batch_size", "latent_dim", "critic_steps"):
      v = getattr(self, name)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    check_positive(self.mi_weight, "mi_weight", allow_zero=True)
    check_positive(self.gp_weight, "gp_weight", allow_zero=True)
    check_positive(self.kappa_decay, "kappa_decay")
    check_positive(self.kappa_scale, "kappa_scale", allow_zero=True)
    if self.kappa_decay > 1:
      raise ValueError(f"kappa_decay must be <= 1 (κ_t must not grow), got {self.kappa_decay!r}")
    for net in ("g", "d", "q", "r"):
      check_positive(getattr(self, f"{net}_lr"), f"{net}_lr", allow_zero=True)
      for b in ("b1", "b2"):
        v = getattr(self, f"{net}_{b}")
        if not 0.0 <= float(v) < 1.0:
          raise ValueError(f"{net}_{b} (an Adam β) must be in [0, 1), got {v!r}")

  def optimizers(self):
    return (optax.adam(self.g_lr, self.g_b1, self.g_b2), optax.adam(self.d_lr, self.d_b1, self.d_b2),
            optax.adam(self.q_lr, self.q_b1, self.q_b2), optax.adam(self.r_lr, self.r_b1, self.r_b2))


class TrainState(NamedTuple):
  """Everything a DMWGAN(-PL) run carries from one generator step to the next."""

  gen: Any
  critic: Any
  encoder: Any
  prior: PriorState
  gen_opt: Any
  critic_opt: Any
  encoder_opt: Any
  critic_enc_opt: Any
  step: jax.Array
  key: jax.Array


def init_state(key, cfg: DMGANConfig, generator, critic) -> TrainState:
  """Fresh parameters and optimiser states; ``key`` also seeds the run's sampling."""
  k_g, k_d, k_q, k_run = jax.random.split(key, 4)
  g_opt, d_opt, q_opt, r_opt = cfg.optimizers()
  gen = networks.init_generators(k_g, generator, cfg.num_generators)
  crit = critic.init(k_d)
  enc = networks.init_encoder(k_q, critic.feature_dim, cfg.num_generators, cfg.encoder_hidden)
  return TrainState(gen, crit, enc, init_prior(cfg.num_generators, r_opt), g_opt.init(gen),
                    d_opt.init(crit), q_opt.init(enc), q_opt.init(crit), jnp.int32(0), k_run)


def make_train_step(cfg: DMGANConfig, generator, critic, sample_data):
  """Returns a pure ``step(state, t) -> (state, metrics)`` running one generator iteration.

  One iteration is ``cfg.critic_steps`` critic updates (a ``lax.scan``) and then the generator,
  encoder and prior updates, all computed from the same post-critic parameters as the
  reference's single ``session.run`` of its three optimisers. All of the iteration's randomness
  is drawn up front in a few large draws (threefry costs less per number on big arrays): real
  batches for the critic steps and the prior, latents and generator indices ``c ~ r`` for the
  critic steps and the generator step.

  Args:
    cfg: the model's static settings.
    generator, critic: architecture objects (see :mod:`jaxpapers.dmgan.networks`).
    sample_data: pure ``(key, batch) -> x`` drawing real data (jittable).
  """
  g_opt, d_opt, q_opt, r_opt = cfg.optimizers()
  B, K = cfg.batch_size, cfg.critic_steps

  def draw(key, logits):
    k_x, k_z, k_c, k_e = jax.random.split(key, 4)
    x = sample_data(k_x, (K + 1) * B)
    x = x.reshape((K + 1, B) + x.shape[1:])
    z = sample_latents(k_z, (K + 1) * B, cfg.latent_dim).reshape(K + 1, B, cfg.latent_dim)
    c = sample_components(k_c, logits, (K + 1) * B).reshape(K + 1, B)
    return x, z, c, jax.random.split(k_e, K)

  def critic_step(carry, xs):
    crit, crit_opt, gen = carry
    x_real, z, c, k_e = xs
    x_fake = networks.generate(generator, gen, z, c)
    (loss, (w_dist, gp)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        crit, critic, k_e, x_real, x_fake, cfg.gp_weight, cfg.one_sided_penalty)
    updates, crit_opt = d_opt.update(grads, crit_opt, crit)
    crit = optax.apply_updates(crit, updates)
    return (crit, crit_opt, gen), (loss, w_dist, gp)

  def step(state: TrainState, t):
    x, z, c, k_e = draw(jax.random.fold_in(state.key, t), state.prior.logits)
    (crit, crit_opt, _), (d_loss, w_dist, gp) = jax.lax.scan(
        critic_step, (state.critic, state.critic_opt, state.gen),
        (x[:K], z[:K], c[:K], k_e))

    z, c = z[K], c[K]
    (g_loss, (x_fake, ce)), g_grads = jax.value_and_grad(generator_loss, has_aux=True)(
        state.gen, generator, crit, critic, state.encoder, z, c, cfg.mi_weight)
    updates, gen_opt = g_opt.update(g_grads, state.gen_opt, state.gen)
    gen = optax.apply_updates(state.gen, updates)

    prior = state.prior
    kappa = entropy_weight(state.step, cfg.kappa_scale, cfg.kappa_decay)
    if cfg.learn_prior:
      post = posterior(state.encoder, crit, critic, x[K])
      prior, r_loss = prior_update(prior, post, kappa, r_opt)
    else:
      r_loss = jnp.float32(0.0)

    x_fake = jax.lax.stop_gradient(x_fake)
    enc, enc_opt, crit_enc_opt = state.encoder, state.encoder_opt, state.critic_enc_opt
    if cfg.mi_weight > 0 or cfg.learn_prior:
      q_loss, (q_grad_e, q_grad_d) = jax.value_and_grad(encoder_loss, argnums=(0, 1))(
          enc, crit, critic, x_fake, c, cfg.encoder_trains_body)
      upd_e, enc_opt = q_opt.update(q_grad_e, enc_opt, enc)
      enc = optax.apply_updates(enc, upd_e)
      if cfg.encoder_trains_body:
        upd_d, crit_enc_opt = q_opt.update(q_grad_d, crit_enc_opt, crit)
        crit = optax.apply_updates(crit, upd_d)
    else:
      q_loss = ce

    metrics = {"d_loss": jnp.mean(d_loss), "w_distance": jnp.mean(w_dist), "gp": jnp.mean(gp),
               "g_loss": g_loss, "q_loss": q_loss, "prior_loss": r_loss, "kappa": kappa,
               "prior_entropy": prior_entropy(prior.logits),
               "active": active_generators(prior_probs(prior.logits)).astype(jnp.float32)}
    new = TrainState(gen, crit, enc, prior, gen_opt, crit_opt, enc_opt, crit_enc_opt,
                     state.step + 1, state.key)
    return new, metrics

  return step


def sample_model(key, state: TrainState, generator, num: int, latent_dim: int = 100):
  """``num`` samples ``x = G_c(z)``, ``c ~ r``; returns ``(x, c)``.

  Raises:
    ValueError: if ``num`` or ``latent_dim`` is not a positive int.
  """
  for name, v in (("num", num), ("latent_dim", latent_dim)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
      raise ValueError(f"{name} must be an int >= 1, got {v!r}")
  kz, kc = jax.random.split(key)
  z = sample_latents(kz, num, latent_dim)
  c = sample_components(kc, state.prior.logits, num)
  return networks.generate(generator, state.gen, z, c), c


def check_batch(x, name: str = "x", ndim=None):
  """Validates a real data batch: floating, of rank ``ndim``, finite (NaNs raise)."""
  return check_array(x, name, ndim=ndim, dtype_kind="f", finite=True)


VARIANTS = ("wgan_gp", "wgan_gp_matched", "dmwgan", "dmwgan_pl", "dmwgan_pl_nomi")


def variant_config(variant: str, num_generators: int = 10, **overrides) -> DMGANConfig:
  """The paper's models and ablations by name.

  * ``wgan_gp``: one generator (WGAN-GP);
  * ``wgan_gp_matched``: one generator (the caller widens it to match ``n_g`` generators' size);
  * ``dmwgan``: ``n_g`` generators, fixed uniform prior, λ = 1;
  * ``dmwgan_pl``: ``n_g`` generators with the learned prior, λ = 1;
  * ``dmwgan_pl_nomi``: learned prior with λ = 0.
  """
  check_in(variant, "variant", VARIANTS)
  if variant in ("wgan_gp", "wgan_gp_matched"):
    base = dict(num_generators=1, learn_prior=False, mi_weight=0.0)
  elif variant == "dmwgan":
    base = dict(num_generators=num_generators, learn_prior=False, mi_weight=1.0)
  elif variant == "dmwgan_pl":
    base = dict(num_generators=num_generators, learn_prior=True, mi_weight=1.0)
  else:
    base = dict(num_generators=num_generators, learn_prior=True, mi_weight=0.0)
  base.update(overrides)
  return DMGANConfig(**base)
