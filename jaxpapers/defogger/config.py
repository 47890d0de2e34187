"""Defogger configurations at the three scales."""

from __future__ import annotations

import ml_collections

from jaxpapers._src.validation import check_in


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """``smoke`` (seconds), ``quick`` (~2 minutes), ``cpu`` (minutes on 2 cores) or ``full`` (GPU).

  ``quick`` is the cpu setting with half the games and two thirds of the updates, the main model
  only (no ablations) and 32 bot games: enough for the held-out comparison with the rule-based
  baselines (the claim it checks), not for the ablations, which only ``cpu`` runs.
  """
  check_in(scale, "scale", ("smoke", "quick", "cpu", "full"))
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.seed = 0
  # world and featurizer
  c.map_size = 64
  c.max_units = 48
  c.num_frames = 160
  c.kernel = 8
  c.stride = 8
  c.skip = 4
  c.divide_by = 1.0
  c.memory_channels = True
  # model (the reference: one game per update, full BPTT, Adam 1e-4, clip 10)
  c.encoder = "ml"
  c.hidden = 32
  c.levels = 2
  c.horizons = [0, 1, 3]
  c.predict_delta = True
  # With memory channels the count delta is added to the last-seen memory (a zero head is the
  # previously-seen baseline); the reference adds it to the current input ("input").
  c.delta_from = "last_seen"
  # A Huber scale well below one unit makes the count loss L1-like (its optimum in a cell is the
  # median count, not the mean: what a count error over mostly empty cells rewards); the count
  # weight 1 / huber_delta keeps its gradients on the scale of the other losses.
  c.huber_delta = 0.1
  c.count_weight = 10.0
  c.exist_weight = 1.0
  c.army_weight = 0.1  # total enemy counts per type (the composition the bot uses)
  c.gated = False
  c.recurrent = True
  c.pos_weight = 5.0
  c.learning_rate = 1e-4
  c.grad_clip = 10.0
  c.games_per_update = 1
  c.chunk_size = 300  # updates between checkpoints / metric writes
  # the downstream bot: decisions at this frame (the earliest scripted attack is at frame 45)
  c.bot_decision_frame = 44
  c.bot_games = 128
  # models to train: name -> overrides
  c.models = ml_collections.ConfigDict({
      "ml": {"encoder": "ml"},
      "str": {"encoder": "str"},
      "ml_no_memory": {"encoder": "ml", "memory_channels": False, "delta_from": "input"},
      "ml_no_recurrence": {"encoder": "ml", "recurrent": False},
      "ml_no_memory_no_recurrence": {"encoder": "ml", "memory_channels": False,
                                     "delta_from": "input", "recurrent": False},
  })
  if scale == "full":
    c.train_games, c.val_games, c.test_games = 4096, 256, 512
    c.num_steps = 50_000
    c.hidden = 64
  else:
    c.train_games, c.val_games, c.test_games = 96, 16, 32
    c.num_steps = 900
    c.learning_rate = 3e-3  # the reference's 1e-4 needs far more than a CPU budget of updates
    c.games_per_update = 4
    # The recurrence ablation without memory channels: with them, a model without recurrence still
    # sees the history through the memory planes.
    c.models = ml_collections.ConfigDict({
        "ml": {"encoder": "ml"},
        "ml_no_memory": {"encoder": "ml", "memory_channels": False, "delta_from": "input"},
        "ml_no_memory_no_recurrence": {"encoder": "ml", "memory_channels": False,
                                       "delta_from": "input", "recurrent": False},
    })
  if scale == "smoke":
    c.num_frames = 32
    c.max_units = 24
    c.train_games, c.val_games, c.test_games = 4, 2, 2
    c.hidden = 8
    c.levels = 1
    c.num_steps = 2
    c.chunk_size = 2
    c.bot_games = 8
    c.games_per_update = 2
    c.models = ml_collections.ConfigDict({"ml": {"encoder": "ml"}})
  if scale == "quick":
    c.train_games, c.val_games, c.test_games = 48, 8, 16
    c.num_steps = 600
    c.bot_games = 32
    c.models = ml_collections.ConfigDict({"ml": {"encoder": "ml"}})
  return c
