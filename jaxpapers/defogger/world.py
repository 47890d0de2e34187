"""A JAX-native real-time-strategy world with fog of war (the data the defogger learns from).

STARDATA (Lin et al. 2017) cannot be obtained here, so games come from a generator that keeps the
structure the defogger exploits: two players on a symmetric map with terrain start at one of four
candidate corners (unknown to the opponent); each follows one of three latent build orders through
a tech tree (buildings require buildings; unit types come from specific buildings); workers shuttle
between base and resources; a scout explores the candidate start locations; armies rally, then
attack along a path through the map centre (air units fly straight) and fight, with deaths and
counters (``DAMAGE``), under fog. Vision is the union of the own units' sight disks (per-type radii).

Everything is fixed-size (``max_units`` slots per player with alive masks), ``lax.scan``-ned over
frames and ``vmap``-able over games; a key gives a reproducible game.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

UNIT_TYPES = ("worker", "scout", "infantry", "heavy", "air",
              "base", "barracks", "factory", "starport", "turret")
NUM_TYPES = len(UNIT_TYPES)
BUILDING_TYPES = (5, 6, 7, 8, 9)
IS_BUILDING = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], bool)
HP = np.array([40, 40, 50, 150, 90, 800, 400, 450, 450, 200], np.float32)
DPS = np.array([1, 0, 6, 12, 8, 0, 0, 0, 0, 10], np.float32)
RANGE = np.array([1, 0, 3, 5, 3.5, 0, 0, 0, 0, 6], np.float32)
SIGHT = np.array([5, 9, 6, 7, 8, 8, 6, 6, 6, 9], np.float32)
SPEED = np.array([1.0, 2.0, 1.0, 0.6, 1.5, 0, 0, 0, 0, 0], np.float32)
# PRODUCER[u]: the building type that makes unit type u (-1: none / buildings).
PRODUCER = np.array([5, 5, 6, 7, 8, -1, -1, -1, -1, -1], np.int32)
# PREREQ[b]: the building a building type requires (-1: none). The tech tree.
PREREQ = np.array([5, 5, 6, 7, 8, -1, 5, 6, 7, 6], np.int32)

# DAMAGE[a, t]: damage multiplier of attacker type a against target type t — the counters that
# make the enemy's composition matter: infantry shoots air well and barely scratches heavy armour,
# heavy units crush infantry but cannot hit air, air hunts heavy units, turrets are anti-air.
DAMAGE = np.ones((NUM_TYPES, NUM_TYPES), np.float32)
DAMAGE[2, 4], DAMAGE[2, 3] = 2.0, 0.5
DAMAGE[3, 2], DAMAGE[3, 4] = 2.0, 0.0
DAMAGE[4, 3], DAMAGE[4, 2] = 2.0, 0.5
DAMAGE[9, 4] = 2.0

STRATEGIES = ("rush", "tech", "expand")
# Build orders: (building type, frame) pairs, before jitter. The expansion base (type 5) goes to
# the natural expansion.
_BUILD_ORDERS = np.array([
    [[6, 10], [6, 22], [9, 45], [7, 90], [8, 130], [5, 150]],  # rush
    [[6, 15], [7, 35], [8, 60], [9, 70], [5, 100], [6, 120]],  # tech
    [[5, 15], [6, 30], [7, 60], [9, 80], [8, 110], [6, 130]],  # expand
], np.int32)
# Production propensity per unit type for each strategy (scaled per producer building per frame).
_PRODUCTION = np.array([
    [0.10, 0.0, 0.30, 0.06, 0.05],
    [0.10, 0.0, 0.06, 0.12, 0.20],
    [0.16, 0.0, 0.12, 0.15, 0.06],
], np.float32)
_ATTACK_FRAME = np.array([45, 115, 95], np.int32)
_MAX_WORKERS = 10


class GameConfig(NamedTuple):
  """Static settings of the world."""

  map_size: int = 64
  max_units: int = 48
  num_frames: int = 160
  scout_frame: int = 8


class Units(NamedTuple):
  """Per-player unit slots, each array ``[2, max_units]``."""

  alive: jax.Array
  type: jax.Array
  x: jax.Array
  y: jax.Array
  hp: jax.Array
  uid: jax.Array
  aux: jax.Array  # workers: carrying flag; scout: next waypoint index


class GameMap(NamedTuple):
  """Static map: terrain planes ``[S, S]`` and the four candidate start locations ``[4, 2]``."""

  walkable: jax.Array
  buildable: jax.Array
  height: jax.Array
  start_locations: jax.Array


class Game(NamedTuple):
  """A generated game: per-frame unit lists (the content of a reduced replay dump)."""

  game_map: GameMap
  start: jax.Array  # [2] index into start_locations
  strategy: jax.Array  # [2]
  alive: jax.Array  # [F, 2, U]
  type: jax.Array  # [F, 2, U]
  x: jax.Array  # [F, 2, U]
  y: jax.Array  # [F, 2, U]
  uid: jax.Array  # [F, 2, U]
  visible: jax.Array  # [F, 2, U]: unit of player p seen by player 1 - p at this frame


class BotOrders(NamedTuple):
  """Player 0's decisions (the downstream bot, :mod:`jaxpapers.defogger.bot`), all effective from
  ``frame`` on; every frame before ``frame`` is bit-identical to the scripted game.

  Attributes:
    frame: int scalar, the decision frame. Player 0 attacks at ``max(scripted frame, frame)``.
    target: ``[2]`` the ``(x, y)`` its army attacks instead of the true enemy base.
    production: ``[5]`` production propensities of the unit types (worker, scout, infantry,
      heavy, air) that replace its strategy's.
    tech: ``[3]`` bool: build a barracks, factory, starport (at frames ``frame``, ``frame + 1``,
      ``frame + 2``; prerequisites permitting) when it has none — a tech switch.
  """

  frame: jax.Array
  target: jax.Array
  production: jax.Array
  tech: jax.Array


def scripted_orders(strategy0, target) -> BotOrders:
  """Orders that reproduce the scripted player 0 of ``strategy0`` attacking ``target``."""
  return BotOrders(jnp.int32(0), jnp.asarray(target, jnp.float32),
                   jnp.asarray(_PRODUCTION)[strategy0], jnp.zeros(3, bool))


def strategy_production(strategy) -> jax.Array:
  """``[..., 5]`` production propensities of the scripted strategies."""
  return jnp.asarray(_PRODUCTION)[strategy]


def make_map(key: jax.Array, size: int = 64) -> GameMap:
  """A 4-fold symmetric map: random obstacle blobs (mirrored), two height levels, corner starts."""
  k1, k2 = jax.random.split(key)
  half = size // 2
  g = jnp.arange(size, dtype=jnp.float32) + 0.5
  yy, xx = jnp.meshgrid(g, g, indexing="ij")
  centres = jax.random.uniform(k1, (3, 2), minval=0.25 * half, maxval=0.9 * half)
  radii = jax.random.uniform(k2, (3,), minval=2.0, maxval=4.0)
  # Fold coordinates into the first quadrant so the terrain is mirror-symmetric.
  fx = jnp.minimum(xx, size - xx)
  fy = jnp.minimum(yy, size - yy)
  d = jnp.sqrt((fx[..., None] - centres[:, 0]) ** 2 + (fy[..., None] - centres[:, 1]) ** 2)
  obstacle = jnp.any(d < radii, axis=-1)
  margin = 6.0
  starts = jnp.array([[margin, margin], [size - margin, margin], [margin, size - margin],
                      [size - margin, size - margin]], jnp.float32)
  near_start = jnp.min(jnp.hypot(xx[..., None] - starts[:, 0], yy[..., None] - starts[:, 1]), -1) < 8
  walkable = (~obstacle) | near_start
  height = (jnp.hypot(fx - 0, fy - 0) < 14).astype(jnp.float32)  # raised corner plateaus
  buildable = walkable & (jnp.hypot(xx - size / 2, yy - size / 2) > 6)
  return GameMap(walkable.astype(jnp.float32), buildable.astype(jnp.float32), height, starts)


def _spawn_many(units: Units, p: int, ok, utype, x, y, uid_counter):
  """Places every requested unit (``ok[r]``) of player ``p`` into free slots, in request order.

  Requests beyond the free slots are dropped. Vectorised: the k-th request takes the k-th free slot.
  """
  u = units.alive.shape[1]
  ok = jnp.asarray(ok, bool)
  free = ~units.alive[p]
  free_rank = jnp.cumsum(free) - 1
  slot_of_rank = jnp.full((u + 1,), u, jnp.int32).at[jnp.where(free, free_rank, u)].set(
      jnp.arange(u, dtype=jnp.int32))
  req_rank = jnp.cumsum(ok) - 1
  valid = ok & (req_rank < jnp.sum(free))
  slot = jnp.where(valid, slot_of_rank[jnp.clip(req_rank, 0, u)], u)  # u = dropped
  set_ = lambda arr, v: arr.at[p, slot].set(v, mode="drop")
  utype = jnp.broadcast_to(jnp.asarray(utype, jnp.int32), ok.shape)
  units = Units(
      alive=set_(units.alive, True), type=set_(units.type, utype),
      x=set_(units.x, jnp.broadcast_to(x, ok.shape)), y=set_(units.y, jnp.broadcast_to(y, ok.shape)),
      hp=set_(units.hp, jnp.asarray(HP)[utype]), uid=set_(units.uid, uid_counter[p] + req_rank + 1),
      aux=set_(units.aux, 0))
  return units, uid_counter.at[p].add(jnp.sum(valid).astype(jnp.int32))


def _initial_units(cfg: GameConfig, base_xy):
  u = cfg.max_units
  units = Units(
      alive=jnp.zeros((2, u), bool), type=jnp.zeros((2, u), jnp.int32),
      x=jnp.zeros((2, u)), y=jnp.zeros((2, u)), hp=jnp.zeros((2, u)),
      uid=jnp.zeros((2, u), jnp.int32), aux=jnp.zeros((2, u), jnp.int32))
  counter = jnp.zeros((2,), jnp.int32)
  # a base, four workers and a scout each
  types = jnp.array([5, 0, 0, 0, 0, 1], jnp.int32)
  dx = jnp.array([0.0, -1.5, -0.5, 0.5, 1.5, 0.0])
  dy = jnp.array([0.0, 1.0, 1.0, 1.0, 1.0, -1.0])
  for p in range(2):
    units, counter = _spawn_many(units, p, jnp.ones(6, bool), types, base_xy[p, 0] + dx,
                                 base_xy[p, 1] + dy, counter)
  return units, counter


def _move_towards(x, y, tx, ty, speed):
  dx, dy = tx - x, ty - y
  dist = jnp.sqrt(dx ** 2 + dy ** 2) + 1e-6
  step = jnp.minimum(speed, dist)
  return x + dx / dist * step, y + dy / dist * step


def _visible(units: Units):
  """``seen[p, u]``: unit u of player p lies in the sight of an alive unit of player 1 - p."""
  sight = jnp.asarray(SIGHT)[units.type]
  out = []
  for p in range(2):
    q = 1 - p
    d = jnp.hypot(units.x[p][:, None] - units.x[q][None, :], units.y[p][:, None] - units.y[q][None, :])
    seen = jnp.any((d <= sight[q][None, :]) & units.alive[q][None, :], axis=1)
    out.append(seen & units.alive[p])
  return jnp.stack(out)


def vision_map(units: Units, p: int, cell_x, cell_y):
  """Boolean visibility of points ``(cell_x, cell_y)`` (any shape) for player ``p``."""
  sight = jnp.asarray(SIGHT)[units.type[p]]
  d = jnp.hypot(cell_x[..., None] - units.x[p], cell_y[..., None] - units.y[p])
  return jnp.any((d <= sight) & units.alive[p], axis=-1)


def _combat(units: Units):
  """Every armed unit hits the nearest enemy in range that it can damage (``DAMAGE`` > 0) with
  ``DPS × DAMAGE[own type, target type]``; returns the units after damage."""
  dps, rng = jnp.asarray(DPS)[units.type], jnp.asarray(RANGE)[units.type]
  hp = units.hp
  for p in range(2):
    q = 1 - p
    mult = jnp.asarray(DAMAGE)[units.type[p][:, None], units.type[q][None, :]]  # [U, U]
    d = jnp.hypot(units.x[p][:, None] - units.x[q][None, :], units.y[p][:, None] - units.y[q][None, :])
    d = jnp.where(units.alive[q][None, :] & (mult > 0), d, jnp.inf)
    target = jnp.argmin(d, axis=1)
    in_range = (jnp.min(d, axis=1) <= rng[p]) & units.alive[p] & (dps[p] > 0)
    hit = dps[p] * jnp.take_along_axis(mult, target[:, None], 1)[:, 0]
    damage = jnp.zeros_like(hp[q]).at[target].add(jnp.where(in_range, hit, 0.0))
    hp = hp.at[q].add(-damage)
  alive = units.alive & (hp > 0)
  return units._replace(hp=hp, alive=alive)


def generate_game(key: jax.Array, cfg: GameConfig = GameConfig(),
                  orders: BotOrders | None = None) -> Game:
  """Generates one game of ``cfg.num_frames`` frames.

  Args:
    key: PRNG key (the game is a deterministic function of it).
    cfg: world settings.
    orders: optional decisions of player 0 (the downstream bot, :class:`BotOrders`); they act from
      ``orders.frame`` on, so frames before it are identical to the default game. ``None``
      (default) is the scripted behaviour; so are :func:`scripted_orders` with the true enemy
      base, bit for bit.

  Returns:
    A :class:`Game` with per-frame unit lists for both players.
  """
  k_map, k_start, k_strat, k_jit, k_scout, k_loop = jax.random.split(key, 6)
  gmap = make_map(k_map, cfg.map_size)
  size = float(cfg.map_size)
  start = jax.random.choice(k_start, 4, (2,), replace=False)
  strategy = jax.random.randint(k_strat, (2,), 0, len(STRATEGIES))
  base_xy = gmap.start_locations[start]
  centre = jnp.array([size / 2, size / 2])
  # resources sit behind each base (towards the map edge); the natural expansion towards the centre.
  resource_xy = base_xy + 0.6 * jnp.sign(base_xy - centre) * 4.0
  natural_xy = base_xy + 0.22 * (centre - base_xy)
  rally_xy = base_xy + 0.3 * (centre - base_xy)
  build_orders = jnp.asarray(_BUILD_ORDERS)[strategy]  # [2, 6, 2]
  jitter = jax.random.randint(k_jit, (2, 6), -4, 5)
  build_frames = jnp.maximum(build_orders[..., 1] + jitter, 1)
  scout_order = jax.vmap(lambda k: jax.random.permutation(k, 4))(jax.random.split(k_scout, 2))
  units, counter = _initial_units(cfg, base_xy)
  prod = jnp.asarray(_PRODUCTION)[strategy]  # [2, 5]
  attack_frame = jnp.asarray(_ATTACK_FRAME)[strategy]
  if orders is not None:
    attack_frame = attack_frame.at[0].max(jnp.asarray(orders.frame, jnp.int32))

  def frame(carry, inp):
    units, counter = carry
    f, key = inp
    keys = jax.random.split(key, 8)
    # ---- construction (tech tree: a building needs its prerequisite alive)
    for p in range(2):
      owned = jnp.zeros(NUM_TYPES, bool).at[units.type[p]].max(units.alive[p])
      btype = build_orders[p, :, 0]  # [6]
      prereq = jnp.asarray(PREREQ)[btype]
      ok = (f == build_frames[p]) & jnp.where(prereq >= 0, owned[jnp.maximum(prereq, 0)], True)
      anchor = jnp.where((btype == 5)[:, None], natural_xy[p], base_xy[p])  # [6, 2]
      # the best of a few candidate spots on buildable ground
      cand = anchor[:, None, :] + jax.random.uniform(jax.random.fold_in(keys[0], p), (6, 6, 2),
                                                     minval=-5.0, maxval=5.0)
      cand = jnp.clip(cand, 1.0, size - 1.0)
      cell = cand.astype(jnp.int32)
      good = gmap.buildable[cell[..., 1], cell[..., 0]]  # [6, 6]
      spot = jnp.take_along_axis(cand, jnp.argmax(good, 1)[:, None, None], 1)[:, 0]
      units, counter = _spawn_many(units, p, ok, btype, spot[:, 0], spot[:, 1], counter)
      if orders is not None and p == 0:  # the bot's tech switch (own random stream)
        tb = jnp.array([6, 7, 8])
        tok = (orders.tech & (f == orders.frame + jnp.arange(3)) & ~owned[tb]
               & owned[jnp.asarray(PREREQ)[tb]])
        cand = base_xy[0] + jax.random.uniform(jax.random.fold_in(keys[0], 2), (3, 6, 2),
                                               minval=-5.0, maxval=5.0)
        cand = jnp.clip(cand, 1.0, size - 1.0)
        cell = cand.astype(jnp.int32)
        good = gmap.buildable[cell[..., 1], cell[..., 0]]
        spot = jnp.take_along_axis(cand, jnp.argmax(good, 1)[:, None, None], 1)[:, 0]
        units, counter = _spawn_many(units, 0, tok, tb, spot[:, 0], spot[:, 1], counter)
    # ---- production: each producer building may make one unit per frame
    for p in range(2):
      n_workers = jnp.sum(units.alive[p] & (units.type[p] == 0))
      u = jax.random.uniform(jax.random.fold_in(keys[1], p), (cfg.max_units,))
      pick = jax.random.uniform(jax.random.fold_in(keys[2], p), (cfg.max_units,))
      bt = units.type[p]  # [U]
      is_prod = units.alive[p] & jnp.asarray(IS_BUILDING)[bt]
      # unit types each building makes, weighted by the strategy's propensities: [U, 5]
      makes = jnp.asarray(PRODUCER)[:5][None, :] == bt[:, None]
      prod_p = prod[p]
      if orders is not None and p == 0:
        prod_p = jnp.where(f >= orders.frame, jnp.asarray(orders.production, jnp.float32), prod_p)
      w = jnp.where(makes, prod_p[None, :], 0.0)
      w = w.at[:, 0].set(jnp.where(n_workers >= _MAX_WORKERS, 0.0, w[:, 0]))
      total = jnp.sum(w, 1)
      utype = jnp.argmax(jnp.cumsum(w, 1) > (pick * total)[:, None], axis=1)
      ok = is_prod & (u < total)
      units, counter = _spawn_many(units, p, ok, utype, units.x[p] + 1.0, units.y[p] + 1.0, counter)
    # ---- movement
    seen = _visible(units)
    new_x, new_y, new_aux = [], [], []
    for p in range(2):
      q = 1 - p
      t = units.type[p]
      x, y, aux = units.x[p], units.y[p], units.aux[p]
      # workers: base <-> resources
      to_res = aux == 0
      wx = jnp.where(to_res, resource_xy[p, 0], base_xy[p, 0])
      wy = jnp.where(to_res, resource_xy[p, 1], base_xy[p, 1])
      arrived = jnp.hypot(wx - x, wy - y) < 1.0
      worker_aux = jnp.where(arrived, 1 - aux, aux)
      # scout: visit the candidate start locations in a random order, then return home
      idx = jnp.clip(aux, 0, 4)
      locs = jnp.concatenate([gmap.start_locations[scout_order[p]], base_xy[p][None]], 0)
      sx, sy = locs[idx, 0], locs[idx, 1]
      s_arr = jnp.hypot(sx - x, sy - y) < 2.0
      scout_aux = jnp.where(s_arr, jnp.minimum(aux + 1, 4), aux)
      scouting = f >= cfg.scout_frame
      sx = jnp.where(scouting, sx, x)
      sy = jnp.where(scouting, sy, y)
      # army: rally, then attack the enemy base (ground units via the map centre); engage enemies
      # in sight on the way.
      enemy_base = base_xy[q]
      if orders is not None and p == 0:
        enemy_base = jnp.asarray(orders.target, jnp.float32)
      attacking = f >= attack_frame[p]
      far = jnp.hypot(enemy_base[0] - x, enemy_base[1] - y) > jnp.hypot(*(enemy_base - centre)) + 2.0
      ground = t != 4
      ax = jnp.where(ground & far, centre[0], enemy_base[0])
      ay = jnp.where(ground & far, centre[1], enemy_base[1])
      ax = jnp.where(attacking, ax, rally_xy[p, 0])
      ay = jnp.where(attacking, ay, rally_xy[p, 1])
      d = jnp.hypot(x[:, None] - units.x[q][None, :], y[:, None] - units.y[q][None, :])
      sight = jnp.asarray(SIGHT)[t]
      d = jnp.where(units.alive[q][None, :], d, jnp.inf)
      near = jnp.argmin(d, axis=1)
      engage = (jnp.min(d, axis=1) <= sight) & attacking
      ax = jnp.where(engage, units.x[q][near], ax)
      ay = jnp.where(engage, units.y[q][near], ay)
      is_worker, is_scout = t == 0, t == 1
      tx = jnp.where(is_worker, wx, jnp.where(is_scout, sx, ax))
      ty = jnp.where(is_worker, wy, jnp.where(is_scout, sy, ay))
      mx, my = _move_towards(x, y, tx, ty, jnp.asarray(SPEED)[t])
      noise = 0.15 * jax.random.normal(jax.random.fold_in(keys[3], p), (2, cfg.max_units))
      mobile = jnp.asarray(SPEED)[t] > 0
      mx = jnp.clip(jnp.where(mobile, mx + noise[0], x), 0.0, size - 1e-3)
      my = jnp.clip(jnp.where(mobile, my + noise[1], y), 0.0, size - 1e-3)
      new_x.append(mx)
      new_y.append(my)
      new_aux.append(jnp.where(is_worker, worker_aux, jnp.where(is_scout, scout_aux, aux)))
    units = units._replace(x=jnp.stack(new_x), y=jnp.stack(new_y), aux=jnp.stack(new_aux))
    units = _combat(units)
    seen = _visible(units)
    out = (units.alive, units.type, units.x, units.y, units.uid, seen)
    del seen
    return (units, counter), out

  frames = jnp.arange(cfg.num_frames, dtype=jnp.int32)
  keys = jax.random.split(k_loop, cfg.num_frames)
  _, (alive, utype, x, y, uid, visible) = jax.lax.scan(frame, (units, counter), (frames, keys))
  return Game(gmap, start, strategy, alive, utype, x, y, uid, visible)


def generate_games(key: jax.Array, num_games: int, cfg: GameConfig = GameConfig(),
                   orders: BotOrders | None = None) -> Game:
  """``num_games`` games, vmapped over keys (leading axis ``[G]`` on every field).

  ``orders``: optional player-0 decisions with a leading ``[num_games]`` axis (see
  :func:`generate_game`).
  """
  keys = jax.random.split(key, num_games)
  if orders is None:
    return jax.vmap(lambda k: generate_game(k, cfg))(keys)
  return jax.vmap(lambda k, o: generate_game(k, cfg, o))(keys, orders)


def attack_frame(strategy) -> jax.Array:
  """The frame from which a player with ``strategy`` attacks (its army rallies before)."""
  return jnp.asarray(_ATTACK_FRAME)[strategy]
