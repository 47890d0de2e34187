"""Iteration-time models of distributed SGD (Li et al., "Pipe-SGD", NeurIPS 2018, Sec. 3).

Every model is a pure function of the network and the workload, written in the classic
latency-bandwidth-compute ("α-β-γ") cost model used by the paper:

* ``alpha``: latency of one point-to-point message (seconds),
* ``beta``: inverse bandwidth (seconds per transmitted element, i.e. ``bytes / bandwidth``),
* ``gamma``: cost of reducing (adding) one element (seconds per element),
* ``p``: cluster size (number of workers), ``n``: model size (number of gradient elements),
* ``t_comp``: forward + backward time of one local iteration, ``t_up``: time of one update.

The functions accept Python floats or arrays (they broadcast, so a whole sweep over ``p`` or
bandwidth is one call) and are jit/vmap-compatible.

Models (per iteration, i.e. per application of one averaged gradient of all ``p`` workers):

* Parameter server, synchronous (one server whose link serialises the ``p`` workers)::

    T = t_comp + 2·p·(α + n·β) + (p − 1)·n·γ + t_up

* Parameter server, asynchronous (workers never wait for each other; the server applies each
  worker's gradient separately, so one "iteration" is ``p`` server round trips, bounded below by
  a single worker's own cycle)::

    T = max(t_comp + 2(α + n·β) + t_up,  p·(2(α + n·β) + t_up))

* Ring AllReduce, synchronous (reduce-scatter then all-gather, ``2(p − 1)`` hops of ``n/p``
  elements)::

    T_comm = 2(p − 1)·α + 2(p − 1)/p·n·β + (p − 1)/p·n·γ,    T = t_comp + t_up + T_comm

* Pipe-SGD of width ``K``: up to ``K − 1`` AllReduces are in flight while the next iterations
  compute, so the compute thread and the (serialised) communication thread run concurrently::

    T(K = 1) = t_comp + t_up + T_comm,     T(K ≥ 2) = max(t_comp + t_up, T_comm)

  Widths beyond 2 cannot beat the busier of the two resources; they only add staleness
  (``K − 1`` iterations), which is why the paper fixes ``K = 2``.

* Compression (truncation to ``bits = 16`` or 8-bit scalar quantization) scales the bandwidth
  term by ``bits / 32`` and adds ``zeta`` seconds per element for encoding + decoding at each of
  the ``(p − 1)`` reduce-scatter hops of ``n/p`` elements and once more for the all-gather.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_positive, is_concrete

FULL_BITS = 32


class Network(NamedTuple):
  """Point-to-point network and reduction costs of the α-β-γ model.

  Attributes:
    alpha: latency per message, seconds.
    beta: seconds per transmitted float32 element (``4 / bytes_per_second``).
    gamma: seconds per reduced (added) element.
  """

  alpha: float
  beta: float
  gamma: float


def network_from_bandwidth(latency_s: float, bandwidth_bytes_per_s: float,
                           gamma: float = 0.0, bytes_per_element: int = 4) -> Network:
  """Builds a :class:`Network` from latency and a link bandwidth in bytes/second."""
  check_positive(latency_s, "latency_s", allow_zero=True)
  check_positive(bandwidth_bytes_per_s, "bandwidth_bytes_per_s")
  check_positive(gamma, "gamma", allow_zero=True)
  check_positive(bytes_per_element, "bytes_per_element")
  return Network(float(latency_s), float(bytes_per_element) / float(bandwidth_bytes_per_s),
                 float(gamma))


def _check_nonnegative(x, name: str):
  """Concrete values must be >= 0 (NaN passes through and gives an honest NaN time)."""
  if is_concrete(x) and np.any(np.asarray(x, np.float64) < 0):
    raise ValueError(f"{name} must be >= 0, got {x}")


def _check_common(net: Network, p, n):
  if not isinstance(net, Network):
    raise TypeError(f"net must be a pipe_sgd.timing.Network, got {type(net).__name__}")
  for field in Network._fields:
    _check_nonnegative(getattr(net, field), f"net.{field}")
  # value checks only on concrete inputs (under jit/vmap the values are not known)
  if is_concrete(p) and np.any(np.asarray(p) < 1):
    raise ValueError(f"p (cluster size) must be >= 1, got {p}")
  if is_concrete(n) and np.any(np.asarray(n) < 0):
    raise ValueError(f"n (model size) must be >= 0, got {n}")


def _check_times(t_comp, t_up):
  _check_nonnegative(t_comp, "t_comp")
  _check_nonnegative(t_up, "t_up")


def ring_allreduce_time(net: Network, p, n, *, bits: int = FULL_BITS, zeta: float = 0.0):
  """Time of one ring AllReduce of ``n`` elements over ``p`` workers.

  ``2(p − 1)α + 2(p − 1)/p·n·β·bits/32 + (p − 1)/p·n·γ`` plus, when compressed
  (``bits < 32``), ``2(p − 1)/p·n·ζ``: one encode + decode per element at each of the
  reduce-scatter hops and again at the all-gather hops.

  Args:
    net: network costs.
    p: number of workers (>= 1).
    n: number of gradient elements.
    bits: bits per transmitted element (32 uncompressed, 16 truncation, 8 quantization).
    zeta: seconds per element to encode + decode (0 without compression).

  Raises:
    ValueError: concrete ``p`` < 1, ``n`` < 0, a negative cost in ``net`` or ``zeta`` < 0, or
      ``bits`` not 8/16/32 (NaN inputs give a NaN time).
    TypeError: ``net`` is not a :class:`Network`.
  """
  _check_common(net, p, n)
  _check_nonnegative(zeta, "zeta")
  if bits not in (8, 16, 32):
    raise ValueError(f"bits must be 8, 16 or 32, got {bits}")
  p = jnp.asarray(p, jnp.float32)
  n = jnp.asarray(n, jnp.float32)
  frac = (p - 1.0) / p
  comp = 2.0 * frac * n * zeta if bits < FULL_BITS else 0.0
  return (2.0 * (p - 1.0) * net.alpha + 2.0 * frac * n * net.beta * (bits / FULL_BITS)
          + frac * n * net.gamma + comp)


def ring_elements_per_rank(p, n):
  """Elements each rank sends (and receives) in a ring AllReduce: ``2(p − 1)/p·n``."""
  p = np.asarray(p, np.float64)
  return 2.0 * (p - 1.0) / p * np.asarray(n, np.float64)


def allreduce_sync_time(net: Network, p, n, t_comp, t_up=0.0, *, bits: int = FULL_BITS,
                        zeta: float = 0.0):
  """Synchronous decentralized SGD: ``t_comp + t_up + T_ring`` (paper's AllReduce baseline)."""
  _check_times(t_comp, t_up)
  return t_comp + t_up + ring_allreduce_time(net, p, n, bits=bits, zeta=zeta)


def pipe_sgd_time(net: Network, p, n, t_comp, t_up=0.0, *, width: int = 2,
                  bits: int = FULL_BITS, zeta: float = 0.0):
  """Pipe-SGD iteration time for pipeline ``width`` K (K = 1 is synchronous AllReduce).

  ``T(1) = t_comp + t_up + T_comm`` and ``T(K ≥ 2) = max(t_comp + t_up, T_comm)``: with at least
  one AllReduce in flight the compute thread and the communication thread each run
  back-to-back, so the slower of the two sets the pace.
  """
  if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
    raise ValueError(f"width (pipeline width K) must be an integer >= 1, got {width!r}")
  _check_times(t_comp, t_up)
  comm = ring_allreduce_time(net, p, n, bits=bits, zeta=zeta)
  if width == 1:
    return t_comp + t_up + comm
  return jnp.maximum(t_comp + t_up, comm)


def ps_sync_time(net: Network, p, n, t_comp, t_up=0.0):
  """Synchronous parameter server with one server: ``t_comp + 2p(α + nβ) + (p − 1)nγ + t_up``."""
  _check_common(net, p, n)
  _check_times(t_comp, t_up)
  p = jnp.asarray(p, jnp.float32)
  n = jnp.asarray(n, jnp.float32)
  return t_comp + 2.0 * p * (net.alpha + n * net.beta) + (p - 1.0) * n * net.gamma + t_up


def ps_async_time(net: Network, p, n, t_comp, t_up=0.0):
  """Asynchronous parameter server, time per ``p`` applied gradients (one per worker).

  ``max(t_comp + 2(α + nβ) + t_up, p·(2(α + nβ) + t_up))``: each worker cycles through
  compute, push and pull on its own, but the server link handles the ``p`` round trips one at a
  time.
  """
  _check_common(net, p, n)
  _check_times(t_comp, t_up)
  p = jnp.asarray(p, jnp.float32)
  n = jnp.asarray(n, jnp.float32)
  trip = 2.0 * (net.alpha + n * net.beta)
  return jnp.maximum(t_comp + trip + t_up, p * (trip + t_up))


class WidthChoice(NamedTuple):
  """Result of :func:`best_pipeline_width`.

  Attributes:
    width: the chosen K (smallest width with the minimal iteration time).
    widths: the candidate widths ``1..max_width``.
    times: iteration time of each candidate.
    staleness: gradient staleness ``K − 1`` of each candidate (iterations).
  """

  width: int
  widths: np.ndarray
  times: np.ndarray
  staleness: np.ndarray


def best_pipeline_width(t_comp: float, t_comm: float, t_up: float = 0.0,
                        max_width: int = 8) -> WidthChoice:
  """Picks the pipeline width: the fastest iteration, ties broken by the least staleness.

  ``T(K)`` is constant for ``K ≥ 2`` (the max of compute and communication) while the
  staleness ``K − 1`` grows, so whenever both compute and communication take time the answer is
  ``K = 2`` (``K = 1`` only if communication is free).

  Args:
    t_comp: compute time per iteration (>= 0).
    t_comm: AllReduce time per iteration (>= 0), e.g. from :func:`ring_allreduce_time`.
    t_up: update time per iteration (>= 0).
    max_width: largest width considered (>= 1).
  """
  check_positive(t_comp, "t_comp", allow_zero=True)
  check_positive(t_comm, "t_comm", allow_zero=True)
  check_positive(t_up, "t_up", allow_zero=True)
  if isinstance(max_width, bool) or not isinstance(max_width, (int, np.integer)) or max_width < 1:
    raise ValueError(f"max_width must be an integer >= 1, got {max_width!r}")
  widths = np.arange(1, max_width + 1)
  times = np.array([t_comp + t_up + t_comm if k == 1 else max(t_comp + t_up, t_comm)
                    for k in widths], dtype=np.float64)
  best = int(widths[int(np.argmin(times))])  # argmin returns the first (least stale) minimum
  return WidthChoice(best, widths, times, widths - 1)
