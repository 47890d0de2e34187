"""``train_and_evaluate``: one DMWGAN(-PL) / WGAN-GP run on a toy set or an image set.

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018. Training runs as jitted ``lax.scan`` chunks of generator iterations
(:func:`jaxpapers._src.loop.run_chunked`); metrics go to ``<workdir>/metrics.jsonl``; with
``checkpoint_every > 0`` the state is checkpointed and a killed run resumes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.checkpoint import DEFAULT_IGNORED, Checkpointer
from jaxpapers._src.loop import run_chunked
from jaxpapers._src.metrics import MetricsWriter, read_history, tail_means
from jaxpapers._src.validation import check_in
from jaxpapers.dmgan import core, networks, plotting
from jaxpapers.dmgan import data as data_lib
from jaxpapers.dmgan import metrics as metrics_lib

TOY_SETS = data_lib.TOY_NAMES
# The reference's toy generator is 100 -> 128/4 -> 64/4 -> 2 per generator (n_g = 10); its
# single-generator WGAN-GP baseline uses the full width, 100 -> 128 -> 64 -> 2.
TOY_FULL_HIDDEN = (128, 64)
_init_state = jax.jit(core.init_state, static_argnums=(1, 2, 3))
_image_metrics = jax.jit(metrics_lib.image_metrics)
_train_classifier = jax.jit(metrics_lib.train_classifier, static_argnames=("num_classes", "hidden", "steps"))
IMAGE_SETS = ("digits", "mnist")


@dataclasses.dataclass
class Problem:
  """What a config describes: the model settings, architectures and data."""

  cfg: core.DMGANConfig
  generator: Any
  critic: Any
  sample_data: Any
  toy: data_lib.ToyDataset | None = None
  images: np.ndarray | None = None
  labels: np.ndarray | None = None


def build_problem(config) -> Problem:
  """Turns an experiment config into a :class:`Problem` (validates names and sizes first)."""
  check_in(config.dataset, "config.dataset", TOY_SETS + IMAGE_SETS)
  check_in(config.variant, "config.variant", core.VARIANTS)
  if not isinstance(config.num_generators, int) or config.num_generators < 1:
    raise ValueError(f"config.num_generators (n_g) must be an int >= 1, got {config.num_generators!r}")
  cfg = core.variant_config(
      config.variant, config.num_generators, batch_size=config.batch_size,
      critic_steps=config.critic_steps, one_sided_penalty=config.one_sided_penalty,
      g_lr=config.learning_rate, d_lr=config.learning_rate, kappa_decay=config.kappa_decay)
  width = config.generator_width
  if config.dataset in TOY_SETS:
    kwargs = {"num_modes": config.num_modes} if config.dataset == "ring" else {}
    weights = config.get("piece_weights")
    if weights is not None:
      kwargs["weights"] = tuple(weights)
    toy = data_lib.toy_dataset(config.dataset, **kwargs)
    generator, critic = networks.toy_models(width=width)
    if config.variant == "wgan_gp":
      generator = dataclasses.replace(generator, hidden=TOY_FULL_HIDDEN)
    problem = Problem(cfg, generator, critic, data_lib.toy_sampler(toy), toy=toy)
  else:
    if config.dataset == "digits":
      images, labels = data_lib.load_digits()
      generator, critic = networks.digits_models(width)
    else:
      images, labels = data_lib.load_mnist("train", config.get("data_dir"))
      generator, critic = networks.mnist_models(width)
    problem = Problem(cfg, generator, critic, data_lib.array_sampler(images), images=images,
                      labels=labels)
  if config.variant == "wgan_gp_matched":
    ref = dataclasses.replace(problem.generator, width=1.0 if config.dataset in TOY_SETS else width)
    problem.generator = dataclasses.replace(
        problem.generator, width=networks.matched_width(ref, config.num_generators))
  return problem


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _toy_scores(key, state, generator, toy, num, off_threshold):
  k_s, k_r = jax.random.split(key)
  x, c = core.sample_model(k_s, state, generator, num, generator.latent_dim)
  real = data_lib.sample_toy(k_r, toy, num)
  dist = data_lib.distance_to_manifold(toy, x)
  return (x, c, data_lib.toy_labels(toy, x), dist <= off_threshold,
          metrics_lib.off_manifold_fraction(toy, x, off_threshold),
          metrics_lib.off_manifold_fraction(toy, real, off_threshold),
          metrics_lib.energy_distance(x, real))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _generator_pieces(key, state, generator, toy, per_generator):
  """The piece that most of each generator's ``per_generator`` samples are nearest to."""
  n_g = networks.num_generators_of(state.gen)
  z = core.sample_latents(key, n_g * per_generator, generator.latent_dim)
  c = jnp.repeat(jnp.arange(n_g, dtype=jnp.int32), per_generator)
  labels = data_lib.toy_labels(toy, networks.generate(generator, state.gen, z, c))
  votes = jax.nn.one_hot(labels.reshape(n_g, per_generator), toy.num_pieces).sum(1)
  return jnp.argmax(votes, axis=1)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _sample(key, state, generator, num):
  return core.sample_model(key, state, generator, num, generator.latent_dim)


def evaluate(key, state: core.TrainState, problem: Problem, num: int, *, off_threshold=0.05,
             active_threshold=0.05, classifier=None) -> dict:
  """Metrics of a trained model: prior statistics and toy or image sample quality."""
  cfg = problem.cfg
  k_s, k_r = jax.random.split(key)
  probs = core.prior_probs(state.prior.logits)
  out = {"prior": np.asarray(probs).round(4).tolist(),
         "active_generators": int(core.active_generators(probs, active_threshold)),
         "prior_perplexity": float(jnp.exp(core.prior_entropy(state.prior.logits)))}
  if problem.toy is not None:
    x, c, near, on, off, real_off, energy = _toy_scores(key, state, problem.generator, problem.toy,
                                                        num, float(off_threshold))
    piece_mass = np.bincount(np.asarray(near)[np.asarray(on)], minlength=problem.toy.num_pieces) / num
    gen_piece = np.asarray(_generator_pieces(k_r, state, problem.generator, problem.toy, 200))
    prior_piece = np.bincount(gen_piece, weights=np.asarray(probs, np.float64),
                              minlength=problem.toy.num_pieces)
    out.update(
        off_manifold=float(off), real_off_manifold=float(real_off), energy_distance=float(energy),
        piece_mass=piece_mass.round(4).tolist(), true_piece_mass=list(problem.toy.masses),
        prior_piece_mass=prior_piece.round(4).tolist(),
        pieces_covered=int(np.sum(piece_mass >= 0.5 / problem.toy.num_pieces)))
  elif problem.images is None:  # a custom sampler: only the prior's statistics
    x, c = _sample(k_s, state, problem.generator, num)
  else:
    x, c = _sample(k_s, state, problem.generator, num)
    n = min(num, problem.images.shape[0])
    idx = np.asarray(jax.random.choice(k_r, problem.images.shape[0], (n,), replace=False))
    m = _image_metrics(classifier, x, jnp.asarray(problem.images[idx]), jnp.asarray(problem.labels))
    out.update(jsd=float(m["jsd"]), confident_fraction=float(m["confident_fraction"]),
               quality_curve=np.asarray(m["quality_curve"]).round(4).tolist(),
               frechet=float(m["frechet"]))
  out["generator_usage"] = np.bincount(np.asarray(c), minlength=cfg.num_generators).tolist()
  return out, (x, c)


# Settings of the evaluation only: a finished or killed run may be resumed with other values.
_EVAL_ONLY = ("eval_samples", "classifier_steps", "off_threshold", "active_threshold")


def train(config, workdir: str | None = None, problem: Problem | None = None):
  """Trains one model; returns ``(state, history, problem)``."""
  problem = build_problem(config) if problem is None else problem
  step_fn = core.make_train_step(problem.cfg, problem.generator, problem.critic, problem.sample_data)
  state = _init_state(jax.random.key(config.seed), problem.cfg, problem.generator, problem.critic)
  start = 0
  ckpt = None
  if workdir is not None and config.checkpoint_every > 0:
    ckpt = Checkpointer(os.path.join(workdir, "ckpt"), config=config,
                        ignore=DEFAULT_IGNORED + _EVAL_ONLY)
    restored = ckpt.restore(state)
    if restored is not None:
      state, start = restored
  writer = MetricsWriter(os.path.join(workdir, "metrics.jsonl") if workdir else None, log=False)
  last_saved = [start]

  def on_chunk(st, step, last):  # run_chunked has written the chunk's steps to metrics.jsonl
    if ckpt is not None and (step - last_saved[0] >= config.checkpoint_every or step == config.num_steps):
      ckpt.save(step, st)
      last_saved[0] = step

  chunk = max(1, min(config.chunk_size, config.num_steps))
  state, hist = run_chunked(step_fn, state, config.num_steps, chunk_size=chunk, start_step=start,
                            desc=f"dmgan {config.dataset}/{config.variant}",
                            progress=config.progress, on_chunk=on_chunk, writer=writer)
  if not hist:  # a finished run restored, nothing left to run: keep the metrics' names
    hist = {k: np.zeros(0) for k in jax.eval_shape(step_fn, state, jnp.int32(0))[1]}
  writer.close()
  if ckpt is not None:
    ckpt.close()
  return state, hist, problem


def train_and_evaluate(config, workdir: str | None) -> dict:
  """Trains the configured model, evaluates it, writes metrics (and a PNG) under ``workdir``.

  Returns:
    A dict with the final training metrics and the evaluation (``off_manifold``,
    ``active_generators``, ``prior``, ... for toy sets; ``jsd``, ``frechet``, ... for images).
  """
  if workdir is not None:
    workdir_lib.prepare(workdir)  # a clear error (naming the path) before any work
  state, hist, problem = train(config, workdir)
  classifier = None
  if problem.images is not None:
    classifier = _train_classifier(
        jax.random.key(10_000 + config.seed), jnp.asarray(problem.images),
        jnp.asarray(problem.labels), steps=config.classifier_steps)
  result, (x, c) = evaluate(jax.random.key(20_000 + config.seed), state, problem,
                            config.eval_samples, off_threshold=config.off_threshold,
                            active_threshold=config.active_threshold, classifier=classifier)
  if classifier is not None:
    result["classifier_accuracy"] = float(metrics_lib.classifier_accuracy(
        classifier, jnp.asarray(problem.images), jnp.asarray(problem.labels)))
  result["steps"] = int(state.step)
  if workdir is not None:  # the whole run's history, also when it was killed and resumed
    hist = read_history(os.path.join(workdir, "metrics.jsonl"), hist, first_step=1,
                        last_step=int(state.step))
  result["final"] = tail_means(hist, 0.1)  # the mean over the last 10% of steps
  result["variant"] = config.variant
  result["dataset"] = config.dataset
  if workdir is not None:
    with MetricsWriter(os.path.join(workdir, "metrics.jsonl"), log=False) as w:
      w.write(int(state.step), **{k: v for k, v in result.items() if k != "final"})
    if config.save_png:
      n_g = problem.cfg.num_generators
      if problem.toy is not None:
        real = data_lib.sample_toy(jax.random.key(1), problem.toy, 1000)
        path = plotting.scatter_png(os.path.join(workdir, "samples.png"), x[:1500], c[:1500], n_g,
                                    real=real)
      else:
        order = np.argsort(np.asarray(c[:100]), kind="stable")
        path = plotting.image_grid_png(os.path.join(workdir, "samples.png"),
                                       np.asarray(x[:100])[order], np.asarray(c[:100])[order], n_g)
      result["png"] = os.fspath(path)
  if not all(math.isfinite(v) for v in result["final"].values()):
    result["diverged"] = True
  return result
