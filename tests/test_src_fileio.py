"""Shared file helpers: atomic writes and records bound to a configuration hash."""

import json

import pytest

from jaxpapers._src import fileio


def test_write_json_atomic_round_trip_leaves_no_temporary(tmp_path):
  path = tmp_path / "sub" / "rec.json"
  fileio.write_json_atomic(path, {"a": 1, "b": [1.5, 2]})
  assert json.loads(path.read_text()) == {"a": 1, "b": [1.5, 2]}
  fileio.write_json_atomic(path, {"a": 2})
  assert json.loads(path.read_text()) == {"a": 2}
  assert [p.name for p in path.parent.iterdir()] == ["rec.json"]


def test_read_json_for_config_refuses_other_configs_and_names_the_file(tmp_path):
  path = tmp_path / "seed0.json"
  assert fileio.read_json_for_config(path, "abc") is None
  fileio.write_json_atomic(path, {"config_hash": "abc", "complete": True, "x": 3})
  assert fileio.read_json_for_config(path, "abc")["x"] == 3
  with pytest.raises(ValueError, match=r"seed0\.json holds results of another configuration"):
    fileio.read_json_for_config(path, "def")
  path.write_text("{not json")
  with pytest.raises(ValueError, match=r"seed0\.json: not a readable record"):
    fileio.read_json_for_config(path, "abc")
  path.write_text("[1, 2]")
  with pytest.raises(ValueError, match="another configuration"):
    fileio.read_json_for_config(path, "abc")
