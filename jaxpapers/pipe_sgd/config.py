"""Configurations of the Pipe-SGD comparison (Li et al., NeurIPS 2018, Sec. 5).

``smoke`` (seconds), ``cpu`` (minutes on 2 cores) and ``full`` (the paper's setting: a 4-node
GPU cluster, MNIST/CIFAR-10 models, run with ``distributed.py`` on real hosts) differ only in
size. The timing model's network describes the cluster the wall-clock is predicted for.
"""

from __future__ import annotations

import math

import ml_collections

from jaxpapers._src.validation import check_in

METHODS = ("ps_sync", "ps_async", "allreduce_sync", "pipe", "pipe_compressed")


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """Returns the experiment configuration at ``scale`` in ``("smoke", "cpu", "full")``."""
  if scale == "quick":  # one run of the cpu setting; the quick reproduction tier picks its rows
    return get_config("cpu")
  check_in(scale, "scale", ("smoke", "cpu", "full"))
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.seed = 0
  c.dataset = "digits"            # digits | mnist | cifar10 | cifar10_jpeg
  c.data_dir = ""                 # folder for mnist / cifar10 ("" = find_dataset)
  c.model = "mlp"                 # mlp | cnn
  c.hidden = (64,)
  c.channels = (8, 16)
  c.num_workers = 4               # p: devices of the data-parallel mesh (the paper: 4 nodes)
  c.batch_size = 64               # global batch (divided among the workers)
  c.learning_rate = 0.3
  c.width = 2                     # Pipe-SGD's pipeline width K
  c.compressor = "truncate16"     # for the "pipe_compressed" method
  c.methods = METHODS
  c.num_steps = 300
  c.eval_every = 25
  c.target_accuracy = 0.9
  # Timing model of the cluster the wall-clock is predicted for (α-β-γ, Sec. 3).
  c.timing = ml_collections.ConfigDict()
  c.timing.latency_s = 50e-6
  c.timing.bandwidth_bytes_per_s = 1e9 / 8   # 1 Gbit/s Ethernet
  c.timing.gamma = 1e-10                     # s per reduced element
  c.timing.zeta = 1e-10                      # s per element to (de)compress
  c.timing.t_comp = -1.0                     # < 0: measure the local gradient time here
  c.timing.t_up = -1.0                       # < 0: measure the update time here
  c.timing.model_size = -1                   # < 0: the model's parameter count
  # The measured race (race.py): every method as real processes on an emulated cluster, one
  # shaped full-duplex link per node (cluster.py); wall-clock to the target measured, not modelled.
  c.race = ml_collections.ConfigDict()
  c.race.seed = 0
  c.race.dataset = "digits"           # digits | cifar10_jpeg (../shared/data)
  c.race.max_per_class = 1000         # cifar10_jpeg: training images per class (test: 1/5)
  c.race.model = "mlp"                # mlp | cnn
  c.race.channels = (8, 16)           # cnn
  c.race.num_workers = 4
  c.race.hidden = (256, 256)
  c.race.batch_size = 256             # global (64 per worker)
  c.race.learning_rate = 0.3
  c.race.num_steps = 300
  c.race.snapshot_every = 1
  c.race.target_accuracy = 0.95
  c.race.width = 2
  c.race.compressor = "truncate16"
  c.race.rate_bytes_per_s = 125e6     # 1 Gbit/s per node; <= 0: unshaped loopback
  c.race.latency_s = 50e-6            # the model's α beside the measurement
  c.race.reruns = 2                   # per seed (the row's seeds change data order and init)
  if scale == "smoke":
    c.race.num_workers = 2
    c.race.hidden = (32,)
    c.race.batch_size = 32
    c.race.num_steps = 40
    c.race.target_accuracy = 0.8
    c.race.rate_bytes_per_s = 0.0     # unshaped: runs wherever processes can talk on loopback
    c.race.reruns = 1
  # The same race where compute and communication take similar times, as on the paper's GPU
  # cluster: a CNN on CIFAR-10 (about 25–30 ms of compute per step here) behind 80 Mbit/s links.
  c.race_cifar = ml_collections.ConfigDict(c.race.to_dict())
  c.race_cifar.update(dataset="cifar10_jpeg", max_per_class=500, model="cnn", hidden=(64,),
                      learning_rate=0.05, target_accuracy=0.35, rate_bytes_per_s=10e6)
  if scale == "smoke":
    c.race_cifar.update(max_per_class=20, num_steps=10, target_accuracy=0.0,
                        rate_bytes_per_s=0.0)
    c.hidden = (32,)
    c.num_workers = 2
    c.batch_size = 32
    c.num_steps = 80
    c.eval_every = 20
    c.target_accuracy = 0.8
  elif scale == "cpu":
    c.eval_every = 10
  elif scale == "full":
    c.dataset = "mnist"
    c.model = "cnn"
    c.channels = (32, 64)
    c.hidden = (512,)
    c.batch_size = 512
    c.learning_rate = 0.05
    c.num_steps = 10_000
    c.eval_every = 250
    c.target_accuracy = 0.98
    c.timing.bandwidth_bytes_per_s = 10e9 / 8  # 10 Gbit/s
  return c


def _int_at_least(cfg, name: str, low: int):
  v = cfg[name]
  if isinstance(v, bool) or not isinstance(v, int) or v < low:
    raise ValueError(f"config.{name} must be an integer >= {low}, got {v!r}")


def _finite(v, name: str, *, low: float = 0.0, strict: bool = False):
  if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
      v <= low if strict else v < low):
    raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, got {v!r}")


def validate_config(cfg: ml_collections.ConfigDict):
  """Checks an experiment config; raises ``ValueError`` naming the first bad field."""
  if not cfg.methods:
    raise ValueError("config.methods must name at least one method")
  for m in cfg.methods:
    check_in(m, "config.methods", METHODS)
  check_in(cfg.compressor, "config.compressor", ("none", "truncate16", "quantize8"))
  check_in(cfg.model, "config.model", ("mlp", "cnn"))
  for name in ("num_workers", "batch_size", "width", "num_steps", "eval_every"):
    _int_at_least(cfg, name, 1)
  if cfg.batch_size % cfg.num_workers:
    raise ValueError(f"config.batch_size {cfg.batch_size} is not divisible by the device count "
                     f"config.num_workers={cfg.num_workers}")
  _finite(cfg.learning_rate, "config.learning_rate", strict=True)
  if not 0.0 <= cfg.target_accuracy <= 1.0:
    raise ValueError(f"config.target_accuracy must be in [0, 1], got {cfg.target_accuracy}")
  _finite(cfg.timing.latency_s, "config.timing.latency_s")
  _finite(cfg.timing.bandwidth_bytes_per_s, "config.timing.bandwidth_bytes_per_s", strict=True)
  _finite(cfg.timing.gamma, "config.timing.gamma")
  _finite(cfg.timing.zeta, "config.timing.zeta")
  for block in ("race", "race_cifar"):
    if block not in cfg:
      continue
    rc = cfg[block]
    _int_at_least(rc, "reruns", 1)
    _int_at_least(rc, "max_per_class", 1)
    check_in(rc.dataset, f"config.{block}.dataset", ("digits", "cifar10_jpeg"))
    _finite(rc.rate_bytes_per_s, f"config.{block}.rate_bytes_per_s")
    _finite(rc.latency_s, f"config.{block}.latency_s")
    from jaxpapers.pipe_sgd import race  # validates the rest, naming the setting

    race.settings_from_config(rc)
  return cfg
