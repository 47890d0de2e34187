"""Network-shaping harness: multi-process Pipe-SGD behind a bandwidth-limited loopback.

To compare measured AllReduce and iteration times with the timing model of Li et al. (NeurIPS
2018) on one machine, the worker processes run inside a private network namespace
(``unshare -n``, needs root or user namespaces) whose loopback device is limited by a token
bucket filter (``tc qdisc … tbf``; the ``netem`` delay module is not available on every kernel,
so latency is left as it is). Every byte the workers exchange crosses that one shaped queue,
so ``p`` simultaneous senders share the rate: the effective inverse bandwidth per element is
``β = p · 4 / rate`` (times the TCP/IP header overhead of the 1500-byte packets), and a ring
AllReduce of ``n`` float32 takes ``2(p − 1)/p · n · β = 2(p − 1) · 4n / rate`` seconds (see
:func:`shared_link_network`).

Usage::

  if netshape.available():
    out = netshape.run_shaped(2, ["--mode=allreduce", "--n=1000000"], rate_bytes_per_s=50e6)
    out["allreduce_s"]
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence

from jaxpapers.pipe_sgd import distributed, timing


@functools.lru_cache(maxsize=1)
def available() -> bool:
  """True if ``unshare -n`` and ``tc … tbf`` on the namespace's loopback work here."""
  if not all(shutil.which(t) for t in ("unshare", "tc", "ip")):
    return False
  probe = ("ip link set lo up && tc qdisc add dev lo root tbf rate 100mbit burst 64kb "
           "latency 100ms")
  try:
    r = subprocess.run(["unshare", "-n", "sh", "-c", probe], capture_output=True, timeout=20)
  except (OSError, subprocess.TimeoutExpired):
    return False
  return r.returncode == 0


def shaping_script(rate_bytes_per_s: float, burst_bytes: int = 65536, mtu: int = 1500,
                   queue_latency_ms: float = 2000.0) -> str:
  """The shell commands that bring ``lo`` up and attach the tbf limit to it."""
  if not rate_bytes_per_s > 0:
    raise ValueError(f"rate_bytes_per_s must be > 0, got {rate_bytes_per_s}")
  if burst_bytes < mtu:
    raise ValueError(f"burst_bytes ({burst_bytes}) must be >= mtu ({mtu}) or packets are dropped")
  bits = int(rate_bytes_per_s * 8)
  return (f"ip link set lo mtu {int(mtu)} && ip link set lo up && "
          f"tc qdisc add dev lo root tbf rate {bits}bit burst {int(burst_bytes)} "
          f"latency {queue_latency_ms:g}ms")


TCP_IP_HEADER_BYTES = 52  # IPv4 (20) + TCP (20) + TCP timestamp option (12)


def shared_link_network(rate_bytes_per_s: float, p: int, latency_s: float = 0.0,
                        mtu: int = 1500) -> timing.Network:
  """The α-β model of ``p`` ranks whose traffic shares one shaped link of ``rate`` bytes/s.

  The shaper counts whole IP packets, so only ``(mtu − 52)/mtu`` of the rate carries payload;
  the ``p`` ranks send at the same time and share what is left:
  ``β = 4 / (rate · (mtu − 52)/mtu / p)`` seconds per float32.
  """
  if p < 1:
    raise ValueError(f"p must be >= 1, got {p}")
  if mtu <= TCP_IP_HEADER_BYTES:
    raise ValueError(f"mtu must exceed {TCP_IP_HEADER_BYTES} bytes, got {mtu}")
  payload = rate_bytes_per_s * (mtu - TCP_IP_HEADER_BYTES) / mtu
  return timing.network_from_bandwidth(latency_s, payload / p)


def run_shaped(num_processes: int, worker_args: Sequence[str], *, rate_bytes_per_s: float,
               timeout: float = 300.0) -> dict:
  """Runs :func:`distributed.launch_local` inside a shaped namespace; returns process 0's result.

  Raises:
    RuntimeError: if shaping is unavailable here or a worker fails.
  """
  if not available():
    raise RuntimeError("network shaping needs 'unshare -n' and 'tc tbf' (root or user namespaces)")
  inner = [sys.executable, "-m", "jaxpapers.pipe_sgd.netshape", f"--num_processes={num_processes}",
           f"--timeout={timeout}", "--", *worker_args]
  script = shaping_script(rate_bytes_per_s) + " && exec " + shlex.join(inner)
  r = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True,
                     timeout=timeout + 30)
  if r.returncode != 0:
    raise RuntimeError(f"shaped run failed ({r.returncode}):\n{r.stderr[-3000:]}")
  for line in r.stdout.splitlines():
    if line.startswith("RESULT "):
      return json.loads(line[len("RESULT "):])
  raise RuntimeError(f"shaped run printed no RESULT line:\n{r.stdout[-2000:]}")


def main(argv: Sequence[str] | None = None) -> int:
  """Inside the namespace: launch the workers and forward process 0's RESULT line."""
  ap = argparse.ArgumentParser()
  ap.add_argument("--num_processes", type=int, required=True)
  ap.add_argument("--timeout", type=float, default=300.0)
  ap.add_argument("worker_args", nargs="*")
  a = ap.parse_args(argv)
  results = distributed.launch_local(a.num_processes, a.worker_args, timeout=a.timeout)
  for line in results[0].stdout.splitlines():
    if line.startswith("RESULT "):
      print(line, flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
