"""The measured Pipe-SGD race: five methods as real processes (pipe_sgd/race.py, cluster.py)."""

import collections

import numpy as np
import pytest

from jaxpapers.pipe_sgd import cluster, race

S = dict(seed=0, hidden=[16], num_workers=2, batch_size=16, learning_rate=0.3, num_steps=12,
         snapshot_every=3, target_accuracy=0.5, width=2, compressor="none")


def _serial(s, width):
  """SGD on the mean of the workers' shard gradients, applied ``width − 1`` iterations late."""
  _, w, unravel, apply_fn, stream = race._problem(s)
  grad = race._grad_fn(unravel, apply_fn)
  p, lr = s["num_workers"], s["learning_rate"]
  pending = collections.deque()
  for t in range(s["num_steps"]):
    g = np.mean([np.asarray(grad(w, race._shard(stream, t, k, p))[0]) for k in range(p)], axis=0)
    if width == 1:
      w = w - lr * g
    else:
      if len(pending) == width - 1:
        w = w - lr * pending.popleft()
      pending.append(g)
  return w


def _run(method, tmp_path, s=S, rate=None):
  out = tmp_path / f"{method}.npy"
  res = race.run_method(s, method, rate_bytes_per_s=rate, timeout=300, params_out=str(out))
  return res, np.load(out)


@pytest.mark.parametrize("method,width", [("allreduce_sync", 1), ("ps_sync", 1), ("pipe", 2)])
def test_processes_follow_the_serial_recursion(method, width, tmp_path):
  res, w = _run(method, tmp_path)
  np.testing.assert_allclose(w, _serial(S, width), atol=2e-5)
  assert res["method"] == method
  assert [c[0] for c in res["curve"]] == [3, 6, 9, 12]
  times = [c[1] for c in res["curve"]]
  assert times == sorted(times) and times[0] > 0
  hit = next((c for c in res["curve"] if c[2] >= S["target_accuracy"]), None)
  assert (res["iterations_to_target"], res["time_to_target_s"]) == ((hit[0], hit[1]) if hit
                                                                     else (None, None))


def test_ps_async_applies_each_gradient_once_at_its_logged_version(tmp_path):
  """Replaying the server's log serially (each gradient at the version the worker pulled)
  gives the server's final parameters: no gradient lost, duplicated or applied to other weights."""
  res, w = _run("ps_async", tmp_path)
  p, steps, lr = S["num_workers"], S["num_steps"], S["learning_rate"]
  log = res["log"]
  assert len(log) == p * steps
  assert sorted((k, t) for k, t, _ in log) == [(k, t) for k in range(p) for t in range(steps)]
  for k in range(p):  # each worker's pushes are applied in order
    assert [t for kk, t, _ in log if kk == k] == list(range(steps))
  _, v, unravel, apply_fn, stream = race._problem(S)
  grad = race._grad_fn(unravel, apply_fn)
  versions = [v]
  for i, (k, t, ver) in enumerate(log):
    assert 0 <= ver <= i  # computed at a version the server had published
    g = np.asarray(grad(versions[ver], race._shard(stream, t, k, p))[0])
    versions.append(versions[-1] - (lr / p) * g)
  np.testing.assert_allclose(w, versions[-1], atol=2e-5)
  assert res["staleness_max"] <= p * steps and res["staleness_mean"] >= 0


@pytest.mark.skipif(not cluster.available(), reason="needs unshare -n, ip netns, veth and tc tbf")
def test_shaped_cluster_gives_the_same_iterates(tmp_path):
  _, w = _run("allreduce_sync", tmp_path, rate=50e6)
  np.testing.assert_allclose(w, _serial(S, 1), atol=2e-5)


def _fake_run(tt, it, tc=1e-3):
  return {"time_to_target_s": tt, "iterations_to_target": it, "final_accuracy": 0.9,
          "t_comp_s": tc, "model_size": 100}


def test_summarise_race_speedups_spread_and_fastest():
  runs = {"allreduce_sync": [_fake_run(2.0, 10), _fake_run(2.2, 10)],
          "pipe": [_fake_run(1.0, 12), _fake_run(1.0, 12)],
          "ps_sync": [_fake_run(8.0, 10), _fake_run(None, None)]}
  res = race.summarise_race(S, runs, None)
  assert res["speedup_pipe_vs_allreduce_sync"] == [2.0, pytest.approx(2.2)]
  assert res["speedup_pipe_vs_allreduce_sync_median"] == pytest.approx(2.1)
  assert res["speedup_pipe_vs_allreduce_sync_spread"] == pytest.approx(0.1)
  assert res["speedup_pipe_vs_ps_sync"] == [8.0, None]
  assert res["speedup_pipe_vs_ps_sync_median"] is None  # not reached in every rerun
  assert res["max_speedup"] == pytest.approx(2.1)
  assert res["fastest"] == ["pipe", "pipe"]
  assert "speedup_pipe_compressed_vs_allreduce_sync" not in res


def test_bad_settings_and_arguments_are_named():
  with pytest.raises(ValueError, match="lack 'seed'"):
    race.check_settings({k: v for k, v in S.items() if k != "seed"})
  with pytest.raises(ValueError, match="'num_steps' must be int"):
    race.check_settings({**S, "num_steps": 2.5})
  with pytest.raises(ValueError, match="not divisible"):
    race.check_settings({**S, "batch_size": 15})
  with pytest.raises(ValueError, match="learning_rate"):
    race.check_settings({**S, "learning_rate": float("nan")})
  with pytest.raises(ValueError, match="method must be one of"):
    race.num_processes("hogwild", 4)
  assert race.num_processes("ps_async", 4) == 5 and race.num_processes("pipe", 4) == 4
  with pytest.raises(ValueError, match="reruns"):
    race.race(S, ["pipe"], rate_bytes_per_s=None, reruns=0)
  with pytest.raises(ValueError, match="methods must be among"):
    race.race(S, ["pipe", "sgd"], rate_bytes_per_s=None)
  with pytest.raises(ValueError, match="rate_bytes_per_s"):
    cluster.setup_commands(2, 0.0, "t")
  with pytest.raises(ValueError, match="num_nodes"):
    cluster.setup_commands(0, 1e6, "t")


def test_cluster_shapes_both_directions_of_every_node():
  cmds = [" ".join(c) for c in cluster.setup_commands(3, 125e6, "t")]
  tbf = [c for c in cmds if " tbf rate 1000000000bit " in c]
  assert len(tbf) == 6  # each node's egress (inside) and ingress (the bridge side)
  assert sum(c.startswith("ip netns exec tn") for c in tbf) == 3
  assert [c for c in cmds if "addr add" in c] == [
      f"ip -n tn{i} addr add 10.77.0.{i + 1}/24 dev eth0" for i in range(3)]


def test_measured_binary_writes_the_race_and_every_finished_run(tmp_path):
  import json
  import pathlib
  import subprocess
  import sys

  repo = pathlib.Path(__file__).resolve().parents[1]
  wd = tmp_path / "wd"
  proc = subprocess.run(
      [sys.executable, str(repo / "experiments" / "pipe_sgd" / "measured.py"),
       f"--config={repo / 'experiments' / 'pipe_sgd' / 'configs' / 'default.py'}:smoke",
       f"--workdir={wd}", "--methods=allreduce_sync,ps_sync"],
      capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  res = json.loads((wd / "race.json").read_text())
  runs = [json.loads(line) for line in (wd / "runs.jsonl").read_text().splitlines()]
  assert [r["method"] for r in runs] == ["allreduce_sync", "ps_sync"]
  # both apply the exact mean gradient every iteration: the same accuracy curve
  assert [c[2] for c in runs[0]["curve"]] == pytest.approx([c[2] for c in runs[1]["curve"]],
                                                           abs=1e-6)
  assert res["reruns"] == 1 and not any(k.startswith("speedup_") for k in res)  # no Pipe-SGD raced
  assert "allreduce_sync" in proc.stdout and "time to target" in proc.stdout


def test_cifar_jpeg_race_data_and_a_cnn_across_processes(tmp_path):
  import io
  import tarfile

  from PIL import Image

  from jaxpapers.pipe_sgd import data

  archive = tmp_path / "c.tar.gz"
  rng = np.random.default_rng(0)
  with tarfile.open(archive, "w:gz") as tar:
    for split, count in (("train", 10), ("test", 2)):
      for cls in ("airplane", "bird", "truck"):
        for i in range(count):
          buf = io.BytesIO()
          Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
          info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg")
          info.size = len(buf.getvalue())
          tar.addfile(info, io.BytesIO(buf.getvalue()))
  assert race.prepare_data("digits", str(tmp_path)) == ""
  with pytest.raises(ValueError, match="dataset must be"):
    race.prepare_data("imagenet", str(tmp_path))
  path = race.prepare_data("cifar10_jpeg", str(tmp_path / "wd"), max_per_class=8,
                           archive=str(archive))
  ref = data.load_cifar10_jpeg_tar(archive, max_per_class=8, max_test_per_class=1)
  s = {**S, "model": "cnn", "channels": [4, 8], "hidden": [16], "data_file": path,
       "num_steps": 4, "batch_size": 8, "learning_rate": 0.05}
  ds = race._problem(s)[0]
  np.testing.assert_array_equal(ds.x_train, ref.x_train)
  np.testing.assert_array_equal(ds.y_test, ref.y_test)
  assert ds.x_train.shape == (24, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3)
  _, w = _run("ps_sync", tmp_path, s)
  np.testing.assert_allclose(w, _serial(s, 1), atol=2e-5)
  with pytest.raises(ValueError, match="not a race data file"):
    race._problem({**s, "data_file": str(tmp_path / "missing.npz")})
  with pytest.raises(ValueError, match="model must be"):
    race.check_settings({**s, "model": "resnet"})


@pytest.mark.skipif(not cluster.available(), reason="needs unshare -n, ip netns, veth and tc tbf")
def test_a_killed_cluster_run_leaves_no_workers_or_namespaces(tmp_path):
  import json
  import os
  import signal
  import subprocess
  import sys
  import time

  s = {**S, "num_steps": 100_000}  # far longer than the test waits
  proc = subprocess.Popen(
      ["unshare", "-n", sys.executable, "-m", "jaxpapers.pipe_sgd.cluster", "--num_nodes=2",
       "--rate_bytes_per_s=1e8", "--", "--method=allreduce_sync", "--settings=" + json.dumps(s)],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster._env())
  tag = f"jp{proc.pid % 100000}"

  def workers():  # the worker processes (python -m jaxpapers.pipe_sgd.race) of this run
    return [pid for pid in _pids() if "jaxpapers.pipe_sgd.race" in _cmdline(pid)
            and f"--settings={json.dumps(s)}" in _cmdline(pid)]

  deadline = time.monotonic() + 60
  while time.monotonic() < deadline and len(workers()) < 2:
    time.sleep(0.5)
  started = workers()
  assert len(started) == 2, "the workers never started"
  os.kill(proc.pid, signal.SIGTERM)
  proc.communicate(timeout=60)
  time.sleep(2)
  assert not [pid for pid in started if os.path.exists(f"/proc/{pid}")]
  names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
  assert tag not in names


def _pids():
  import os

  return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _cmdline(pid):
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      return f.read().decode(errors="replace").split("\0")
  except OSError:
    return []
