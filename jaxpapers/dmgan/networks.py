"""Generator, critic and encoder networks as pure ``init``/``apply`` functions on dict pytrees.

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018. The paper's DMWGAN uses ``n_g`` generators that share no weights; here
they are one *stacked* pytree (a leading axis of size ``n_g`` on every leaf) evaluated with
``jax.vmap``, so the Python/tracing cost does not grow with ``n_g``. The critic returns its score
and its last hidden layer; the encoder ``Q(c|x)`` is a head on that hidden layer (with one hidden
layer of its own, as the reference). Generators with ``apply_selected`` run only the generator each
sample selected (per-sample weights gathered from the stack).

Architectures (the issue's defaults):

* toy: generator ``100 -> 32 -> 16 -> 2`` (ReLU, linear output), critic ``2 -> 64 -> 128 -> 1``
  (leaky ReLU 0.2).
* images: a DCGAN-style generator ``z -> dense -> dense(s*s*C) -> stride-2 transposed convs ->
  tanh`` and a critic of stride-2 convs, a dense hidden layer and a linear score. With
  ``width=0.25`` every channel/unit count is a quarter of the full-width model (the paper's MNIST
  setting with ``n_g = 20``). No batch normalisation is used (WGAN-GP critics must not batch-
  normalise; we keep the generators normalisation-free too so a stacked generator is a pure
  function of its parameters).
"""

from __future__ import annotations

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.conv import patches
from jaxpapers._src.validation import check_array, check_positive, is_concrete


def leaky_relu(x, slope: float = 0.2):
  return jnp.where(x >= 0, x, slope * x)


def _dense_init(key, fan_in: int, fan_out: int):
  # Glorot-uniform weights (TF's default for dense layers), zero bias.
  lim = math.sqrt(6.0 / (fan_in + fan_out))
  return {"w": jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -lim, lim),
          "b": jnp.zeros((fan_out,), jnp.float32)}


def _conv_init(key, k: int, c_in: int, c_out: int):
  lim = math.sqrt(6.0 / (k * k * (c_in + c_out)))
  return {"w": jax.random.uniform(key, (k, k, c_in, c_out), jnp.float32, -lim, lim),
          "b": jnp.zeros((c_out,), jnp.float32)}


def dense(p, x):
  return x @ p["w"] + p["b"]


def selected_dense(stacked, x, c, method: str = "gather"):
  """Per-sample dense layer ``x_b W[c_b] + b[c_b]`` from stacked weights ``(n_g, in, out)``.

  Only the selected generator's weights act on each sample, so the weight gradient of an
  unselected generator is exactly zero. Two equivalent evaluations:

  * ``"gather"``: copy each sample's ``W[c_b]`` and batch the matrix-vector products (fastest for
    small layers such as the toy generators');
  * ``"gemm"``: one matrix product ``[onehot(c_b) ⊗ x_b] @ vec(W)`` with a ``(B, n_g·in)`` left
    factor: forward and backward are single dense GEMMs without per-sample weight copies or a
    scatter-add (faster for large layers such as the image generators').
  """
  if method == "gather":
    return jnp.einsum("bi,bio->bo", x, stacked["w"][c]) + stacked["b"][c]
  if method != "gemm":
    raise ValueError(f"method must be 'gather' or 'gemm', got {method!r}")
  n_g, d_in, d_out = stacked["w"].shape
  mask = jax.nn.one_hot(c, n_g, dtype=x.dtype)
  xm = (mask[:, :, None] * x[:, None, :]).reshape(x.shape[0], n_g * d_in)
  return xm @ stacked["w"].reshape(n_g * d_in, d_out) + stacked["b"][c]


_DN = ("NHWC", "HWIO", "NHWC")


def gemm_convolutions() -> bool:
  """Whether convolutions run as patches times a matrix (on CPU) rather than as XLA convolutions.

  XLA:CPU differentiates convolutions slowly, and the WGAN-GP penalty differentiates the critic
  twice: on the MNIST critic the penalty's parameter gradient takes ~2.7x less time as explicit
  patches (strided slices) and one GEMM per layer. Other backends keep ``lax`` convolutions.
  """
  return jax.default_backend() == "cpu"


def _same_pads(n: int, k: int, stride: int):
  out = -(-n // stride)
  total = max((out - 1) * stride + k - n, 0)
  return out, (total // 2, total - total // 2)  # lax's "SAME" split (extra on the right)


def conv(p, x, stride: int = 2):
  """``lax.conv_general_dilated(x, w, (s, s), "SAME") + b`` (as patches @ kernel on CPU)."""
  w = p["w"]
  if not gemm_convolutions():
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=_DN) + p["b"]
  k = w.shape[0]
  pads = [_same_pads(n, k, stride)[1] for n in x.shape[1:3]]
  return patches(x, k, stride, pads) @ w.reshape(-1, w.shape[3]) + p["b"]


def _subpixel_taps(k: int, s: int):
  """For ``lax.conv_transpose(..., (s, s), "SAME")`` with a ``k``-tap kernel: which tap feeds
  output phase ``r`` from input offset ``d`` (``-1``: none), as an ``(s, k')`` table, and the
  offsets' range ``[lo, hi]`` (so ``k' = hi - lo + 1``)."""
  pad_len = k + s - 2
  pad_a = k - 1 if s > k - 1 else -(-pad_len // 2)  # lax.conv_transpose's "SAME" padding
  tap = {(r, d): s * d + pad_a - r for r in range(s) for d in range(-k - 1, k + 2)}
  offsets = [d for d in range(-k - 1, k + 2) if any(0 <= tap[r, d] < k for r in range(s))]
  lo, hi = min(offsets), max(offsets)
  table = [[tap[r, d] if 0 <= tap[r, d] < k else -1 for d in range(lo, hi + 1)] for r in range(s)]
  return table, lo, hi


def subpixel_kernel(w, stride: int = 2):
  """Rewrites a transposed-convolution kernel ``(..., k, k, c_in, c_out)`` as a stride-1 kernel
  ``(..., k', k', c_in, s·s·c_out)`` whose output channels are the ``s×s`` output phases.

  Returns ``(kernel, lo, hi)``; the stride-1 convolution pads ``(-lo, hi)`` on both spatial axes.
  """
  k = w.shape[-4]
  table, lo, hi = _subpixel_taps(k, stride)
  idx = jnp.asarray([[t if t >= 0 else k for t in row] for row in table])  # k: a zero tap
  zero_h = jnp.zeros(w.shape[:-4] + (1,) + w.shape[-3:], w.dtype)
  wp = jnp.concatenate([w, zero_h], axis=-4)
  zero_w = jnp.zeros(wp.shape[:-3] + (1,) + wp.shape[-2:], w.dtype)
  wp = jnp.concatenate([wp, zero_w], axis=-3)
  g = wp[..., idx[:, :, None, None], idx[None, None, :, :], :, :]  # (.., s, k', s, k', ci, co)
  g = jnp.moveaxis(g, (-6, -4), (-3, -2))  # (..., k', k', ci, s, s, co)
  return g.reshape(g.shape[:-3] + (stride * stride * w.shape[-1],)), lo, hi


def depth_to_space(y, stride: int = 2):
  """``(B, H, W, s·s·C)`` with channels ordered ``(s_h, s_w, C)`` -> ``(B, s·H, s·W, C)``."""
  b, h, w, c = y.shape
  c //= stride * stride
  y = y.reshape(b, h, w, stride, stride, c).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, h * stride, w * stride, c)


def conv_transpose(p, x, stride: int = 2):
  """``lax.conv_transpose(x, w, (s, s), "SAME") + b``.

  On CPU (:func:`gemm_convolutions`) computed as the stride-1 :func:`subpixel_kernel` convolution
  (patches @ kernel) and a depth-to-space shuffle: the same linear map, whose backward pass avoids
  XLA:CPU's slow input-dilated convolutions.
  """
  if not gemm_convolutions():
    y = jax.lax.conv_transpose(x, p["w"], (stride, stride), "SAME", dimension_numbers=_DN)
    return y + p["b"]
  kernel, lo, hi = subpixel_kernel(p["w"], stride)
  pt = patches(x, hi - lo + 1, 1, [(-lo, hi)] * 2)
  y = pt @ kernel.reshape(-1, kernel.shape[-1])
  return depth_to_space(y, stride) + p["b"]


def selected_conv_transpose(stacked, x, c, stride: int = 2):
  """Per-sample :func:`conv_transpose` with sample ``b`` using kernel ``w[c_b]`` of the stack.

  The stride-1 sub-pixel form as patches times a per-sample kernel (a batched matrix product),
  so only the selected generator's work is done. Vmapping ``conv_transpose`` over the stack
  instead gives grouped convolutions, whose backward pass is very slow on XLA:CPU.
  """
  kernel, lo, hi = subpixel_kernel(stacked["w"], stride)  # (n_g, k', k', ci, s·s·co)
  n_g = kernel.shape[0]
  kernel = kernel.reshape(n_g, -1, kernel.shape[-1])[c]  # (B, k'·k'·ci, s·s·co)
  pt = patches(x, hi - lo + 1, 1, [(-lo, hi)] * 2)
  b, h, w, k = pt.shape
  y = jnp.einsum("bpk,bko->bpo", pt.reshape(b, h * w, k), kernel).reshape(b, h, w, -1)
  return depth_to_space(y, stride) + stacked["b"][c][:, None, None, :]


def _scaled(n: int, width: float) -> int:
  return max(1, int(round(n * width)))


@dataclasses.dataclass(frozen=True)
class MLPGenerator:
  """Toy generator ``latent_dim -> hidden... -> out_dim`` with ReLU and a linear output.

  Attributes:
    latent_dim: size of ``z`` (100 in the paper).
    hidden: hidden widths ((32, 16) in the paper's toy experiments).
    out_dim: data dimension (2).
    width: multiplier on the hidden widths (1.0; >1 for a capacity-matched single generator).
  """

  latent_dim: int = 100
  hidden: tuple[int, ...] = (32, 16)
  out_dim: int = 2
  width: float = 1.0

  @property
  def out_shape(self) -> tuple[int, ...]:
    return (self.out_dim,)

  def init(self, key):
    sizes = [self.latent_dim, *[_scaled(h, self.width) for h in self.hidden], self.out_dim]
    keys = jax.random.split(key, len(sizes) - 1)
    return {f"dense{i}": _dense_init(k, a, b) for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:]))}

  def apply(self, params, z):
    h = z
    n = len(self.hidden)
    for i in range(n):
      h = jax.nn.relu(dense(params[f"dense{i}"], h))
    return dense(params[f"dense{n}"], h)

  def apply_selected(self, stacked_params, z, c):
    """``x_b = G_{c_b}(z_b)`` running only the selected generator of each sample.

    Every layer gathers sample ``b``'s weights from the stack (``W[c_b]``) and applies them with a
    batched matrix-vector product, so the cost does not grow with ``n_g`` and the gradient (a
    scatter-add back into the stack) reaches only the selected generators.
    """
    h = z
    n = len(self.hidden)
    for i in range(n + 1):
      h = selected_dense(stacked_params[f"dense{i}"], h, c)
      if i < n:
        h = jax.nn.relu(h)
    return h


@dataclasses.dataclass(frozen=True)
class MLPCritic:
  """Toy critic ``in_dim -> hidden... -> 1`` with leaky ReLU; returns ``(score, last_hidden)``."""

  in_dim: int = 2
  hidden: tuple[int, ...] = (64, 128)

  @property
  def feature_dim(self) -> int:
    return self.hidden[-1]

  def init(self, key):
    sizes = [self.in_dim, *self.hidden]
    keys = jax.random.split(key, len(sizes))
    body = {f"dense{i}": _dense_init(k, a, b)
            for i, (k, a, b) in enumerate(zip(keys[:-1], sizes[:-1], sizes[1:]))}
    return {"body": body, "out": _dense_init(keys[-1], sizes[-1], 1)}

  def apply(self, params, x):
    h = x
    for i in range(len(self.hidden)):
      h = leaky_relu(dense(params["body"][f"dense{i}"], h))
    return dense(params["out"], h)[:, 0], h


@dataclasses.dataclass(frozen=True)
class ConvGenerator:
  """DCGAN-style image generator with ``num_up`` stride-2 transposed convolutions.

  ``z -> dense(hidden) -> dense(s*s*channels[0]) -> [deconv 5x5 stride 2] * num_up -> tanh`` where
  ``s = H / 2**num_up``; the last deconvolution outputs the image channels. The full-width MNIST
  model is ``hidden=1024, channels=(128, 64)`` for 28x28x1; ``width`` scales every count.
  """

  out_shape: tuple[int, int, int] = (28, 28, 1)
  latent_dim: int = 100
  hidden: int = 1024
  channels: tuple[int, ...] = (128, 64)
  width: float = 1.0
  kernel: int = 5

  def _dims(self):
    h, w, c = self.out_shape
    up = len(self.channels)
    if h % (2 ** up) or w % (2 ** up):
      raise ValueError(f"out_shape {self.out_shape} must divide by 2**{up}")
    chans = [_scaled(ch, self.width) for ch in self.channels]
    return h // 2 ** up, w // 2 ** up, chans, c

  def init(self, key):
    s_h, s_w, chans, c_out = self._dims()
    hid = _scaled(self.hidden, self.width)
    keys = jax.random.split(key, 2 + len(chans))
    params = {"dense0": _dense_init(keys[0], self.latent_dim, hid),
              "dense1": _dense_init(keys[1], hid, s_h * s_w * chans[0])}
    outs = [*chans[1:], c_out]
    for i, (c_in, c_o) in enumerate(zip(chans, outs)):
      params[f"deconv{i}"] = _conv_init(keys[2 + i], self.kernel, c_in, c_o)
    return params

  def apply(self, params, z):
    s_h, s_w, chans, _ = self._dims()
    h = jax.nn.relu(dense(params["dense0"], z))
    h = jax.nn.relu(dense(params["dense1"], h)).reshape(z.shape[0], s_h, s_w, chans[0])
    for i in range(len(chans)):
      h = conv_transpose(params[f"deconv{i}"], h)
      h = jnp.tanh(h) if i == len(chans) - 1 else jax.nn.relu(h)
    return h

  def apply_selected(self, stacked_params, z, c):
    """``x_b = G_{c_b}(z_b)`` running only the selected generator of each sample (see
    :func:`selected_dense` and :func:`selected_conv_transpose`)."""
    s_h, s_w, chans, _ = self._dims()
    h = jax.nn.relu(selected_dense(stacked_params["dense0"], z, c, "gemm"))
    h = jax.nn.relu(selected_dense(stacked_params["dense1"], h, c, "gemm"))
    h = h.reshape(z.shape[0], s_h, s_w, chans[0])
    for i in range(len(chans)):
      h = selected_conv_transpose(stacked_params[f"deconv{i}"], h, c)
      h = jnp.tanh(h) if i == len(chans) - 1 else jax.nn.relu(h)
    return h


@dataclasses.dataclass(frozen=True)
class ConvCritic:
  """Image critic: stride-2 5x5 convs (leaky ReLU), a dense hidden layer, a linear score."""

  in_shape: tuple[int, int, int] = (28, 28, 1)
  channels: tuple[int, ...] = (64, 128)
  hidden: int = 1024
  width: float = 1.0
  kernel: int = 5

  @property
  def feature_dim(self) -> int:
    return _scaled(self.hidden, self.width)

  def init(self, key):
    h, w, c = self.in_shape
    chans = [_scaled(ch, self.width) for ch in self.channels]
    keys = jax.random.split(key, len(chans) + 2)
    body = {}
    c_in = c
    for i, c_o in enumerate(chans):
      body[f"conv{i}"] = _conv_init(keys[i], self.kernel, c_in, c_o)
      c_in = c_o
      h, w = -(-h // 2), -(-w // 2)
    body["dense"] = _dense_init(keys[-2], h * w * c_in, self.feature_dim)
    return {"body": body, "out": _dense_init(keys[-1], self.feature_dim, 1)}

  def apply(self, params, x):
    h = x
    for i in range(len(self.channels)):
      h = leaky_relu(conv(params["body"][f"conv{i}"], h))
    h = leaky_relu(dense(params["body"]["dense"], h.reshape(x.shape[0], -1)))
    return dense(params["out"], h)[:, 0], h


def toy_models(n_dim: int = 2, latent_dim: int = 100, width: float = 1.0):
  """The paper's toy generator (100→32→16→2) and critic (2→64→128→1)."""
  return MLPGenerator(latent_dim, (32, 16), n_dim, width), MLPCritic(n_dim, (64, 128))


def mnist_models(width: float = 0.25, critic_width: float = 1.0, out_shape=(28, 28, 1)):
  """DCGAN-style MNIST generator at ``width`` of full size, and the full-width critic."""
  return (ConvGenerator(out_shape, 100, 1024, (128, 64), width),
          ConvCritic(out_shape, (64, 128), 1024, critic_width))


def digits_models(width: float = 1.0):
  """A small DCGAN-style pair for scikit-learn's 8x8 digits (2x2 -> 4x4 -> 8x8)."""
  return (ConvGenerator((8, 8, 1), 100, 256, (64, 32), width, kernel=3),
          ConvCritic((8, 8, 1), (32, 64), 256, 1.0, kernel=3))


def face_bed_models(width: float = 0.25):
  """The 64x64x3 pair (4x4 -> 64x64 over four deconvolutions) for Face-Bed-style data."""
  return (ConvGenerator((64, 64, 3), 100, 1024, (512, 256, 128, 64), width),
          ConvCritic((64, 64, 3), (64, 128, 256, 512), 1024, 1.0))


def init_encoder(key, feature_dim: int, num_generators: int, hidden: int = 128):
  """The encoder head ``Q(c|x)`` on the critic's last hidden layer ``h``.

  As the reference: ``Q(c|x) = softmax(W_2 lrelu(BN(W_1 h)) + b_2)`` with a ``hidden``-unit layer
  and batch normalisation without scale (TF's ``batch_norm`` default). ``hidden=0`` gives a linear
  head ``softmax(W h + b)``.
  """
  check_positive(num_generators, "num_generators")
  if hidden == 0:
    return {"out": _dense_init(key, feature_dim, num_generators)}
  k1, k2 = jax.random.split(key)
  return {"hidden": {"w": _dense_init(k1, feature_dim, hidden)["w"],
                     "beta": jnp.zeros((hidden,), jnp.float32)},
          "out": _dense_init(k2, hidden, num_generators)}


def batch_norm(x, beta, eps: float = 1e-3):
  """Batch normalisation with the batch's own statistics and a learned shift (no scale)."""
  mean = jnp.mean(x, axis=0)
  var = jnp.mean(jnp.square(x - mean), axis=0)
  return (x - mean) * jax.lax.rsqrt(var + eps) + beta


def encoder_logits(params, features):
  """Logits of ``Q(c|x)`` from critic features of shape ``(B, feature_dim)``.

  The hidden layer normalises with the statistics of the batch it is given (the reference runs
  its encoder in training mode for every loss, the prior's included), so rows of one batch
  interact; call it on whole batches.
  """
  h = features
  if "hidden" in params:
    h = leaky_relu(batch_norm(h @ params["hidden"]["w"], params["hidden"]["beta"]))
  return dense(params["out"], h)


def init_generators(key, generator, num_generators: int):
  """``num_generators`` independent generators as one stacked pytree (leading axis ``n_g``).

  Raises:
    ValueError: if ``num_generators < 1``.
  """
  if not isinstance(num_generators, int) or num_generators < 1:
    raise ValueError(f"num_generators (n_g) must be an int >= 1, got {num_generators!r}")
  return jax.vmap(generator.init)(jax.random.split(key, num_generators))


def num_generators_of(stacked_params) -> int:
  return jax.tree.leaves(stacked_params)[0].shape[0]


def generate_all(generator, stacked_params, z):
  """Every generator on the same latents: ``(n_g, B, *out_shape)``."""
  return jax.vmap(generator.apply, in_axes=(0, None))(stacked_params, z)


def generate(generator, stacked_params, z, c):
  """Sample ``b`` from generator ``c[b]``: ``x_b = G_{c_b}(z_b)``.

  Architectures with ``apply_selected`` run only generator ``c_b`` on sample ``b`` (per-sample
  weights gathered from the stack); otherwise all generators run on the batch (one vmapped call)
  and the outputs are selected per sample. Either way the gradient reaching generator ``k`` is
  exactly zero unless some ``c_b = k``.

  Args:
    generator: an architecture object with ``apply(params, z)``.
    stacked_params: generator parameters with a leading ``n_g`` axis.
    z: latents ``(B, latent_dim)``.
    c: int generator indices ``(B,)`` in ``[0, n_g)``.

  Raises:
    ValueError: on wrong ranks/shapes, or (concrete ``c``) an index outside ``[0, n_g)``. Under
      ``jit`` the samples of out-of-range indices are NaN, never another generator's output.
    TypeError: on a non-floating ``z`` or a non-integer ``c``.
  """
  check_array(z, "z", ndim=2, dtype_kind="f")
  check_array(c, "c", ndim=1, dtype_kind="iu", shape=(z.shape[0],))
  chex.assert_rank([z, c], [2, 1])
  n_g = num_generators_of(stacked_params)
  if is_concrete(c):
    cv = np.asarray(c)
    if cv.size and (cv.min() < 0 or cv.max() >= n_g):
      raise ValueError(f"c (generator indices) must lie in [0, {n_g}), got values in "
                       f"[{cv.min()}, {cv.max()}]")
  if n_g == 1:
    x = generator.apply(jax.tree.map(lambda a: a[0], stacked_params), z)
  elif hasattr(generator, "apply_selected"):
    x = generator.apply_selected(stacked_params, z, c)
  else:
    outs = generate_all(generator, stacked_params, z)  # (n_g, B, ...)
    x = outs[c, jnp.arange(z.shape[0])]
  bad = (c < 0) | (c >= n_g)
  return jnp.where(bad.reshape((-1,) + (1,) * (x.ndim - 1)), jnp.nan, x)


def param_count(params) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))


def matched_width(generator, num_generators: int, key=None) -> float:
  """Width multiplier giving one generator about as many parameters as ``num_generators`` ones.

  Used for the paper's capacity-matched WGAN-GP baseline.
  """
  key = jax.random.key(0) if key is None else key
  target = num_generators * param_count(jax.eval_shape(generator.init, key))
  lo, hi = 1.0, 64.0
  for _ in range(16):
    mid = 0.5 * (lo + hi)
    n = param_count(jax.eval_shape(dataclasses.replace(generator, width=mid).init, key))
    lo, hi = (mid, hi) if n < target else (lo, mid)
  return round(0.5 * (lo + hi), 2)
