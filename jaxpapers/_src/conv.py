"""Convolution building blocks shared by the papers (im2col)."""

from __future__ import annotations

import jax.numpy as jnp


def patches(x, kernel_size, stride: int = 1, pads=((0, 0), (0, 0))):
  """``kh×kw`` patches of ``x [..., H, W, C]`` (padded by ``pads`` on H and W) at ``stride``.

  Returns ``[..., H', W', kh·kw·C]`` with channels ordered ``(i, j, c)`` like a reshaped HWIO
  kernel, so ``patches(x, k) @ w.reshape(-1, F)`` is the ``VALID`` convolution with ``w``. On
  XLA:CPU that matmul's gradient stays fast inside ``lax.scan``/``while`` bodies, where a native
  convolution's gradient runs one to two orders of magnitude slower.
  """
  kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
  x = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [tuple(pads[0]), tuple(pads[1]), (0, 0)])
  ho = (x.shape[-3] - kh) // stride + 1
  wo = (x.shape[-2] - kw) // stride + 1
  return jnp.concatenate([x[..., i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
                          for i in range(kh) for j in range(kw)], axis=-1)
