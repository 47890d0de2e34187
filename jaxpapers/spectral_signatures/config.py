"""Configs for the spectral-signature experiments (Tran, Li & Mądry, NeurIPS 2018).

* ``smoke`` — digits, MLP (scored at ``hidden2``), 9→4 at ε = 10%, single-pixel trigger in the
  bottom-right corner, one seed, spectral score only (seconds).
* ``cpu`` — digits, MLP, pairs 9→4, 3→8, 1→7 at ε ∈ {5%, 10%}, pixel trigger, seeds 0–2, with
  the peer detectors (minutes).
* ``full`` — CIFAR-10, ResNet-32 with the reference training setup (SGD momentum 0.9,
  lr 0.1 → 0.01 → 0.001, weight decay 2e-4, crop + flip, batch 128, 80k steps),
  representations after unit ``s3u3``; pairs × ε ∈ {5%, 10%} × triggers (GPU).
"""

from __future__ import annotations

import ml_collections

SCALES = ("smoke", "cpu", "full")


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """Returns the experiment config for ``scale`` in ``smoke`` / ``cpu`` / ``full``."""
  if scale == "quick":  # one run of the cpu setting; the quick reproduction tier picks its rows
    return get_config("cpu")
  if scale not in SCALES:
    raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.dataset = "digits"
  c.data_dir = ""
  c.train_per_class = 0  # 0: all (CIFAR-10 subsets at cpu scale).
  c.test_per_class = 0
  c.test_fraction = 0.3  # digits' held-out share.
  c.model = "mlp"
  c.layer = ""  # "" → models.DEFAULT_LAYER[model].
  c.pairs = [(9, 4)]
  c.epsilons = [0.1]
  c.triggers = ["pixel"]
  c.seeds = [0]
  c.position = (7, 7)  # digits: the bottom-right corner pixel, nearly always off (mean 0.02).
  c.colour = (1.0,)  # one entry per channel (or one for all)
  c.detectors = ["spectral"]  # smoke: the paper's score only (each detector is one compile).
  c.retrain_peers = False
  c.train = ml_collections.ConfigDict(dict(
      num_steps=1500, batch_size=64, learning_rate=0.1, lr_boundaries=(0.5, 0.75),
      momentum=0.9, weight_decay=2e-4, augment=False))
  if scale in ("cpu", "full"):
    c.detectors = ["spectral", "spectral_uncentered", "activation_clustering", "spectre"]
  if scale == "cpu":
    c.pairs = [(9, 4), (3, 8), (1, 7)]
    c.epsilons = [0.05, 0.1]
    c.seeds = [0, 1, 2]
  elif scale == "full":
    c.dataset = "cifar10"
    c.model = "resnet32"
    c.position = (29, 29)
    c.colour = (1.0, 1.0, 1.0)
    # Label pairs (airplane→bird, automobile→cat, cat→dog, horse→deer, truck→cat); CIFAR-10
    # indices. The paper's Table 1 reports a list of such pairs; these are ours.
    c.pairs = [(0, 2), (1, 3), (3, 5), (7, 4), (9, 3)]
    c.epsilons = [0.05, 0.1]
    c.triggers = ["pixel", "x", "l"]
    c.seeds = [0, 1, 2]
    c.train = ml_collections.ConfigDict(dict(
        num_steps=80_000, batch_size=128, learning_rate=0.1, lr_boundaries=(0.5, 0.75),
        momentum=0.9, weight_decay=2e-4, augment=True))
  return c


def get_cifar_cpu_config() -> ml_collections.ConfigDict:
  """CIFAR-10 at CPU scale: a small CNN on 200 JPEGs per class, airplane→bird, ε = 10%, X trigger,
  400 SGD steps (about 8 epochs; a CPU budget, far from the paper's 80k-step ResNet-32)."""
  c = get_config("cpu")
  c.dataset = "cifar10"
  c.model = "cnn"
  c.train_per_class = 200
  c.test_per_class = 100
  c.position = (29, 29)
  c.colour = (1.0, 1.0, 1.0)
  c.pairs = [(0, 2)]
  c.epsilons = [0.1]
  c.triggers = ["x"]
  c.seeds = [0]
  c.train.num_steps = 400
  return c
