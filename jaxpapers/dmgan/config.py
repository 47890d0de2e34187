"""Configurations of the DMWGAN(-PL) experiments at ``smoke`` / ``cpu`` / ``full`` scale.

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018. ``cpu`` and ``full`` both use the paper's toy setting (4 segments,
n_g = 10, 30k generator steps, Adam(2e-4, 0.5, 0.5), κ_t = 1000·0.999^t): one toy run takes about a
CPU-minute. They differ in the classifier's training and checkpointing (the reproductions also
give ``full`` more seeds, the reference's 83k toy generator steps and longer digits runs).
``smoke`` only checks that everything runs.
"""

from __future__ import annotations

import ml_collections

from jaxpapers._src.validation import check_in

SCALES = ("smoke", "cpu", "full")


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """The default experiment (toy 4 segments, DMWGAN-PL) at ``scale``."""
  if scale == "quick":  # one run of the cpu setting; the quick reproduction tier picks its rows
    return get_config("cpu")
  check_in(scale, "scale", SCALES)
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.dataset = "segments"  # segments | segments3 | circles | ring | digits | mnist
  c.num_modes = 6  # ring of Gaussians only
  c.piece_weights = None  # toy sets: per-piece masses (None: the set's own, equal but segments3)
  c.variant = "dmwgan_pl"  # wgan_gp | wgan_gp_matched | dmwgan | dmwgan_pl | dmwgan_pl_nomi
  c.num_generators = 10
  c.generator_width = 1.0  # images: 0.25 is the paper's per-generator width with n_g = 20
  c.seed = 0
  c.batch_size = 32
  c.critic_steps = 5
  c.one_sided_penalty = True
  c.learning_rate = 2e-4  # G and D
  c.kappa_decay = 0.999
  c.num_steps = 30_000
  c.chunk_size = 1000
  c.eval_samples = 4000
  c.off_threshold = 0.05
  c.active_threshold = 0.05
  c.classifier_steps = 1500
  c.checkpoint_every = 5000  # generator steps; 0 disables checkpoints
  c.save_png = True
  c.progress = True
  c.data_dir = ml_collections.config_dict.placeholder(str)
  if scale == "cpu":
    c.classifier_steps = 600
    c.checkpoint_every = 0
  elif scale == "smoke":
    c.num_steps = 40
    c.chunk_size = 20
    c.learning_rate = 1e-3
    c.kappa_decay = 0.9
    c.eval_samples = 500
    c.classifier_steps = 50
    c.checkpoint_every = 0
    c.progress = False
  return c
