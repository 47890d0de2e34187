"""The gesture network of Zhang et al. (2018) as pure init/apply functions.

``clips [B, T, H, W, 3]`` → 3-D CNN stem (Res3D-style blocks; spatial stride 2 per stage) → two
ConvLSTM layers (the first one is the chosen variant; in the attention networks (b)/(c)/(d) the
second layer is variant (a), as in the reference) → per-frame MobileNet separable convolutions →
average pooling over space and time → linear classifier.

Two controls share the stem design but cannot use frame order: ``order_free`` (per-frame 2-D stem,
time average) and ``single_frame`` (the first frame only).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxpapers.convlstm_attention import cells

MODELS = ("convlstm_net", "order_free", "single_frame")
# config.network: "reduced" is this module's network; "paper" the authors' network as written
# (paper_network.py), which train.init_params / train.network_logits select.
NETWORKS = ("reduced", "paper")


def check_network(config: ml_collections.ConfigDict) -> str:
  """``config.network`` (``"reduced"`` when absent), after checking it and its compatibility."""
  network = config.get("network", "reduced")
  if network not in NETWORKS:
    raise ValueError(f"config.network must be one of {NETWORKS}, got {network!r}")
  if network == "paper" and config.model != "convlstm_net":
    raise ValueError(f"config.network='paper' needs config.model='convlstm_net' (the controls "
                     f"exist only for the reduced network), got {config.model!r}")
  return network


def _he(key, shape, fan_in, dtype=jnp.float32):
  return jax.random.normal(key, shape, dtype) * np.sqrt(2.0 / fan_in)


def conv3d(x, w, stride=(1, 1, 1)):
  """``x: [B, T, H, W, C]``, ``w: [kt, kh, kw, Cin, Cout]``, SAME padding.

  Computed as a sum over the ``kt`` temporal taps of 2-D convolutions on the time-shifted frames
  (frames folded into the batch). It equals the direct 3-D convolution (tested) and its gradient is
  ~5× faster on XLA:CPU, whose 3-D convolution backward pass is slow.
  """
  kt = w.shape[0]
  st, sh, sw = stride
  b, t = x.shape[:2]
  t_out = -(-t // st)
  pad_total = max((t_out - 1) * st + kt - t, 0)
  lo = pad_total // 2
  xp = jnp.pad(x, ((0, 0), (lo, pad_total - lo), (0, 0), (0, 0), (0, 0)))
  out = 0.0
  for dt in range(kt):
    frames = xp[:, dt: dt + (t_out - 1) * st + 1: st]
    flat = frames.reshape((b * t_out,) + frames.shape[2:])
    y = jax.lax.conv_general_dilated(flat, w[dt].astype(x.dtype), (sh, sw), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = out + y
  return out.reshape((b, t_out) + out.shape[1:])


def _init_stem(key, channels: Sequence[int], temporal_kernel: int, residual: bool):
  params = []
  c_in = 3
  for c in channels:
    key, k1, k2, k3 = jax.random.split(key, 4)
    kt = temporal_kernel
    block = {"w1": _he(k1, (kt, 3, 3, c_in, c), kt * 9 * c_in), "b1": jnp.zeros((c,))}
    if residual:
      block["w2"] = _he(k2, (kt, 3, 3, c, c), kt * 9 * c) * 0.5
      block["b2"] = jnp.zeros((c,))
      block["proj"] = _he(k3, (c_in, c), c_in)
    params.append(block)
    c_in = c
  return params


def _apply_stem(params, x, temporal_stride: int):
  for n, block in enumerate(params):
    stride = (temporal_stride if n == 0 else 1, 2, 2)
    y = jax.nn.relu(conv3d(x, block["w1"], stride) + block["b1"])
    if "w2" in block:
      y = conv3d(y, block["w2"]) + block["b2"]
      skip = x[:, ::stride[0], ::2, ::2, :] @ block["proj"].astype(x.dtype)
      y = jax.nn.relu(y + skip)
    x = y
  return x


def init_network(key: jax.Array, config: ml_collections.ConfigDict) -> dict:
  """Parameters of the network described by ``config`` (see ``config.get_config``)."""
  if config.model not in MODELS:
    raise ValueError(f"config.model must be one of {MODELS}, got {config.model!r}")
  if check_network(config) != "reduced":
    raise ValueError("config.network is 'paper': use paper_network.init_paper_network "
                     "(or train.init_params), not model.init_network")
  k_stem, k_l1, k_l2, k_mob, k_out = jax.random.split(key, 5)
  temporal_kernel = 1 if config.model != "convlstm_net" else 3
  params = {"stem": _init_stem(k_stem, config.stem_channels, temporal_kernel, config.residual_stem)}
  c = config.stem_channels[-1]
  if config.model == "convlstm_net":
    first = config.variant
    second = "a" if first in ("b", "c", "d") else first
    params["lstm1"] = cells.init_cell(k_l1, first, c, config.lstm_channels,
                                      kernel_size=config.kernel_size,
                                      recurrent_kernel=config.recurrent_kernel)
    params["lstm2"] = cells.init_cell(k_l2, second, config.lstm_channels, config.lstm_channels,
                                      kernel_size=config.kernel_size,
                                      recurrent_kernel=config.recurrent_kernel)
    c = config.lstm_channels
  mob = []
  for m in config.mobilenet_channels:
    k_mob, k1, k2 = jax.random.split(k_mob, 3)
    mob.append({"dw": _he(k1, (3, 3, 1, c), 9), "pw": _he(k2, (c, m), c), "b": jnp.zeros((m,))})
    c = m
  params["mobilenet"] = mob
  params["out_w"] = jax.random.normal(k_out, (c, config.num_classes)) / np.sqrt(c)
  params["out_b"] = jnp.zeros((config.num_classes,))
  return params


def _check_clips(clips):
  if not hasattr(clips, "ndim") or clips.ndim != 5:
    raise ValueError(f"clips must have rank 5 [B, T, H, W, C], got shape {getattr(clips, 'shape', None)}")
  if clips.shape[-1] != 3:
    raise ValueError(f"clips must have 3 (RGB) channels in the last axis, got {clips.shape[-1]}")
  if not jnp.issubdtype(clips.dtype, jnp.floating):
    raise TypeError(f"clips must be floating point in [0, 1] (convert uint8 frames with / 255), "
                    f"got dtype {clips.dtype}")
  if 0 in clips.shape[:4]:
    raise ValueError(f"clips must be non-empty in batch, time and space, got shape "
                     f"{tuple(clips.shape)}")


def apply_network(params: dict, clips: jax.Array, config: ml_collections.ConfigDict, *,
                  return_attention: bool = False):
  """Class logits ``[B, num_classes]`` (and the first layer's attention maps if asked)."""
  _check_clips(clips)
  if check_network(config) != "reduced":
    raise ValueError("config.network is 'paper': use paper_network.apply_paper_network "
                     "(or train.network_logits), not model.apply_network")
  # The reference subtracts a dataset mean; we also divide by a dataset std (config constants), which
  # the small CPU-scale networks need to train in a few hundred steps.
  x = ((clips - config.input_mean) / config.input_std).astype(jnp.dtype(config.dtype))
  if config.model == "single_frame":
    x = x[:, :1]
  temporal_stride = config.temporal_stride if config.model == "convlstm_net" else 1
  x = _apply_stem(params["stem"], x, temporal_stride)
  attention = None
  if config.model == "convlstm_net":
    b, _, h, w, _ = x.shape
    c = config.lstm_channels
    first = config.variant
    second = "a" if first in ("b", "c", "d") else first
    carry = cells.zero_state(b, h, w, c, x.dtype)
    _, (x, attention) = cells.run_cell(params["lstm1"], carry, x, variant=first,
                                       padding=config.padding, return_attention=True,
                                       unroll=config.unroll)
    _, x = cells.run_cell(params["lstm2"], carry, x, variant=second, padding=config.padding,
                          unroll=config.unroll)
  b, t = x.shape[:2]
  frames = x.reshape((b * t,) + x.shape[2:])
  for layer in params["mobilenet"]:
    frames = cells.sepconv2d(frames, layer["dw"], layer["pw"]) + layer["b"].astype(frames.dtype)
    frames = jax.nn.relu(frames[:, ::2, ::2, :] if frames.shape[1] > 1 else frames)
  pooled = frames.mean(axis=(1, 2)).reshape(b, t, -1).mean(axis=1)
  logits = pooled.astype(jnp.float32) @ params["out_w"] + params["out_b"]
  if return_attention:
    return logits, attention
  return logits


def cell_param_count(params: dict) -> int:
  """Parameters of the two recurrent layers (0 for the controls)."""
  return sum(cells.count_params(params[k]) for k in ("lstm1", "lstm2") if k in params)
