"""Pipe-SGD experiment plumbing: configs, method numerics, model-predicted iteration times."""

import jax
import numpy as np
import pytest

from jaxpapers.pipe_sgd import config, timing, train


@pytest.mark.parametrize("scale", ["smoke", "cpu", "full"])
def test_configs(scale):
  cfg = config.get_config(scale)
  assert cfg.batch_size % cfg.num_workers == 0
  assert set(cfg.methods) == set(config.METHODS)
  assert cfg.width == 2  # the paper's pipeline width


def test_bad_scale_and_method():
  with pytest.raises(ValueError, match="scale"):
    config.get_config("huge")
  with pytest.raises(ValueError, match="method"):
    train._method_numerics("hogwild", config.get_config("smoke"))
  cfg = config.get_config("smoke")
  cfg.batch_size = 33
  with pytest.raises(ValueError, match="not divisible by the device count"):
    train.train_and_evaluate(cfg, "/tmp/unused_pipe_sgd_wd")


def test_method_numerics():
  cfg = config.get_config("cpu")
  assert train._method_numerics("ps_sync", cfg) == train._method_numerics("allreduce_sync", cfg)
  assert train._method_numerics("pipe", cfg) == (2, "none", False)
  assert train._method_numerics("pipe_compressed", cfg) == (2, "truncate16", False)
  assert train._method_numerics("ps_async", cfg) == (cfg.num_workers, "none", True)


def test_mesh_size_divides_workers():
  for p in (1, 2, 3, 4, 6, 8, 12):
    d = train.mesh_size(p)
    assert p % d == 0 and 1 <= d <= jax.device_count()


def test_predicted_iteration_times_match_timing_model():
  cfg = config.get_config("cpu")
  costs = {"t_comp": 1e-3, "t_up": 1e-4, "model_size": 100_000}
  got = train.predicted_iteration_times(cfg, costs)
  net = timing.network_from_bandwidth(cfg.timing.latency_s, cfg.timing.bandwidth_bytes_per_s,
                                      cfg.timing.gamma)
  p, n = cfg.num_workers, 100_000
  comm = float(timing.ring_allreduce_time(net, p, n))
  np.testing.assert_allclose(got["allreduce_sync"], 1.1e-3 + comm, rtol=1e-6)
  np.testing.assert_allclose(got["pipe"], max(1.1e-3, comm), rtol=1e-6)
  comm16 = float(timing.ring_allreduce_time(net, p, n, bits=16, zeta=cfg.timing.zeta))
  np.testing.assert_allclose(got["pipe_compressed"], max(1.1e-3, comm16), rtol=1e-6)
  assert got["pipe_compressed"] <= got["pipe"] <= got["allreduce_sync"] < got["ps_sync"]
