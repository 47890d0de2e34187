"""An emulated cluster on one machine: one network namespace per node, each with its own shaped NIC.

The paper's cluster (Li et al., NeurIPS 2018, Sec. 5) has one network link per node, so a
parameter server's link carries ``p`` workers' traffic while a ring AllReduce spreads it over every
link. :mod:`~jaxpapers.pipe_sgd.netshape` shapes one shared loopback, which cannot show that
difference; here every node is a private network namespace joined to a bridge by a veth pair, and
a token bucket filter (``tc … tbf``) limits each veth in *both* directions (the node's egress and
its ingress) to ``rate`` bytes/s — a full-duplex NIC per node. Everything lives inside an outer
``unshare -n`` namespace, so nothing touches the host's network.

Node ``i`` has address ``10.77.0.{i+1}``; process ``i`` runs on node ``i`` and process 0 hosts
JAX's coordination service.

Usage::

  if cluster.available():
    stdouts = cluster.run(4, "jaxpapers.pipe_sgd.race", ["--method=pipe", ...],
                          rate_bytes_per_s=125e6)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence

from jaxpapers.pipe_sgd import distributed

SUBNET = "10.77.0"
# veth hands the qdisc GSO super-packets of up to 64 KiB; a tbf bucket smaller than a packet drops
# it, so the bucket holds one such packet (a short transfer of up to this many bytes is not
# shaped: 0.5 ms at 125 MB/s).
BURST_BYTES = 1 << 16


def node_address(i: int) -> str:
  """The IPv4 address of node ``i``."""
  if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 250:
    raise ValueError(f"node index must be an integer in [0, 250), got {i!r}")
  return f"{SUBNET}.{i + 1}"


@functools.lru_cache(maxsize=1)
def available() -> bool:
  """True if namespaces, veth pairs, a bridge and tbf can be set up here (root or userns)."""
  if not all(shutil.which(t) for t in ("unshare", "tc", "ip")):
    return False
  try:
    r = subprocess.run(["unshare", "-n", sys.executable, "-m", "jaxpapers.pipe_sgd.cluster",
                        "--num_nodes=2", "--rate_bytes_per_s=1e8", "--probe"],
                       capture_output=True, timeout=30, env=_env())
  except (OSError, subprocess.TimeoutExpired):
    return False
  return r.returncode == 0


def _term_as_exit(signum, frame):
  del frame
  raise SystemExit(128 + signum)


def _env() -> dict:
  env = dict(os.environ)
  env.update({"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"})
  return env


def setup_commands(num_nodes: int, rate_bytes_per_s: float, tag: str) -> list[list[str]]:
  """The ``ip``/``tc`` commands that build the cluster (run inside the outer namespace)."""
  if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or not 1 <= num_nodes < 250:
    raise ValueError(f"num_nodes must be an integer in [1, 250), got {num_nodes!r}")
  if not (isinstance(rate_bytes_per_s, (int, float)) and rate_bytes_per_s > 0
          and rate_bytes_per_s < float("inf")):
    raise ValueError(f"rate_bytes_per_s must be a finite number > 0, got {rate_bytes_per_s!r}")
  tbf = ["tbf", "rate", f"{int(rate_bytes_per_s * 8)}bit", "burst", str(BURST_BYTES),
         "latency", "2000ms"]
  cmds = [["ip", "link", "set", "lo", "up"],
          ["ip", "link", "add", f"{tag}br", "type", "bridge"],
          ["ip", "link", "set", f"{tag}br", "up"]]
  for i in range(num_nodes):
    ns, host_end = f"{tag}n{i}", f"{tag}v{i}"
    cmds += [["ip", "netns", "add", ns],
             ["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns],
             ["ip", "link", "set", host_end, "master", f"{tag}br"],
             ["ip", "link", "set", host_end, "up"],
             ["tc", "qdisc", "add", "dev", host_end, "root", *tbf],  # into the node
             ["ip", "-n", ns, "link", "set", "lo", "up"],
             ["ip", "-n", ns, "addr", "add", f"{node_address(i)}/24", "dev", "eth0"],
             ["ip", "-n", ns, "link", "set", "eth0", "up"],
             ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root", *tbf]]
  return cmds


def _launch(cmds: Sequence[Sequence[str]], timeout: float) -> list[str]:
  """Starts every command at once and waits for all; returns their stdouts (see
  :func:`distributed.run_all`)."""
  return [r.stdout for r in distributed.run_all(cmds, timeout=timeout, env=_env())]


def _inside(num_nodes: int, rate: float, module: str, worker_args: Sequence[str], timeout: float,
            probe: bool) -> int:
  """Runs in the outer namespace: build the cluster, run one process per node, tear down."""
  import signal

  signal.signal(signal.SIGTERM, _term_as_exit)  # run the clean-up below when killed
  tag = f"jp{os.getpid() % 100000}"
  made = []
  try:
    for cmd in setup_commands(num_nodes, rate, tag):
      if cmd[:3] == ["ip", "netns", "add"]:
        made.append(cmd[3])
      r = subprocess.run(cmd, capture_output=True, text=True)
      if r.returncode:
        print(f"cluster set-up failed: {shlex.join(cmd)}: {r.stderr.strip()}", file=sys.stderr)
        return 2
    if probe:
      r = subprocess.run(["ip", "netns", "exec", made[-1], "ping", "-c", "1", "-W", "2",
                          node_address(0)], capture_output=True)
      return 0 if r.returncode == 0 or not shutil.which("ping") else 3
    coordinator = f"{node_address(0)}:{12355 + os.getpid() % 1000}"
    cmds = []
    for i in range(num_nodes):
      # gloo binds to the address its host name resolves to; in a private UTS namespace the
      # node's host name is its own IP literal, which resolves to itself.
      worker = distributed.worker_command(coordinator, num_nodes, i, worker_args, module)
      cmds.append(["ip", "netns", "exec", made[i], "unshare", "--uts", "sh", "-c",
                   f"hostname {node_address(i)} && exec {shlex.join(worker)}"])
    try:
      outs = _launch(cmds, timeout)
    except RuntimeError as e:
      print(str(e), file=sys.stderr)
      return 5
    print("CLUSTER " + json.dumps(outs), flush=True)
    return 0
  finally:
    for ns in made:
      subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def run(num_nodes: int, module: str, worker_args: Sequence[str], *,
        rate_bytes_per_s: float | None, timeout: float = 600.0) -> list[str]:
  """Runs ``python -m module`` once per node; returns each process's stdout.

  Every process gets ``--coordinator=HOST:PORT --num_processes --process_id`` before
  ``worker_args``. With ``rate_bytes_per_s=None`` the processes run on this host's loopback,
  unshaped (no namespaces needed); otherwise on the shaped emulated cluster.

  Raises:
    ValueError: bad ``num_nodes`` or ``rate_bytes_per_s``.
    RuntimeError: emulation unavailable here, or a process failed (with its stderr's tail).
  """
  if rate_bytes_per_s is None:
    setup_commands(num_nodes, 1.0, "chk")  # validates num_nodes
    coordinator = f"127.0.0.1:{distributed.free_port()}"
    return _launch([distributed.worker_command(coordinator, num_nodes, i, worker_args, module)
                    for i in range(num_nodes)], timeout)
  setup_commands(num_nodes, rate_bytes_per_s, "chk")  # validates the arguments
  if not available():
    raise RuntimeError("the emulated cluster needs 'unshare -n', 'ip netns', veth, a bridge and "
                       "'tc tbf' (root or user namespaces)")
  cmd = ["unshare", "-n", sys.executable, "-m", "jaxpapers.pipe_sgd.cluster",
         f"--num_nodes={num_nodes}", f"--rate_bytes_per_s={rate_bytes_per_s!r}",
         f"--module={module}", f"--timeout={timeout}", "--", *worker_args]
  with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=_env(), preexec_fn=distributed.die_with_parent) as proc:
    try:
      out, err = proc.communicate(timeout=timeout + 60)
    except BaseException:
      proc.terminate()  # the namespace process tears the cluster down on SIGTERM
      proc.communicate(timeout=30)
      raise
  r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
  if r.returncode != 0:
    raise RuntimeError(f"cluster run failed ({r.returncode}):\n{r.stderr[-3000:]}")
  for line in r.stdout.splitlines():
    if line.startswith("CLUSTER "):
      return json.loads(line[len("CLUSTER "):])
  raise RuntimeError(f"cluster run printed no CLUSTER line:\n{r.stdout[-2000:]}")


def main(argv: Sequence[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--num_nodes", type=int, required=True)
  ap.add_argument("--rate_bytes_per_s", type=float, required=True)
  ap.add_argument("--module", default="jaxpapers.pipe_sgd.race")
  ap.add_argument("--timeout", type=float, default=600.0)
  ap.add_argument("--probe", action="store_true", help="set up, ping node 0, tear down")
  ap.add_argument("worker_args", nargs="*")
  a = ap.parse_args(argv)
  return _inside(a.num_nodes, a.rate_bytes_per_s, a.module, a.worker_args, a.timeout, a.probe)


if __name__ == "__main__":
  sys.exit(main())
