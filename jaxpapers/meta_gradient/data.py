"""Atari reference scores and per-game result files for human-normalised scores.

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018, report the median
human-normalised score over 57 Atari games, ``100 · (agent − random) / (human − random)``. The
reference random/human scores are the standard no-op-start ones of Mnih et al. (2015) and Wang
et al. (2016), kept here in the same CSV format as the loader reads (``game,random,human``).
The toy-chain data of Fig. 1 is synthetic: see :func:`jaxpapers.meta_gradient.toy.sample_chain_rewards`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

import numpy as np

REFERENCE_CSV = """game,random,human
Alien,227.8,7127.7
Amidar,5.8,1719.5
Assault,222.4,742.0
Asterix,210.0,8503.3
Asteroids,719.1,47388.7
Atlantis,12850.0,29028.1
BankHeist,14.2,753.1
BattleZone,2360.0,37187.5
BeamRider,363.9,16926.5
Berzerk,123.7,2630.4
Bowling,23.1,160.7
Boxing,0.1,12.1
Breakout,1.7,30.5
Centipede,2090.9,12017.0
ChopperCommand,811.0,7387.8
CrazyClimber,10780.5,35829.4
Defender,2874.5,18688.9
DemonAttack,152.1,1971.0
DoubleDunk,-18.6,-16.4
Enduro,0.0,860.5
FishingDerby,-91.7,-38.7
Freeway,0.0,29.6
Frostbite,65.2,4334.7
Gopher,257.6,2412.5
Gravitar,173.0,3351.4
Hero,1027.0,30826.4
IceHockey,-11.2,0.9
Jamesbond,29.0,302.8
Kangaroo,52.0,3035.0
Krull,1598.0,2665.5
KungFuMaster,258.5,22736.3
MontezumaRevenge,0.0,4753.3
MsPacman,307.3,6951.6
NameThisGame,2292.3,8049.0
Phoenix,761.4,7242.6
Pitfall,-229.4,6463.7
Pong,-20.7,14.6
PrivateEye,24.9,69571.3
Qbert,163.9,13455.0
Riverraid,1338.5,17118.0
RoadRunner,11.5,7845.0
Robotank,2.2,11.9
Seaquest,68.4,42054.7
Skiing,-17098.1,-4336.9
Solaris,1236.3,12326.7
SpaceInvaders,148.0,1668.7
StarGunner,664.0,10250.0
Surround,-10.0,6.5
Tennis,-23.8,-8.3
TimePilot,3568.0,5229.2
Tutankham,11.4,167.6
UpNDown,533.4,11693.2
Venture,0.0,1187.5
VideoPinball,16256.9,17667.9
WizardOfWor,563.5,4756.5
YarsRevenge,3092.9,54576.9
Zaxxon,32.5,9173.3
"""


def _parse_reference(text: str, source: str) -> dict[str, tuple[float, float]]:
  reader = csv.reader(io.StringIO(text))
  header = next(reader, None)
  if header is None or [h.strip().lower() for h in header] != ["game", "random", "human"]:
    raise ValueError(f"{source}: header must be 'game,random,human', got {header}")
  table = {}
  for lineno, row in enumerate(reader, start=2):
    if not row or not "".join(row).strip():
      continue
    if len(row) != 3:
      raise ValueError(f"{source}:{lineno}: expected 3 fields, got {len(row)}")
    game = row[0].strip()
    try:
      random, human = float(row[1]), float(row[2])
    except ValueError as e:
      raise ValueError(f"{source}:{lineno}: non-numeric score in {row}") from e
    if human == random:
      raise ValueError(f"{source}:{lineno}: human and random scores of {game} are equal")
    if game in table:
      raise ValueError(f"{source}:{lineno}: duplicate game {game!r}")
    table[game] = (random, human)
  if not table:
    raise ValueError(f"{source}: no games")
  return table


def load_reference_scores(path: str | os.PathLike | None = None) -> dict[str, tuple[float, float]]:
  """Reads ``game,random,human`` reference scores; ``None`` gives the built-in Atari-57 table.

  Raises:
    FileNotFoundError: if ``path`` does not exist.
    ValueError: malformed header/rows, duplicate games, or ``human == random``.
  """
  if path is None:
    return _parse_reference(REFERENCE_CSV, "<built-in>")
  with open(path, encoding="utf-8") as f:
    return _parse_reference(f.read(), os.fspath(path))


def write_game_scores(path: str | os.PathLike, scores: Mapping[str, float]):
  """Writes per-game agent scores as ``game,score`` lines."""
  with open(path, "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["game", "score"])
    for game, s in scores.items():
      w.writerow([game, repr(float(s))])


def load_game_scores(path: str | os.PathLike) -> dict[str, float]:
  """Reads ``game,score`` lines written by :func:`write_game_scores` (or by hand)."""
  with open(path, encoding="utf-8") as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != ["game", "score"]:
      raise ValueError(f"{os.fspath(path)}: header must be 'game,score', got {header}")
    out = {}
    for lineno, row in enumerate(reader, start=2):
      if not row:
        continue
      if len(row) != 2:
        raise ValueError(f"{os.fspath(path)}:{lineno}: expected 2 fields, got {len(row)}")
      out[row[0].strip()] = float(row[1])
  return out


def human_normalized(game: str, score: float,
                     table: Mapping[str, tuple[float, float]] | None = None) -> float:
  """``100 (score − random) / (human − random)`` for ``game``.

  Raises:
    ValueError: if ``game`` is not in the table.
  """
  table = load_reference_scores() if table is None else table
  if game not in table:
    raise ValueError(f"game {game!r} has no reference scores; known: {sorted(table)[:5]}...")
  random, human = table[game]
  return 100.0 * (float(score) - random) / (human - random)


def median_human_normalized(scores: Mapping[str, float],
                            table: Mapping[str, tuple[float, float]] | None = None) -> float:
  """Median over games of :func:`human_normalized` (the paper's headline metric)."""
  if not scores:
    raise ValueError("scores must name at least one game")
  table = load_reference_scores() if table is None else table
  return float(np.median([human_normalized(g, s, table) for g, s in scores.items()]))
