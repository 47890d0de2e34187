"""Pipe-SGD timing models: hand-derived values and the paper's identities."""

import jax
import numpy as np
import pytest

from jaxpapers.pipe_sgd import timing

NET = timing.Network(alpha=1e-4, beta=4e-9, gamma=1e-10)


def test_ring_time_hand_derived():
  # p = 4, n = 1e6: 2*3*1e-4 + 2*3/4*1e6*4e-9 + 3/4*1e6*1e-10
  expected = 6e-4 + 6e-3 + 7.5e-5
  np.testing.assert_allclose(float(timing.ring_allreduce_time(NET, 4, 1e6)), expected, rtol=1e-6)
  # 16-bit truncation halves the bandwidth term and adds 2*(p-1)/p*n*zeta
  t16 = float(timing.ring_allreduce_time(NET, 4, 1e6, bits=16, zeta=1e-10))
  np.testing.assert_allclose(t16, 6e-4 + 3e-3 + 7.5e-5 + 1.5e-4, rtol=1e-6)


def test_ps_times_hand_derived():
  # sync: t_comp + 2p(a + n b) + (p-1) n g + t_up with p=4, n=1e6, t_comp=0.01, t_up=0.001
  sync = float(timing.ps_sync_time(NET, 4, 1e6, 0.01, 0.001))
  np.testing.assert_allclose(sync, 0.01 + 8 * (1e-4 + 4e-3) + 3e-4 + 0.001, rtol=1e-6)
  asyn = float(timing.ps_async_time(NET, 4, 1e6, 0.01, 0.001))
  trip = 2 * (1e-4 + 4e-3)
  np.testing.assert_allclose(asyn, max(0.01 + trip + 0.001, 4 * (trip + 0.001)), rtol=1e-6)


def test_pipe_identities_over_a_sweep():
  rng = np.random.default_rng(0)
  for _ in range(50):
    net = timing.Network(*(10.0 ** rng.uniform([-6, -10, -11], [-3, -7, -9])))
    p = int(rng.integers(2, 64))
    n = float(10 ** rng.uniform(3, 8))
    t_comp, t_up = float(10 ** rng.uniform(-3, 0)), float(10 ** rng.uniform(-5, -2))
    comm = float(timing.ring_allreduce_time(net, p, n))
    sync = float(timing.allreduce_sync_time(net, p, n, t_comp, t_up))
    np.testing.assert_allclose(float(timing.pipe_sgd_time(net, p, n, t_comp, t_up, width=1)), sync,
                               rtol=1e-6)
    for k in (2, 3, 5):
      pipe = float(timing.pipe_sgd_time(net, p, n, t_comp, t_up, width=k))
      np.testing.assert_allclose(pipe, max(t_comp + t_up, comm), rtol=1e-6)
      assert pipe <= sync
      assert pipe >= sync / 2 * (1 - 1e-6)  # pipelining alone is at most a 2x gain


def test_ring_elements_per_rank():
  for p in (2, 3, 4, 8, 16):
    np.testing.assert_allclose(timing.ring_elements_per_rank(p, 1200), 2 * (p - 1) * 1200 / p)


def test_best_width_is_two_and_why():
  choice = timing.best_pipeline_width(t_comp=0.3, t_comm=0.2, t_up=0.01, max_width=6)
  assert choice.width == 2
  np.testing.assert_allclose(choice.times, [0.51, 0.31, 0.31, 0.31, 0.31, 0.31])
  np.testing.assert_array_equal(choice.staleness, [0, 1, 2, 3, 4, 5])
  assert timing.best_pipeline_width(t_comp=0.3, t_comm=0.0).width == 1


def test_vmap_over_cluster_size_matches_loop():
  ps = np.arange(2, 10, dtype=np.float32)
  f = lambda p: timing.pipe_sgd_time(NET, p, 1e6, 0.005, width=2)
  batched = jax.vmap(f)(ps)
  np.testing.assert_allclose(batched, [float(f(p)) for p in ps], rtol=1e-6)
  np.testing.assert_allclose(jax.jit(f)(ps), batched, rtol=1e-6)


def test_network_from_bandwidth():
  net = timing.network_from_bandwidth(1e-4, 1e9)
  assert net == timing.Network(1e-4, 4e-9, 0.0)


def test_bad_inputs():
  with pytest.raises(ValueError, match="width"):
    timing.pipe_sgd_time(NET, 4, 1e6, 0.01, width=0)
  with pytest.raises(ValueError, match="bits"):
    timing.ring_allreduce_time(NET, 4, 1e6, bits=4)
  with pytest.raises(ValueError, match="p \\(cluster size\\)"):
    timing.ring_allreduce_time(NET, 0, 1e6)
  with pytest.raises(TypeError, match="net"):
    timing.ring_allreduce_time((1e-4, 1e-9, 0.0), 4, 1e6)
  with pytest.raises(ValueError, match="bandwidth_bytes_per_s"):
    timing.network_from_bandwidth(1e-4, 0.0)
  with pytest.raises(ValueError, match="max_width"):
    timing.best_pipeline_width(0.1, 0.1, max_width=0)


def test_shaped_link_model_and_script():
  from jaxpapers.pipe_sgd import netshape

  # 2 ranks share 50 MB/s of 1500-byte packets: ring AllReduce of n floats = 2(p-1)*4n/payload
  net = netshape.shared_link_network(50e6, 2)
  payload = 50e6 * 1448 / 1500
  np.testing.assert_allclose(float(timing.ring_allreduce_time(net, 2, 5e5)), 2 * 4 * 5e5 / payload,
                             rtol=1e-6)
  script = netshape.shaping_script(50e6)
  assert "tbf rate 400000000bit" in script and "mtu 1500" in script
  with pytest.raises(ValueError, match="burst_bytes"):
    netshape.shaping_script(50e6, burst_bytes=1000)
  with pytest.raises(ValueError, match="rate_bytes_per_s"):
    netshape.shaping_script(0.0)
