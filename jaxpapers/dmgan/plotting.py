"""PNG figures without matplotlib: 2-D scatters and image grids coloured by generator (Pillow).

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018 (Figures 2-4 colour samples by the generator that drew them).
"""

from __future__ import annotations

import colorsys
import os

import numpy as np


def palette(n: int) -> np.ndarray:
  """``n`` distinct RGB colours (uint8) spread around the hue circle."""
  return np.asarray([[int(255 * v) for v in colorsys.hsv_to_rgb(i / max(n, 1), 0.85, 0.9)]
                     for i in range(n)], np.uint8)


def scatter_png(path: str | os.PathLike, points, colors_idx, num_colors: int, *, real=None,
                size: int = 360, extent: float = 1.3):
  """Draws ``points`` (N, 2) coloured by ``colors_idx`` over grey ``real`` points; saves a PNG."""
  from PIL import Image, ImageDraw

  points = np.asarray(points, np.float64)
  colors_idx = np.asarray(colors_idx, np.int64)
  img = Image.new("RGB", (size, size), (255, 255, 255))
  draw = ImageDraw.Draw(img)
  to_px = lambda p: ((p[:, 0] + extent) / (2 * extent) * size,
                     (extent - p[:, 1]) / (2 * extent) * size)
  if real is not None:
    rx, ry = to_px(np.asarray(real, np.float64))
    for x, y in zip(rx, ry):
      draw.point((x, y), fill=(170, 170, 170))
  cols = palette(num_colors)
  px, py = to_px(points)
  for x, y, c in zip(px, py, colors_idx):
    draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=tuple(int(v) for v in cols[c]))
  img.save(path)
  return path


def image_grid_png(path: str | os.PathLike, images, colors_idx, num_colors: int, *, cols: int = 10,
                   scale: int = 3, border: int = 2):
  """Saves images (N, H, W, C) in ``[-1, 1]`` as a grid, each framed in its generator's colour."""
  from PIL import Image

  images = np.asarray(images, np.float64)
  n, h, w, c = images.shape
  rows = -(-n // cols)
  cell_h, cell_w = h * scale + 2 * border, w * scale + 2 * border
  canvas = np.full((rows * cell_h, cols * cell_w, 3), 255, np.uint8)
  pal = palette(num_colors)
  pix = np.clip((images + 1.0) * 127.5, 0, 255).astype(np.uint8)
  if c == 1:
    pix = np.repeat(pix, 3, axis=-1)
  pix = pix.repeat(scale, axis=1).repeat(scale, axis=2)
  for i in range(n):
    r, q = divmod(i, cols)
    y0, x0 = r * cell_h, q * cell_w
    canvas[y0:y0 + cell_h, x0:x0 + cell_w] = pal[int(colors_idx[i])]
    canvas[y0 + border:y0 + border + h * scale, x0 + border:x0 + border + w * scale] = pix[i, ..., :3]
  Image.fromarray(canvas).save(path)
  return path
