"""Reference-score files, human-normalised scores, and the Atari preprocessing."""

import numpy as np
import pytest

from jaxpapers.meta_gradient import atari, data


def test_reference_table_roundtrip_and_errors(tmp_path):
  table = data.load_reference_scores()
  assert len(table) == 57 and table["Pong"] == (-20.7, 14.6)
  path = tmp_path / "ref.csv"
  path.write_text("game,random,human\nPong,-20.7,14.6\nBreakout,1.7,30.5\n")
  small = data.load_reference_scores(path)
  assert small == {"Pong": (-20.7, 14.6), "Breakout": (1.7, 30.5)}
  # Hand-derived: Pong 14.6 -> 100 %, Breakout 16.1 -> 50 %; median of {100, 50} = 75.
  assert data.human_normalized("Pong", 14.6, small) == pytest.approx(100.0)
  assert data.median_human_normalized({"Pong": 14.6, "Breakout": 16.1}, small) == pytest.approx(75.0)
  bad = tmp_path / "bad.csv"
  bad.write_text("game,rnd,human\nPong,1,2\n")
  with pytest.raises(ValueError, match="header"):
    data.load_reference_scores(bad)
  bad.write_text("game,random,human\nPong,1,x\n")
  with pytest.raises(ValueError, match="non-numeric"):
    data.load_reference_scores(bad)
  bad.write_text("game,random,human\nPong,1,1\n")
  with pytest.raises(ValueError, match="equal"):
    data.load_reference_scores(bad)
  with pytest.raises(ValueError, match="Tetris"):
    data.human_normalized("Tetris", 1.0)


def test_game_scores_file_roundtrip(tmp_path):
  path = tmp_path / "scores.csv"
  data.write_game_scores(path, {"Pong": 3.25, "Seaquest": 1e4})
  assert data.load_game_scores(path) == {"Pong": 3.25, "Seaquest": 1e4}
  path.write_text("name,value\nPong,1\n")
  with pytest.raises(ValueError, match="header"):
    data.load_game_scores(path)


def test_preprocessing():
  a = np.zeros((210, 160), np.uint8)
  b = np.zeros((210, 160), np.uint8)
  a[:105] = 200
  b[105:] = 100
  out = atari.max_pool_and_resize(a, b)
  assert out.shape == (84, 84) and out.dtype == np.uint8
  assert out[:40].min() == 200 and out[-40:].max() == 100  # max over the two frames
  with pytest.raises(ValueError, match="frame_a"):
    atari.max_pool_and_resize(a, b[:, :10])
  assert atari.clip_reward(7.0) == 1.0 and atari.clip_reward(-3.0) == -1.0
  assert atari.rom_id("SpaceInvaders") == "space_invaders"


def test_ale_env_steps_and_resets():
  pytest.importorskip("ale_py")
  env = atari.AtariEnv("Pong", seed=0, noop_max=5)
  assert env.obs.shape == (84, 84, 4) and env.num_actions == 6
  total = 0.0
  for _ in range(30):
    s = env.step(0)
    total += s.raw_reward
    assert s.obs.shape == (84, 84, 4) and -1.0 <= s.reward <= 1.0
  assert total <= 0.0  # doing nothing in Pong never scores


def test_atari_host_loop_trains_both_variants_end_to_end(tmp_path):
  """The ``full``-scale path at toy size: ALE actors -> jitted IMPALA/LSTM learner -> median HNS."""
  pytest.importorskip("ale_py")
  from jaxpapers.meta_gradient import config as config_lib

  config = config_lib.get_config("full")
  config.atari_games = ("Pong",)
  config.seeds = (0,)
  config.num_envs = 2
  config.unroll_length = 4
  config.total_env_steps = 2 * 4 * 3  # three learner updates
  config.hidden = (16,)
  config.lstm_size = 8
  config.eta_embed_dim = 4
  config.max_episode_frames = 40  # truncate after 10 agent steps so episodes finish
  config.meta_lr = 0.1
  out = atari.train_and_evaluate_atari(config, str(tmp_path))
  table = data.load_reference_scores()
  for variant in ("fixed", "meta_gamma_lambda"):
    scores = data.load_game_scores(tmp_path / f"atari_scores_{variant}.csv")
    assert scores == pytest.approx(out[variant]["scores"])
    # Ten agent steps of Pong never end a rally, so every finished episode scores 0.
    assert scores["Pong"] == 0.0
    assert out[variant]["median_human_normalized"] == pytest.approx(
        data.human_normalized("Pong", 0.0, table))
    assert (tmp_path / f"atari_{variant}.jsonl").exists()
  # The fixed learner keeps η at its initial value; the meta learner moved it in three steps (the
  # meta-gradient is tiny while Pong pays no reward, but exactly zero if it were cut off, e.g. by
  # rlax's default stop-gradient flags, and Adam then leaves η unchanged).
  assert out["fixed"]["eta"]["Pong"]["gamma"] == pytest.approx([config.gamma_init], abs=1e-6)
  assert out["fixed"]["eta"]["Pong"]["lambda"] == pytest.approx([config.lambda_init], abs=1e-6)
  moved = [abs(out["meta_gamma_lambda"]["eta"]["Pong"][k][0] - v) for k, v in
           (("gamma", config.gamma_init), ("lambda", config.lambda_init))]
  assert max(moved) > 0.0
  with pytest.raises(ValueError, match="reference scores"):
    config.atari_games = ("NotAGame",)
    atari.train_and_evaluate_atari(config, str(tmp_path))
