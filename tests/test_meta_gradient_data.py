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
