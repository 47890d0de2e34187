"""Runs and checkpoints: nothing silent (issue 22).

A checkpoint of another configuration or state layout is refused with an error naming what
differs; a workdir is locked against a second run (but not by a dead one); a run killed with
SIGKILL and restarted gives the same result as an uninterrupted one; a bad workdir fails at once
with an error naming the path.
"""

import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import jaxpapers
from jaxpapers._src import checkpoint, loop, metrics, workdir
from jaxpapers.dmgan import config as dmgan_config
from jaxpapers.dmgan import train as dmgan_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class State(NamedTuple):
  w: jax.Array
  key: jax.Array
  step: jax.Array


def _state(n=4):
  return State(jnp.arange(n * 3, dtype=jnp.float32).reshape(n, 3), jax.random.key(1),
               jnp.zeros((), jnp.int32))


def _env():
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  env.pop("XLA_FLAGS", None)  # one CPU device is enough for the child processes
  return env


# ---------------------------------------------------------------- 1. checkpoint fingerprints


def test_checkpoint_of_another_config_is_refused_naming_the_fields(tmp_path):
  cfg = {"num_generators": 10, "seed": 0, "learning_rate": 2e-4, "num_steps": 100,
         "train": {"batch_size": 32}}
  with checkpoint.Checkpointer(tmp_path / "ckpt", config=cfg) as c:
    c.save(5, _state())
  other = dict(cfg, num_generators=4, seed=1, learning_rate=1e-3, train={"batch_size": 16})
  with checkpoint.Checkpointer(tmp_path / "ckpt", config=other) as c:
    with pytest.raises(checkpoint.CheckpointMismatchError) as e:
      c.restore(_state())
  msg = str(e.value)
  for field in ("num_generators: 10", "seed: 0", "learning_rate: 0.0002", "train.batch_size: 32"):
    assert field in msg
  assert "num_steps" not in msg and os.fspath(tmp_path / "ckpt") in msg
  # Fields that do not change the state (a longer run) still resume; so does an equal config.
  with checkpoint.Checkpointer(tmp_path / "ckpt", config=dict(cfg, num_steps=200)) as c:
    state, step = c.restore(_state())
  assert step == 5
  np.testing.assert_array_equal(state.w, _state().w)
  # A field added since the checkpoint was written is named too.
  with checkpoint.Checkpointer(tmp_path / "ckpt", config=dict(cfg, dropout=0.1)) as c:
    with pytest.raises(checkpoint.CheckpointMismatchError, match=r"dropout: <absent> in the checkpoint"):
      c.restore(_state())


def test_config_hash_is_stable_and_ignores_order():
  a = checkpoint.flatten_config({"b": 1, "a": {"y": (1, 2), "x": np.float32(0.5)}})
  b = checkpoint.flatten_config({"a": {"x": 0.5, "y": [1, 2]}, "b": 1})
  assert a == b == {"a.x": 0.5, "a.y": [1, 2], "b": 1}
  assert checkpoint.config_hash(a) == checkpoint.config_hash(b)
  assert checkpoint.config_hash(a) != checkpoint.config_hash(dict(a, b=2))
  cfg = dmgan_config.get_config("smoke")
  flat = checkpoint.flatten_config(cfg, checkpoint.DEFAULT_IGNORED)
  assert flat["num_generators"] == 10 and "num_steps" not in flat and "progress" not in flat
  with pytest.raises(TypeError, match="config"):
    checkpoint.flatten_config(3)


def test_restore_checks_shapes_dtypes_and_leaves_against_the_template(tmp_path):
  with checkpoint.Checkpointer(tmp_path / "ckpt") as c:
    c.save(3, _state(10))
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"\.w: expected shape \(4, 3\) float32, found \(10, 3\) float32"):
      c.restore(_state(4))
    wrong_dtype = _state(10)._replace(step=jnp.zeros((), jnp.float32))
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"\.step: expected shape \(\) float32, found \(\) int32"):
      c.restore(wrong_dtype)
    with pytest.raises(checkpoint.CheckpointMismatchError, match=r"\['extra'\]: missing from"):
      c.restore({"w": _state(10).w, "extra": jnp.zeros(2)})
    state, step = c.restore(_state(10))  # the matching template still restores
    assert step == 3 and state.w.shape == (10, 3)


def test_package_version_mismatch_and_unfingerprinted_checkpoints_are_refused(tmp_path, monkeypatch):
  with checkpoint.Checkpointer(tmp_path / "ckpt", config={"seed": 0}) as c:
    c.save(1, _state())
  monkeypatch.setattr(jaxpapers, "__version__", "9.9.9")
  with checkpoint.Checkpointer(tmp_path / "ckpt", config={"seed": 0}) as c:
    with pytest.raises(checkpoint.CheckpointMismatchError, match=r"jaxpapers 0\.1\.0, this is 9\.9\.9"):
      c.restore(_state())
  monkeypatch.undo()
  # A checkpoint written the old way (no run record) cannot be checked: refused, not trusted.
  old = ocp.CheckpointManager(os.fspath(tmp_path / "old"),
                              options=ocp.CheckpointManagerOptions(create=True))
  old.save(2, args=ocp.args.StandardSave(jax.tree.map(np.asarray, {"w": _state().w})))
  old.wait_until_finished()
  old.close()
  with checkpoint.Checkpointer(tmp_path / "old") as c:
    with pytest.raises(checkpoint.CheckpointMismatchError, match="no run record"):
      c.restore({"w": _state().w})
  # A checkpoint saved without a config cannot vouch for one.
  with checkpoint.Checkpointer(tmp_path / "noconf") as c:
    c.save(1, _state())
  with checkpoint.Checkpointer(tmp_path / "noconf", config={"seed": 0}) as c:
    with pytest.raises(checkpoint.CheckpointMismatchError, match="without a configuration"):
      c.restore(_state())


def _dmgan_tiny(**overrides):
  c = dmgan_config.get_config("smoke")
  c.num_generators = 3
  c.critic_steps = 1
  c.batch_size = 8
  c.num_steps = 10
  c.chunk_size = 5
  c.checkpoint_every = 5
  c.eval_samples = 100
  c.save_png = False
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


def test_dmgan_refuses_a_workdir_of_another_configuration(tmp_path):
  wd = os.fspath(tmp_path / "run")
  c = _dmgan_tiny()
  p = dmgan_train.build_problem(c)
  state = dmgan_train._init_state(jax.random.key(c.seed), p.cfg, p.generator, p.critic)
  # The checkpoint a 3-generator run writes (saved directly: compiling the training step is slow).
  with checkpoint.Checkpointer(os.path.join(wd, "ckpt"), config=c,
                               ignore=checkpoint.DEFAULT_IGNORED + dmgan_train._EVAL_ONLY) as ckpt:
    ckpt.save(5, state)
  with pytest.raises(checkpoint.CheckpointMismatchError, match=r"num_generators: 3 in the checkpoint, 4"):
    dmgan_train.train(_dmgan_tiny(num_generators=4), wd)
  with pytest.raises(checkpoint.CheckpointMismatchError, match=r"seed: 0 in the checkpoint, 1 in this run"):
    dmgan_train.train(_dmgan_tiny(seed=1), wd)
  with pytest.raises(checkpoint.CheckpointMismatchError, match=r"learning_rate: 0\.001 in the checkpoint"):
    dmgan_train.train(_dmgan_tiny(learning_rate=2e-4), wd)
  # Even without a config, the state's shapes are checked (4 generators vs 3).
  p4 = dmgan_train.build_problem(_dmgan_tiny(num_generators=4))
  state4 = dmgan_train._init_state(jax.random.key(0), p4.cfg, p4.generator, p4.critic)
  with checkpoint.Checkpointer(os.path.join(wd, "ckpt")) as ckpt:
    with pytest.raises(checkpoint.CheckpointMismatchError, match=r"expected shape \(4,.*found \(3,"):
      ckpt.restore(state4)


# ---------------------------------------------------------------- 2. workdir lock

_HOLD = textwrap.dedent("""
  import sys, time
  from jaxpapers._src import metrics
  w = metrics.MetricsWriter(sys.argv[1], log=False)
  print("ready", flush=True)
  time.sleep(120)
""")


def test_second_run_in_a_workdir_fails_naming_the_holder_and_dead_holders_do_not_block(tmp_path):
  path = tmp_path / "wd" / "metrics.jsonl"
  proc = subprocess.Popen([sys.executable, "-c", _HOLD, os.fspath(path)], stdout=subprocess.PIPE,
                          env=_env(), text=True)
  try:
    assert proc.stdout.readline().strip() == "ready"
    with pytest.raises(workdir.WorkdirLockedError, match=rf"in use by another run \(pid {proc.pid} on host"):
      metrics.MetricsWriter(path, log=False)
    holder = workdir.read_holder(tmp_path / "wd")
    assert holder["pid"] == proc.pid and holder["started"]
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  # The dead holder's lock file is still there, but the OS released its lock.
  assert workdir.read_holder(tmp_path / "wd")["pid"] == proc.pid
  with metrics.MetricsWriter(path, log=False) as w:
    w.write(1, loss=1.0)
    assert workdir.read_holder(tmp_path / "wd")["pid"] == os.getpid()
    with metrics.MetricsWriter(path, log=False) as w2:  # re-entrant within one process
      w2.write(2, loss=2.0)
  assert [r["step"] for r in metrics.read_metrics(path)] == [1, 2]


_TRY_LOCK = textwrap.dedent("""
  import sys
  from jaxpapers._src import workdir
  try:
    workdir.WorkdirLock(sys.argv[1]).acquire()
    print("acquired")
  except workdir.WorkdirLockedError as e:
    print(e)
""")


def test_checkpointer_holds_its_directory_lock_until_closed(tmp_path):
  def try_lock():
    return subprocess.run([sys.executable, "-c", _TRY_LOCK, os.fspath(tmp_path / "ckpt")],
                          capture_output=True, text=True, env=_env(), check=True).stdout

  c = checkpoint.Checkpointer(tmp_path / "ckpt")
  assert f"in use by another run (pid {os.getpid()} on host" in try_lock()
  c.close()
  assert try_lock().strip() == "acquired"


# ---------------------------------------------------------------- 3. history from the file


def test_read_history_keeps_the_last_line_per_step_and_rejects_gaps(tmp_path):
  path = tmp_path / "metrics.jsonl"
  with metrics.MetricsWriter(path, log=False) as w:
    w.write_history(1, {"loss": np.array([5.0, 4.0, 3.0]), "acc": np.array([0, 0, 1])})
    w.write(3, auroc=0.5)  # an evaluation line: not a step of the history
  with metrics.MetricsWriter(path, log=False) as w:  # restarted from a checkpoint at step 2
    w.write_history(3, {"loss": np.array([np.float32(2.5), np.nan]), "acc": np.array([1, 1])})
  hist = metrics.read_history(path, ["loss", "acc"])
  np.testing.assert_array_equal(hist["loss"], [5.0, 4.0, 2.5, np.nan])
  np.testing.assert_array_equal(hist["acc"], [0, 0, 1, 1])
  np.testing.assert_array_equal(metrics.read_history(path, ["loss"], last_step=2)["loss"], [5, 4])
  assert metrics.tail_means({"loss": np.arange(30.0)}, 0.1) == {"loss": 28.0}
  assert metrics.tail_means({"loss": np.arange(5.0), "x": np.zeros(0)}) == {"loss": 4.0}
  with metrics.MetricsWriter(path, log=False) as w:
    w.write(7, loss=1.0, acc=1)
  with pytest.raises(ValueError, match=r"no lines for steps 5, 6"):
    metrics.read_history(path, ["loss", "acc"])
  with pytest.raises(ValueError, match="common length"):
    metrics.MetricsWriter(None).write_history(1, {"a": np.zeros(2), "b": np.zeros(3)})


def test_run_chunked_writes_every_step_before_the_checkpoint_callback(tmp_path):
  path = tmp_path / "metrics.jsonl"

  def step_fn(s, i):
    return s + 1.0, {"loss": s * 2.0, "i": i}

  seen = []
  with metrics.MetricsWriter(path, log=False) as w:
    def on_chunk(_, step, __):
      seen.append((step, metrics.read_metrics(path)[-1]["step"]))

    _, hist = loop.run_chunked(step_fn, jnp.float32(0), 7, chunk_size=3, progress=False,
                               on_chunk=on_chunk, writer=w)
  assert seen == [(3, 3), (6, 6), (7, 7)]  # the file is complete when the callback runs
  from_file = metrics.read_history(path, ["loss", "i"])
  np.testing.assert_array_equal(from_file["loss"], hist["loss"])
  np.testing.assert_array_equal(from_file["i"], np.arange(7))


def test_unfinished_last_line_of_a_killed_writer_is_dropped(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
  assert metrics.read_metrics(path) == [{"step": 1, "loss": 1.0}]
  with metrics.MetricsWriter(path, log=False) as w:
    w.write(2, loss=2.0)
  assert metrics.read_metrics(path) == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}]
  path.write_text('{"step": 1}\n{"step": \n{"step": 3}\n')
  with pytest.raises(ValueError, match="line 2 is not valid JSON"):
    metrics.read_metrics(path)


# ---------------------------------------------------------------- 4. bad workdirs


def test_bad_workdirs_fail_before_any_work_naming_the_path(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  with pytest.raises(ValueError, match=rf"workdir '{a_file}' exists and is not a directory"):
    workdir.prepare(a_file)
  with pytest.raises(ValueError, match=rf"workdir '{a_file}/sub' cannot be created"):
    workdir.prepare(a_file / "sub")
  with pytest.raises(ValueError, match=r"workdir '/proc/self' is not writable"):
    workdir.prepare("/proc/self")  # not writable even for root
  with pytest.raises(TypeError, match="workdir"):
    workdir.prepare(3)
  with pytest.raises(ValueError, match="non-empty"):
    workdir.prepare("")
  with pytest.raises(ValueError, match=rf"'{a_file}' exists and is not a directory"):
    checkpoint.Checkpointer(a_file)
  with pytest.raises(ValueError, match=rf"'{a_file}' exists and is not a directory"):
    metrics.MetricsWriter(a_file / "metrics.jsonl")
  with pytest.raises(ValueError, match=rf"'{a_file}' exists and is not a directory"):
    dmgan_train.train_and_evaluate(_dmgan_tiny(), os.fspath(a_file))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only directory")
def test_read_only_workdir_fails_naming_the_path(tmp_path):
  ro = tmp_path / "ro"
  ro.mkdir()
  ro.chmod(0o500)
  try:
    with pytest.raises(ValueError, match=rf"workdir '{ro}' is not writable"):
      workdir.prepare(ro)
  finally:
    ro.chmod(0o700)


# ---------------------------------------------------------------- 5. SIGKILL and restart

_RUN = textwrap.dedent("""
  import json, os, sys, time
  from jaxpapers.dmgan import config as config_lib, train
  from jaxpapers._src import metrics
  workdir, out, die_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
  c = config_lib.get_config("smoke")
  c.update(num_generators=3, critic_steps=1, batch_size=8, num_steps=20, chunk_size=5,
           checkpoint_every=10, eval_samples=100, save_png=False)
  if die_after:  # hang (to be killed) once the metrics of step die_after are written
    write = metrics.MetricsWriter.write_history
    def write_then_hang(self, first, hist):
      write(self, first, hist)
      if first + len(next(iter(hist.values()))) - 1 >= die_after:
        open(os.path.join(workdir, "HANGING"), "w").close()
        time.sleep(600)
    metrics.MetricsWriter.write_history = write_then_hang
  result = train.train_and_evaluate(c, workdir)
  with open(out, "w") as f:
    json.dump(result, f)
""")


def test_dmgan_killed_with_sigkill_and_restarted_matches_an_uninterrupted_run(tmp_path):
  procs = []

  def run(name, die_after=0):
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, os.fspath(tmp_path / name), os.fspath(tmp_path / f"{name}.json"),
         str(die_after)], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    return proc

  try:
    # The uninterrupted run first: it fills the persistent compilation cache (conftest.py) that
    # the two later processes read, so that they do not compile the training step again.
    whole = run("whole")
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    # Killed after the checkpoint at step 10 and the metrics of steps 11-15 (written again after
    # the restart): the restarted process's own history is steps 11-20 only.
    killed = run("killed", die_after=15)
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "HANGING").exists():
      assert killed.poll() is None, killed.stderr.read()
      assert time.time() < deadline, "the run never reached step 15"
      time.sleep(0.05)
    # A second run in the same workdir while the first is alive fails, naming the first.
    with pytest.raises(workdir.WorkdirLockedError, match=f"pid {killed.pid} on host"):
      dmgan_train.train_and_evaluate(_dmgan_tiny(num_steps=20, checkpoint_every=10),
                                     os.fspath(tmp_path / "killed"))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert set(os.listdir(tmp_path / "killed" / "ckpt")) == {"10", workdir.LOCK_NAME}
    assert workdir.read_holder(tmp_path / "killed")["pid"] == killed.pid  # a stale lock file
    restarted = run("killed")
    assert restarted.wait(timeout=300) == 0, restarted.stderr.read()
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  a = json.loads((tmp_path / "whole.json").read_text())
  b = json.loads((tmp_path / "killed.json").read_text())
  assert a["steps"] == b["steps"] == 20
  assert set(a["final"]) >= {"d_loss", "g_loss", "w_distance"}
  assert a == b
  hist = metrics.read_history(tmp_path / "killed" / "metrics.jsonl", ["d_loss"])
  assert len(hist["d_loss"]) == 20
  assert b["final"]["d_loss"] == np.mean(hist["d_loss"][-2:])


@pytest.mark.parametrize("paper", sorted(jaxpapers.PAPERS))
def test_every_paper_rejects_a_file_as_workdir_before_any_work(paper, tmp_path):
  train = importlib.import_module(f"jaxpapers.{paper}.train")
  config = importlib.import_module(f"jaxpapers.{paper}.config").get_config("smoke")
  a_file = tmp_path / "not_a_dir"
  a_file.write_text("x")
  with pytest.raises(ValueError, match=rf"workdir '{a_file}' exists and is not a directory"):
    train.train_and_evaluate(config, os.fspath(a_file))
