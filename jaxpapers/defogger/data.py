"""Reading and writing per-frame unit lists — the content of STARDATA's reduced replay dumps.

One CSV row per unit per frame: ``frame,id,player,type,x,y,visible`` where ``visible`` says whether
the opponent sees the unit at that frame. A real replay converted to this format (unit types
mapped to ``0..N-1``) becomes a :class:`~jaxpapers.defogger.world.Game` that the featurizer,
baselines and models consume unchanged.
"""

from __future__ import annotations

import csv
import os

import jax.numpy as jnp
import numpy as np

from jaxpapers.defogger import world

HEADER = ("frame", "id", "player", "type", "x", "y", "visible")


def save_unit_lists(game: world.Game, path: str | os.PathLike) -> None:
  """Writes the alive units of every frame of an (unbatched) game as CSV rows."""
  alive = np.asarray(game.alive)
  with open(path, "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(HEADER)
    for fr, p, u in zip(*np.nonzero(alive)):
      w.writerow([fr, int(game.uid[fr, p, u]), p, int(game.type[fr, p, u]),
                  f"{float(game.x[fr, p, u]):.4f}", f"{float(game.y[fr, p, u]):.4f}",
                  int(bool(game.visible[fr, p, u]))])


def load_unit_lists(path: str | os.PathLike, game_map: world.GameMap, *, num_frames: int | None = None,
                    max_units: int = 48, num_types: int = world.NUM_TYPES) -> world.Game:
  """Reads unit-list CSV rows into fixed-size slots (one slot per unit id and player).

  Raises:
    ValueError: an unknown unit type, a player other than 0/1, a position outside the map, or
      more than ``max_units`` distinct ids for a player.
  """
  size = game_map.walkable.shape[0]
  rows = []
  with open(path, encoding="utf-8", newline="") as f:
    reader = csv.DictReader(f)
    missing = set(HEADER) - set(reader.fieldnames or [])
    if missing:
      raise ValueError(f"{path}: missing columns {sorted(missing)}; expected {HEADER}")
    for r in reader:
      rows.append((int(r["frame"]), int(r["id"]), int(r["player"]), int(r["type"]), float(r["x"]),
                   float(r["y"]), int(r["visible"])))
  arr = np.array(rows, dtype=np.float64).reshape(-1, 7)
  frames = int(arr[:, 0].max()) + 1 if num_frames is None else num_frames
  if arr.size:
    if not set(np.unique(arr[:, 2]).astype(int)) <= {0, 1}:
      raise ValueError(f"{path}: player must be 0 or 1")
    if arr[:, 3].min() < 0 or arr[:, 3].max() >= num_types:
      raise ValueError(f"{path}: unit type must be in [0, {num_types}), got {sorted(set(arr[:, 3].astype(int)))}")
    if arr[:, 4:6].min() < 0 or arr[:, 4:6].max() >= size:
      raise ValueError(f"{path}: positions must lie in [0, {size})")
  out = {k: np.zeros((frames, 2, max_units), dt) for k, dt in
         (("alive", bool), ("type", np.int32), ("x", np.float32), ("y", np.float32),
          ("uid", np.int32), ("visible", bool))}
  for p in (0, 1):
    ids = np.unique(arr[arr[:, 2] == p, 1]).astype(int)
    if len(ids) > max_units:
      raise ValueError(f"{path}: player {p} has {len(ids)} unit ids, more than max_units={max_units}")
    slot = {uid: i for i, uid in enumerate(ids)}
    for fr, uid, _, t, x, y, vis in arr[arr[:, 2] == p]:
      fr, s = int(fr), slot[int(uid)]
      if fr >= frames:
        continue
      out["alive"][fr, p, s] = True
      out["type"][fr, p, s] = int(t)
      out["x"][fr, p, s], out["y"][fr, p, s] = x, y
      out["uid"][fr, p, s] = int(uid)
      out["visible"][fr, p, s] = bool(vis)
  return world.Game(game_map, jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.int32),
                    *(jnp.asarray(out[k]) for k in ("alive", "type", "x", "y", "uid", "visible")))
