"""Classifiers whose intermediate representations are scored (Flax linen).

Every model maps ``(N, H, W, C)`` images to ``(logits, features)`` where ``features`` is a dict
of named intermediate activations (flattened to ``(N, d)``), so the detection layer is chosen by
name (:data:`REPRESENTATION_LAYERS` lists the names per model).

* :class:`ResNet32` — the paper's CIFAR-10 network: pre-activation ResNet with 3 stages of
  5 basic units (16, 32, 64 filters). Tran et al. score the output of the unit two before the end,
  i.e. the third unit of the last stage, named ``"s3u3"``.
  The same class with fewer units per stage and narrower widths gives the CPU-scale ResNets
  (``resnet8``/``resnet14``/``resnet20``, see :data:`RESNET_UNITS`).
* :class:`SmallCNN` and :class:`MLP` — CPU-scale models.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _resnet_layers(units):
  return tuple(f"s{s}u{u}" for s in (1, 2, 3) for u in range(1, units + 1)) + ("pool",)


# Pre-activation ResNets of depth 6n + 2: n units per stage.
RESNET_UNITS = {"resnet8": 1, "resnet14": 2, "resnet20": 3, "resnet32": 5}
REPRESENTATION_LAYERS = {
    "mlp": ("hidden1",),  # one name per hidden layer: hidden1, hidden2, ...
    "cnn": ("conv1", "conv2", "fc"),
    **{name: _resnet_layers(n) for name, n in RESNET_UNITS.items()},
}
# ResNets: the paper's rule for ResNet-32 (the output of the unit two before the end, s3u3),
# clipped to the first unit of the last stage for shallower nets.
DEFAULT_LAYER = {"mlp": "hidden1", "cnn": "fc",
                 **{name: f"s3u{max(n - 2, 1)}" for name, n in RESNET_UNITS.items()}}


def _flat(x):
  return x.reshape(x.shape[0], -1)


class MLP(nn.Module):
  """ReLU hidden layers (``hidden1``, ``hidden2``, ...) and a linear head.

  The digits default, one hidden layer of 512 units, is the one with which the 9→4 attack is
  learned and fully detected on every seed we tried (a (128, 64) MLP scored at its last hidden
  layer caught 9–13 of 13 poisons).
  """

  num_classes: int = 10
  hidden: Sequence[int] = (512,)

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    feats = {}
    h = _flat(x)
    for i, width in enumerate(self.hidden):
      h = nn.relu(nn.Dense(width)(h))
      feats[f"hidden{i + 1}"] = h
    return nn.Dense(self.num_classes)(h), feats


class SmallCNN(nn.Module):
  """conv(3×3)-ReLU-maxpool ×2, a ReLU dense layer ``fc`` and a linear head."""

  num_classes: int = 10
  channels: Sequence[int] = (16, 32)
  fc: int = 128

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    feats = {}
    h = x
    for i, ch in enumerate(self.channels):
      h = nn.relu(nn.Conv(ch, (3, 3))(h))
      h = nn.max_pool(h, (2, 2), (2, 2))
      feats[f"conv{i + 1}"] = _flat(h)
    h = nn.relu(nn.Dense(self.fc)(_flat(h)))
    feats["fc"] = h
    return nn.Dense(self.num_classes)(h), feats


class _Unit(nn.Module):
  filters: int
  stride: int

  @nn.compact
  def __call__(self, x, train):
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    h = nn.relu(norm()(x))
    shortcut = x
    if self.stride != 1 or x.shape[-1] != self.filters:
      shortcut = nn.Conv(self.filters, (1, 1), (self.stride, self.stride), use_bias=False)(h)
    h = nn.Conv(self.filters, (3, 3), (self.stride, self.stride), use_bias=False)(h)
    h = nn.relu(norm()(h))
    h = nn.Conv(self.filters, (3, 3), use_bias=False)(h)
    return shortcut + h


class ResNet32(nn.Module):
  """Pre-activation ResNet-32 for 32×32 inputs: 3 stages × 5 units, 16/32/64 filters."""

  num_classes: int = 10
  filters: Sequence[int] = (16, 32, 64)
  units_per_stage: int = 5

  @nn.compact
  def __call__(self, x, train: bool = False):
    feats = {}
    h = nn.Conv(self.filters[0], (3, 3), use_bias=False)(x)
    for s, f in enumerate(self.filters):
      for u in range(self.units_per_stage):
        h = _Unit(f, 2 if (s > 0 and u == 0) else 1)(h, train)
        feats[f"s{s + 1}u{u + 1}"] = _flat(h)
    h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
    h = jnp.mean(h, axis=(1, 2))
    feats["pool"] = h
    return nn.Dense(self.num_classes)(h), feats


def make_model(name: str, num_classes: int, filters: Sequence[int] | None = None) -> nn.Module:
  """``"mlp"``, ``"cnn"`` or a pre-activation ResNet (``"resnet8"``, ``"resnet14"``,
  ``"resnet20"``, ``"resnet32"``; ``filters`` = per-stage widths, default (16, 32, 64))."""
  if name not in REPRESENTATION_LAYERS:
    raise ValueError(f"model must be one of {sorted(REPRESENTATION_LAYERS)}, got {name!r}")
  if filters is not None and (name not in RESNET_UNITS or len(filters) != 3
                              or any(int(f) < 1 for f in filters)):
    raise ValueError(f"filters must be three positive widths for a ResNet model, got "
                     f"{filters!r} for model {name!r}")
  if name == "mlp":
    return MLP(num_classes)
  if name == "cnn":
    return SmallCNN(num_classes)
  return ResNet32(num_classes, filters=tuple(int(f) for f in (filters or (16, 32, 64))),
                  units_per_stage=RESNET_UNITS[name])


@functools.lru_cache(maxsize=32)
def _jitted_init(model: nn.Module, image_shape: tuple[int, ...]):
  return jax.jit(lambda key: model.init(key, jnp.zeros((1, *image_shape), jnp.float32),
                                        train=False))


def init_variables(key: jax.Array, model: nn.Module, image_shape) -> dict:
  """Initial ``{"params": ..., ["batch_stats": ...]}`` for images of shape ``(H, W, C)``.

  Runs as one jitted program (cached per model and shape): op-by-op Flax initialisation costs
  seconds of dispatch on a busy CPU.
  """
  return dict(_jitted_init(model, tuple(int(s) for s in image_shape))(key))
