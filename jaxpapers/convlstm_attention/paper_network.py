"""The paper's gesture network as written: Res3D-18 stem → two ConvLSTM layers → MobileNet head.

Zhang, Zhu, Shen, Song, Gao & Yang, "Attention in Convolutional LSTM for Gesture Recognition",
NeurIPS 2018; layer by layer as the authors' Keras reference (``networks/res3d_clstm_mobilenet.py``
and ``res3d_aclstm_mobilenet.py``, classifier from ``training_res3d_clstm_mobilenet.py``). For
clips ``[B, T, 112, 112, 3]``:

* **Res3D stem** (every Conv3D bias-free, SAME padding, he-normal, followed by BatchNorm):
  ``conv1`` 64 × (3, 7, 7) stride (1, 2, 2), BN, ReLU → ``res2a`` (1×1×1 projection shortcut
  64 + BN; main path 3×3×3 64, BN, ReLU, 3×3×3 64, BN; add, ReLU) → ``res2b`` (identity shortcut)
  → ``res3a`` (128; shortcut 1×1×1 stride (2, 2, 2), main path's first conv stride (2, 2, 2)) →
  ``res3b`` → ``res4a`` (256, stride 1, projection shortcut) → ``res4b``: ``[B, T/2, 28, 28, 256]``.
* **Two ConvLSTM layers** (``lstm1``, ``lstm2``), 256 channels, 3×3, SAME, returning sequences;
  ``lstm1`` is the chosen variant (:mod:`cells`), ``lstm2`` the same variant except for the
  attention variants (b)/(c)/(d), whose second layer is (a) (``GatedConvLSTM2D``), as released.
* **MobileNet head** on every frame: Keras ``SeparableConv2D`` 3×3 SAME (depthwise 3×3, depth
  multiplier 1, strided; then pointwise 1×1 with bias), BatchNorm, ReLU6: ``sep1a`` 256 s1,
  ``sep1b`` 256 s2, ``sep2a``–``sep2e`` 512 s1, ``sep3a`` 1024 s2, ``sep3b`` 1024 s2 →
  ``[B·T/2, 4, 4, 1024]``.
* Average pooling over ``(T/2, 4, 4)`` → 1024 features → ``classifier`` (dense with bias,
  he-normal; the reference's ``Dense(num_classes)`` before the softmax).

BatchNorm follows Keras: trainable ``gamma``/``beta`` (in ``params``) and running ``mean``/``var``
(in a separate ``bn_state`` pytree of :class:`BNState`), momentum 0.99, epsilon 1e-3, statistics
over every axis but the channel. ``train=True`` normalises with the batch's statistics (biased
variance) and returns running statistics updated as ``m ← 0.99 m + 0.01 batch``; ``train=False``
normalises with the running statistics and returns them unchanged. (TF's fused kernel, which the
reference's 4-D head layers may have used, updates the running variance with the unbiased batch
variance instead: a factor ``n/(n-1)``, ``n`` the values per channel in a batch, 2,048 or more
at the reference's Jester batch of 16 clips.)

Parameters per block at 256 ConvLSTM channels (:func:`param_counts`; the ConvLSTM layers as in
:func:`cells.count_params`): conv1 28,352 · res2a 225,664 · res2b 221,440 · res3a 672,512 ·
res3b 885,248 · res4a 2,688,512 · res4b 3,539,968 (stem 8,261,696) · sep1a/1b 68,608 each · sep2a
134,912 · sep2b–2e 268,288 each · sep3a 531,968 · sep3b 1,060,864 (head 2,938,112) · classifier
1024·K + K. Totals without the classifier: ConvLSTM 20,639,040; (a) 12,259,648; (b) 12,397,888;
(c)/(d) 12,332,096; new 14,347,584 (plus 14,848 BatchNorm statistics).

``width`` scales every channel count (stem, ConvLSTM and head; 1.0 is the paper's) for cheap
tests and CPU runs; the spatial size is free (the reference fixes 112 × 112 only through a
``Reshape``), the output is always pooled to ``[B, num_classes]``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.convlstm_attention import cells, model

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3

# (name, input channels, output channels, spatio-temporal stride, projection shortcut)
RES_UNITS = (
    ("res2a", 64, 64, 1, True),
    ("res2b", 64, 64, 1, False),
    ("res3a", 64, 128, 2, True),
    ("res3b", 128, 128, 1, False),
    ("res4a", 128, 256, 1, True),
    ("res4b", 256, 256, 1, False),
)
STEM_CHANNELS = 64  # conv1
LSTM_CHANNELS = 256
# (name, output channels, spatial stride); the input of sep1a is the ConvLSTM's 256 channels.
SEP_LAYERS = (
    ("sep1a", 256, 1),
    ("sep1b", 256, 2),
    ("sep2a", 512, 1),
    ("sep2b", 512, 1),
    ("sep2c", 512, 1),
    ("sep2d", 512, 1),
    ("sep2e", 512, 1),
    ("sep3a", 1024, 2),
    ("sep3b", 1024, 2),
)
BLOCKS = (("conv1",) + tuple(u[0] for u in RES_UNITS) + ("lstm1", "lstm2")
          + tuple(s[0] for s in SEP_LAYERS) + ("classifier",))
STEM_BLOCKS = BLOCKS[:7]
LSTM_BLOCKS = ("lstm1", "lstm2")
HEAD_BLOCKS = tuple(s[0] for s in SEP_LAYERS)


class BNState(NamedTuple):
  """Running BatchNorm statistics of one layer, each ``[C]`` (float32)."""

  mean: jax.Array
  var: jax.Array


# ----------------------------------------------------------------------------- layers


def batch_norm(p: dict, state: BNState, x: jax.Array, *, train: bool,
               momentum: float = BN_MOMENTUM, epsilon: float = BN_EPSILON):
  """Keras BatchNormalization over every axis but the last.

  Args:
    p: ``{"gamma": [C], "beta": [C]}``.
    state: running statistics.
    x: ``[..., C]``.
    train: batch statistics (and updated running ones) if true, running statistics otherwise.

  Returns:
    ``(y, new_state)``; ``new_state`` is ``state`` itself in eval mode.
  """
  axes = tuple(range(x.ndim - 1))
  if train:
    xf = x.astype(jnp.float32)
    mean = jnp.mean(xf, axis=axes)
    var = jnp.mean(jnp.square(xf - mean), axis=axes)  # biased, as Keras normalises
    new_state = BNState(
        jax.lax.stop_gradient(momentum * state.mean + (1.0 - momentum) * mean),
        jax.lax.stop_gradient(momentum * state.var + (1.0 - momentum) * var))
  else:
    mean, var = state.mean, state.var
    new_state = state
  scale = p["gamma"] * jax.lax.rsqrt(var + epsilon)
  y = x * scale.astype(x.dtype) + (p["beta"] - mean * scale).astype(x.dtype)
  return y, new_state


def separable_conv2d(p: dict, x: jax.Array, stride: int) -> jax.Array:
  """Keras ``SeparableConv2D`` 3×3 SAME: strided depthwise ``[3, 3, 1, C]``, pointwise, bias."""
  y = jax.lax.conv_general_dilated(
      x, p["dw"].astype(x.dtype), window_strides=(stride, stride), padding="SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])
  return y @ p["pw"].astype(x.dtype) + p["b"].astype(x.dtype)


# ----------------------------------------------------------------------------- init


class _Draw(NamedTuple):
  """A parameter to be drawn: ``normal`` (truncated at ±2, times ``scale``) or ``uniform``
  (in ``[-scale, scale]``). All draws of a kind come from one flat random array (:func:`_fill`):
  one random-number kernel to compile instead of one per parameter shape."""

  kind: str
  shape: tuple
  scale: float


def _he_normal(shape, fan_in):
  # TF1 Keras 'he_normal': a normal truncated at two standard deviations, stddev sqrt(2 / fan_in)
  # (TF1 did not rescale for the truncation).
  return _Draw("normal", tuple(shape), float(np.sqrt(2.0 / fan_in)))


def _glorot_uniform(shape, fan_in, fan_out):
  return _Draw("uniform", tuple(shape), float(np.sqrt(6.0 / (fan_in + fan_out))))


def _fill(key, tree):
  """Replaces every :class:`_Draw` in ``tree`` by its values."""
  is_draw = lambda x: isinstance(x, _Draw)  # noqa: E731
  leaves, treedef = jax.tree.flatten(tree, is_leaf=is_draw)
  totals = {"normal": 0, "uniform": 0}
  for leaf in leaves:
    if is_draw(leaf):
      totals[leaf.kind] += int(np.prod(leaf.shape))
  k_n, k_u = jax.random.split(key)
  flat = {"normal": jax.random.truncated_normal(k_n, -2.0, 2.0, (totals["normal"],), jnp.float32),
          "uniform": jax.random.uniform(k_u, (totals["uniform"],), jnp.float32, -1.0, 1.0)}
  offset = {"normal": 0, "uniform": 0}
  out = []
  for leaf in leaves:
    if is_draw(leaf):
      n, o = int(np.prod(leaf.shape)), offset[leaf.kind]
      out.append(flat[leaf.kind][o:o + n].reshape(leaf.shape) * leaf.scale)
      offset[leaf.kind] = o + n
    else:
      out.append(leaf)
  return jax.tree.unflatten(treedef, out)


def _bn(c):
  return {"gamma": jnp.ones((c,), jnp.float32), "beta": jnp.zeros((c,), jnp.float32)}


def _bn_state(c):
  return BNState(jnp.zeros((c,), jnp.float32), jnp.ones((c,), jnp.float32))


def _conv3d_w(k, c_in, c_out):
  return _he_normal(k + (c_in, c_out), int(np.prod(k)) * c_in)


def _scaled(c: int, width: float) -> int:
  return max(1, int(round(c * width)))


def second_variant(variant: str) -> str:
  """The second ConvLSTM layer's variant: (a) after an attention layer (b)/(c)/(d), else the same."""
  return "a" if variant in ("b", "c", "d") else variant


def _check_init_args(variant, num_classes, width, recurrent_kernel):
  if variant not in cells.VARIANTS:
    raise ValueError(f"variant must be one of {cells.VARIANTS}, got {variant!r}")
  if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
    raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
  if isinstance(width, bool) or not isinstance(width, (int, float)) or not np.isfinite(width) or width <= 0:
    raise ValueError(f"width must be a positive finite number, got {width!r}")
  if (isinstance(recurrent_kernel, bool) or not isinstance(recurrent_kernel, (int, np.integer))
      or recurrent_kernel < 1):
    raise ValueError(f"recurrent_kernel must be an integer >= 1, got {recurrent_kernel!r}")


def init_paper_network(key: jax.Array, variant: str, num_classes: int, *, width: float = 1.0,
                       recurrent_kernel: int = 3) -> tuple[dict, dict]:
  """Parameters and BatchNorm state of the paper's network.

  Args:
    key: PRNG key.
    variant: the first ConvLSTM layer's variant, one of ``cells.VARIANTS``.
    num_classes: classifier outputs (27 for Jester, 249 for IsoGD).
    width: multiplies every channel count (1.0: the paper's widths).
    recurrent_kernel: for ``variant="new"`` only (see :func:`cells.init_cell`).

  Returns:
    ``(params, bn_state)``: dicts keyed by block (:data:`BLOCKS`); ``bn_state`` holds a
    :class:`BNState` (mean 0, variance 1) for every BatchNorm and nothing else.
  """
  _check_init_args(variant, num_classes, width, recurrent_kernel)
  # One compiled program instead of one small compile per parameter shape (eager init is slow).
  return _init(key, variant, int(num_classes), float(width), int(recurrent_kernel))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _init(key, variant, num_classes, width, recurrent_kernel):
  k_draws, k_lstm1, k_lstm2 = jax.random.split(key, 3)
  params, state = {}, {}
  c0 = _scaled(STEM_CHANNELS, width)
  params["conv1"] = {"w": _conv3d_w((3, 7, 7), 3, c0), "bn": _bn(c0)}
  state["conv1"] = {"bn": _bn_state(c0)}
  for name, c_in, c_out, _, projection in RES_UNITS:
    ci, co = _scaled(c_in, width), _scaled(c_out, width)
    p = {"w_a": _conv3d_w((3, 3, 3), ci, co), "bn_a": _bn(co),
         "w_b": _conv3d_w((3, 3, 3), co, co), "bn_b": _bn(co)}
    s = {"bn_a": _bn_state(co), "bn_b": _bn_state(co)}
    if projection:
      p["shortcut_w"] = _conv3d_w((1, 1, 1), ci, co)
      p["shortcut_bn"] = _bn(co)
      s["shortcut_bn"] = _bn_state(co)
    params[name], state[name] = p, s
  c_stem = _scaled(RES_UNITS[-1][2], width)
  c_lstm = _scaled(LSTM_CHANNELS, width)
  params["lstm1"] = cells.init_cell(k_lstm1, variant, c_stem, c_lstm,
                                    recurrent_kernel=recurrent_kernel)
  params["lstm2"] = cells.init_cell(k_lstm2, second_variant(variant), c_lstm, c_lstm,
                                    recurrent_kernel=recurrent_kernel)
  c_in = c_lstm
  for name, c_out, _ in SEP_LAYERS:
    co = _scaled(c_out, width)
    # Keras glorot_uniform on the depthwise kernel [3, 3, C, 1] (fans 9·C, 9) and on the
    # pointwise [1, 1, C, C_out] (fans C, C_out); bias zeros.
    params[name] = {"dw": _glorot_uniform((3, 3, 1, c_in), 9 * c_in, 9),
                    "pw": _glorot_uniform((c_in, co), c_in, co),
                    "b": jnp.zeros((co,), jnp.float32), "bn": _bn(co)}
    state[name] = {"bn": _bn_state(co)}
    c_in = co
  params["classifier"] = {"w": _he_normal((c_in, num_classes), c_in),
                          "b": jnp.zeros((num_classes,), jnp.float32)}
  return _fill(k_draws, params), state


# ----------------------------------------------------------------------------- apply


def _check_params(params, bn_state, blocks):
  missing = [b for b in blocks if not isinstance(params, dict) or b not in params]
  if missing:
    raise ValueError(f"params must be the dict from init_paper_network; missing blocks {missing}")
  needed = [b for b in blocks if b in STEM_BLOCKS + HEAD_BLOCKS]
  missing = [b for b in needed if not isinstance(bn_state, dict) or b not in bn_state]
  if missing:
    raise ValueError(f"bn_state must be the dict from init_paper_network; missing blocks {missing}")


def _check_train(train):
  if not isinstance(train, (bool, np.bool_)):
    raise ValueError(f"train must be a Python bool, got {train!r}")


def _bn_applier(params, bn_state, train, new_state):
  def bn(block, name, x):
    y, s = batch_norm(params[block][name], bn_state[block][name], x, train=train)
    new_state.setdefault(block, {})[name] = s
    return y
  return bn


def apply_stem(params: dict, bn_state: dict, clips: jax.Array, *, train: bool):
  """The Res3D stem: ``[B, T, H, W, 3]`` → ``([B, ⌈T/2⌉, ⌈H/4⌉, ⌈W/4⌉, 256·width], new_state)``.

  ``new_state`` holds the stem's blocks only (``conv1``, ``res2a`` … ``res4b``).
  """
  model._check_clips(clips)
  _check_train(train)
  _check_params(params, bn_state, STEM_BLOCKS)
  new_state = {}
  bn = _bn_applier(params, bn_state, train, new_state)
  x = jax.nn.relu(bn("conv1", "bn", model.conv3d(clips, params["conv1"]["w"], (1, 2, 2))))
  for name, _, _, stride, projection in RES_UNITS:
    p = params[name]
    st = (stride,) * 3
    shortcut = bn(name, "shortcut_bn", model.conv3d(x, p["shortcut_w"], st)) if projection else x
    y = jax.nn.relu(bn(name, "bn_a", model.conv3d(x, p["w_a"], st)))
    y = bn(name, "bn_b", model.conv3d(y, p["w_b"]))
    x = jax.nn.relu(shortcut + y)
  return x, new_state


def apply_head(params: dict, bn_state: dict, frames: jax.Array, *, train: bool):
  """The MobileNet head on frames ``[N, H, W, 256·width]`` → ``([N, ⌈H/8⌉, ⌈W/8⌉, 1024·width],
  new_state)`` (values in [0, 6]: every layer ends in ReLU6); ``new_state``: ``sep1a`` … ``sep3b``.
  """
  if not hasattr(frames, "ndim") or frames.ndim != 4:
    raise ValueError(f"frames must have rank 4 [N, H, W, C], got shape {getattr(frames, 'shape', None)}")
  _check_train(train)
  _check_params(params, bn_state, HEAD_BLOCKS)
  new_state = {}
  bn = _bn_applier(params, bn_state, train, new_state)
  for name, _, stride in SEP_LAYERS:
    frames = jax.nn.relu6(bn(name, "bn", separable_conv2d(params[name], frames, stride)))
  return frames, new_state


def apply_paper_network(params: dict, bn_state: dict, clips: jax.Array, *, variant: str,
                        train: bool, padding: str = "SAME", unroll: int | bool = 1):
  """Class logits of the paper's network.

  Args:
    params, bn_state: from :func:`init_paper_network`.
    clips: ``[B, T, H, W, 3]`` floating point (already standardised as the caller wishes; the
      network itself applies no input scaling). The paper uses ``T = 16``, ``H = W = 112``.
    variant: the first ConvLSTM layer's variant (as at init).
    train: BatchNorm with batch statistics and updated running statistics (``True``) or with the
      running statistics (``False``).
    padding, unroll: passed to :func:`cells.run_cell`.

  Returns:
    ``(logits [B, num_classes] float32, new_bn_state)`` (``new_bn_state`` is ``bn_state`` when
    ``train`` is false).
  """
  model._check_clips(clips)
  if variant not in cells.VARIANTS:
    raise ValueError(f"variant must be one of {cells.VARIANTS}, got {variant!r}")
  _check_train(train)
  if padding not in cells.PADDINGS:
    raise ValueError(f"padding must be one of {cells.PADDINGS}, got {padding!r}")
  _check_params(params, bn_state, BLOCKS)
  x, stem_state = apply_stem(params, bn_state, clips, train=train)
  # Two ConvLSTM layers over the T/2 feature maps.
  b, t, h, w, _ = x.shape
  c = params["lstm2"]["w"].shape[-1] // 4 if variant == "convlstm" else params["lstm2"]["b"].shape[0]
  carry = cells.zero_state(b, h, w, c, x.dtype)
  _, x = cells.run_cell(params["lstm1"], carry, x, variant=variant, padding=padding, unroll=unroll)
  _, x = cells.run_cell(params["lstm2"], carry, x, variant=second_variant(variant),
                        padding=padding, unroll=unroll)
  # MobileNet on every frame, then average pooling over (T/2, H/8, W/8) and the classifier.
  frames, head_state = apply_head(params, bn_state, x.reshape((b * t,) + x.shape[2:]), train=train)
  pooled = frames.astype(jnp.float32).reshape(b, t, -1, frames.shape[-1]).mean(axis=(1, 2))
  logits = pooled @ params["classifier"]["w"] + params["classifier"]["b"]
  return logits, ({**stem_state, **head_state} if train else bn_state)


# ----------------------------------------------------------------------------- counts


def _size(tree) -> int:
  return int(sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree)))


def param_counts(params: dict) -> dict[str, int]:
  """Trainable parameters per block, in network order (:data:`BLOCKS`; works on shape trees)."""
  return {b: _size(params[b]) for b in BLOCKS if b in params}


def format_param_counts(params: dict, bn_state: dict | None = None) -> str:
  """A table of :func:`param_counts` with stem / ConvLSTM / head subtotals and the total.

  With ``bn_state`` a second column gives the non-trainable BatchNorm statistics per block.
  """
  counts = param_counts(params)
  state = {b: _size(bn_state[b]) if bn_state is not None and b in bn_state else 0 for b in counts}
  extra = bn_state is not None
  lines = [f"{'block':12s} {'params':>12s}" + (f" {'bn stats':>10s}" if extra else "")]

  def row(label, n, s):
    return f"{label:12s} {n:>12,d}" + (f" {s:>10,d}" if extra else "")

  groups = (("stem", STEM_BLOCKS), ("convlstm", LSTM_BLOCKS), ("mobilenet", HEAD_BLOCKS),
            ("", ("classifier",)))
  for label, blocks in groups:
    present = [b for b in blocks if b in counts]
    for b in present:
      lines.append(row("  " + b, counts[b], state[b]))
    if label and present:
      lines.append(row(label, sum(counts[b] for b in present), sum(state[b] for b in present)))
  lines.append(row("total", sum(counts.values()), sum(state.values())))
  return "\n".join(lines)


def print_param_counts(params: dict, bn_state: dict | None = None) -> None:
  """Prints :func:`format_param_counts`."""
  print(format_param_counts(params, bn_state))
