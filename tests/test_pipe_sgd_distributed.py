"""Pipe-SGD across 2 processes (jax.distributed + gloo) equals the 1-process 2-device run."""

import numpy as np
import pytest

from jaxpapers.pipe_sgd import allreduce, distributed


def test_two_processes_match_single_process_two_devices(tmp_path):
  out = tmp_path / "dist"
  distributed.launch_local(2, ["--mode=train", "--steps=12", "--width=2", f"--out={out}"],
                           timeout=150)  # hard limit: hung workers are killed, the test fails
  got = np.load(out / "params.npz")
  ref = distributed.run_tiny(allreduce.default_mesh(2), steps=12, width=2)
  for name in ("dense0", "dense1"):
    for leaf in ("w", "b"):
      np.testing.assert_allclose(got[f"{name}/{leaf}"], ref["params"][name][leaf],
                                 rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5)


def test_launcher_validates_and_reports_failures():
  with pytest.raises(ValueError, match="num_processes"):
    distributed.launch_local(0)
  with pytest.raises(RuntimeError, match="exited with"):
    distributed.launch_local(1, ["--mode=nonsense"], timeout=60)
  assert distributed.free_port() > 0
