"""Small classifiers for the Pipe-SGD experiments: an MNIST-style MLP and CNNs (pure JAX).

Li et al. (NeurIPS 2018) train an MLP and a LeNet-style CNN on MNIST and a CNN on CIFAR-10. The
models here are the same families at CPU size; parameters are plain dicts of arrays so that the
gradient pytree can be flattened into one AllReduce message.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.prng import as_key
from jaxpapers._src.validation import check_array

MODELS = ("mlp", "cnn")


def _he_normal(key, shapes):
  """He-normal weights (std sqrt(2 / fan_in), fan_in = prod(shape[:-1])) for every shape in
  ``shapes``, drawn as one normal vector and sliced (one RNG call keeps compilation cheap)."""
  sizes = [int(np.prod(sh)) for sh in shapes]
  flat = jax.random.normal(key, (sum(sizes),), jnp.float32)
  out, start = [], 0
  for sh, size in zip(shapes, sizes):
    fan_in = int(np.prod(sh[:-1]))
    out.append(flat[start:start + size].reshape(sh) * np.float32(np.sqrt(2.0 / fan_in)))
    start += size
  return out


def init_mlp(key: jax.Array, in_dim: int, hidden: tuple[int, ...], num_classes: int) -> dict:
  """He-initialised MLP ``in_dim → hidden… → num_classes`` (ReLU), zero biases."""
  key = as_key(key)
  sizes = (int(in_dim), *map(int, hidden), int(num_classes))
  if min(sizes) < 1:
    raise ValueError(f"layer sizes must be >= 1, got {sizes}")
  return _init_mlp(key, sizes)


@functools.partial(jax.jit, static_argnums=1)
def _init_mlp(key, sizes):
  ws = _he_normal(key, [(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
  return {f"dense{i}": {"w": w, "b": jnp.zeros((w.shape[1],), jnp.float32)}
          for i, w in enumerate(ws)}


def mlp_apply(params: dict, x: jax.Array) -> jax.Array:
  """Logits of the MLP on ``x`` of shape ``[batch, ...]`` (flattened)."""
  h = x.reshape(x.shape[0], -1)
  n = len(params)
  for i in range(n):
    layer = params[f"dense{i}"]
    h = h @ layer["w"] + layer["b"]
    if i < n - 1:
      h = jax.nn.relu(h)
  return h


def init_cnn(key: jax.Array, image_shape: tuple[int, int, int], channels: tuple[int, ...],
             num_classes: int, hidden: int = 64) -> dict:
  """LeNet-style CNN: 3×3 conv + ReLU + 2×2 max-pool per entry of ``channels``, then 2 dense."""
  key = as_key(key)
  h, w, _ = map(int, image_shape)
  for _ in channels:
    h, w = h // 2, w // 2
  if h < 1 or w < 1:
    raise ValueError(f"image_shape {image_shape} is too small for {len(channels)} pooling layers")
  return _init_cnn(key, tuple(map(int, image_shape)), tuple(map(int, channels)), int(num_classes),
                   int(hidden))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _init_cnn(key, image_shape, channels, num_classes, hidden):
  h, w, cin = image_shape
  shapes = []
  for cout in channels:
    shapes.append((3, 3, cin, cout))
    cin = cout
    h, w = h // 2, w // 2
  shapes += [(h * w * cin, hidden), (hidden, num_classes)]
  ws = _he_normal(key, shapes)
  params = {f"conv{i}": {"w": ws[i], "b": jnp.zeros((c,), jnp.float32)}
            for i, c in enumerate(channels)}
  params["fc0"] = {"w": ws[-2], "b": jnp.zeros((hidden,), jnp.float32)}
  params["fc1"] = {"w": ws[-1], "b": jnp.zeros((num_classes,), jnp.float32)}
  return params


def cnn_apply(params: dict, x: jax.Array) -> jax.Array:
  """Logits of the CNN on NHWC images ``x``."""
  i = 0
  while f"conv{i}" in params:
    layer = params[f"conv{i}"]
    x = jax.lax.conv_general_dilated(x, layer["w"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + layer["b"]
    x = jax.nn.relu(x)
    x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    i += 1
  x = x.reshape(x.shape[0], -1)
  x = jax.nn.relu(x @ params["fc0"]["w"] + params["fc0"]["b"])
  return x @ params["fc1"]["w"] + params["fc1"]["b"]


def init_model(key: jax.Array, name: str, image_shape: tuple[int, int, int], num_classes: int,
               hidden: tuple[int, ...] = (64,), channels: tuple[int, ...] = (8, 16)):
  """``(params, apply_fn)`` for ``name`` in ``("mlp", "cnn")``.

  Raises:
    ValueError: unknown ``name``, ``image_shape`` not three positive sizes, or bad layer sizes.
  """
  if name not in MODELS:
    raise ValueError(f"model must be one of {list(MODELS)}, got {name!r}")
  shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
  if shape is None or len(shape) != 3 or any(
      isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
    raise ValueError(f"image_shape must be (height, width, channels) of positive integers, got "
                     f"{image_shape!r}")
  if name == "mlp":
    in_dim = int(image_shape[0] * image_shape[1] * image_shape[2])
    return init_mlp(key, in_dim, tuple(hidden), num_classes), mlp_apply
  return init_cnn(key, image_shape, tuple(channels), num_classes, hidden=int(hidden[0])), cnn_apply


def cross_entropy_loss(apply_fn, params, batch) -> jax.Array:
  """Mean softmax cross-entropy of ``apply_fn(params, batch["x"])`` against ``batch["y"]``.

  A label outside ``[0, num_classes)`` gives ``NaN`` (an honest value, also under ``jit``).

  Raises:
    TypeError: ``batch["y"]`` is not an integer array.
    ValueError: ``batch["y"]`` is not rank 1 or is empty.
  """
  y = check_array(batch["y"], "batch['y']", ndim=1, dtype_kind="iu")
  if y.shape[0] == 0:
    raise ValueError("batch['y'] is empty: the mean loss of no examples is undefined")
  logits = apply_fn(params, batch["x"])
  logp = jax.nn.log_softmax(logits)
  return -jnp.mean(jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=1))


def accuracy(apply_fn, params, x, y) -> jax.Array:
  """Fraction of ``argmax apply_fn(params, x) == y``."""
  return jnp.mean(jnp.argmax(apply_fn(params, x), axis=-1) == y)
