r"""BBMM beside GPyTorch on the accuracy suite's cases: errors, CPU time, wall time, one run.

  pip install -e '.[compare]'        # torch (a CPU wheel is enough) and gpytorch
  python experiments/bbmm/compare_gpytorch.py \
      --cases=synthetic:5000:rbf:0.01,synthetic:5000:matern52:0.01,elevators:5000:rbf:0.01,\
synthetic:10000:rbf:0.01,synthetic:10000:matern52:0.01 --out=/tmp/bbmm_gpytorch.json

Per case it runs every configuration of :mod:`jaxpapers.bbmm.compare` (ours at defaults and our
Cholesky; GPyTorch at its defaults, at the settings its users pick for accuracy, and its float32
and float64 Cholesky; ``--configs`` adds GPyTorch at our settings), interleaving the draws, and
prints per configuration the mean / max MLL and single-draw gradient errors against float64
Cholesky, the median process CPU time and wall time of one MLL + gradient, and the speed-up of
ours over the fastest GPyTorch configuration that is at least as accurate (issue 24's claim:
≥ 3× at n = 5k and 10k).

Every library runs on **one core** (the process is pinned to one; ``XLA_FLAGS``, the BLAS thread
counts and ``torch.set_num_threads(1)`` keep their pools at one thread), so CPU
time measures work, not how many cores a library grabs; ``--multithread`` leaves both libraries
at their own thread counts (then compare wall times). The flag is read before JAX is imported.

Each finished case is written to ``--out`` at once (atomically); rerunning with the same flags
skips the cases already there, and a file written with other flags is refused.
"""

from __future__ import annotations

import os
import sys

MULTITHREAD = "--multithread" in sys.argv
if not MULTITHREAD:  # must precede the first JAX, NumPy and torch imports
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                             " intra_op_parallelism_threads=1").strip()
  # JAX's CPU Cholesky and triangular solves call SciPy's LAPACK (OpenBLAS), which has its own
  # thread pool: without these, "one thread" JAX ran on two (CPU time twice the wall time).
  for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"
  # XLA:CPU still runs thunks on a pool of its own that no flag limits (CPU time stayed above wall
  # time with the flags above), so the process is also pinned to one core.
  os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})

import json  # noqa: E402
import platform  # noqa: E402

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxpapers._src import fileio  # noqa: E402
from jaxpapers.bbmm import accuracy, compare  # noqa: E402

_CASES = flags.DEFINE_list(
    "cases", ["synthetic:5000:rbf:0.01", "synthetic:5000:matern52:0.01",
              "synthetic:10000:rbf:0.01", "synthetic:10000:matern52:0.01"],
    "cases as dataset:n:kernel:noise (dataset 'synthetic' or a UCI set of bbmm.data.UCI_FILES)")
_CONFIGS = flags.DEFINE_list("configs", list(compare.DEFAULT_CONFIGS),
                             f"configurations, among {', '.join(compare.CONFIGS)}")
_DRAWS = flags.DEFINE_integer("draws", 8, "probe draws per stochastic configuration")
_EXACT_DRAWS = flags.DEFINE_integer("exact_draws", 3, "timed draws per Cholesky configuration")
_SEED = flags.DEFINE_integer("seed", 0, "data seed")
_OUT = flags.DEFINE_string("out", "", "JSON record, rewritten after every case")
flags.DEFINE_bool("multithread", False, "let each library use every core (read before JAX loads)")


def parse_case(text: str) -> accuracy.Case:
  parts = text.split(":")
  if len(parts) != 4:
    raise ValueError(f"--cases entry {text!r} must be dataset:n:kernel:noise")
  dataset, n, kernel, noise = parts
  try:
    return accuracy.Case(dataset, int(n), kernel, float(noise))
  except ValueError as e:
    raise ValueError(f"--cases entry {text!r}: n must be an int and noise a float") from e


def main(argv):
  del argv
  gpytorch, torch = compare.require_gpytorch()
  if not MULTITHREAD:
    torch.set_num_threads(1)
  cases = [parse_case(c) for c in _CASES.value]
  header = {"configs": list(_CONFIGS.value), "draws": _DRAWS.value,
            "exact_draws": _EXACT_DRAWS.value, "seed": _SEED.value,
            "cores": "all" if MULTITHREAD else 1}
  record = {"header": header, "results": []}
  if _OUT.value and os.path.exists(_OUT.value):
    with open(_OUT.value) as f:
      old = json.load(f)
    if old.get("header") != header:
      raise SystemExit(f"{_OUT.value} holds a run with other flags ({old.get('header')}); "
                       f"this run's are {header}: pass another --out")
    record = old
  record["header_info"] = {"jax": jax.__version__, "torch": torch.__version__,
                           "gpytorch": gpytorch.__version__, "cpu": platform.processor() or
                           platform.machine(), "cores": os.cpu_count()}
  done = {json.dumps(r["case"], sort_keys=True) for r in record["results"]}
  print(f"pinned to one core: {not MULTITHREAD}; draws {_DRAWS.value} "
        f"(Cholesky timed on {_EXACT_DRAWS.value}); errors vs float64 Cholesky", flush=True)
  for case in cases:
    if json.dumps(case._asdict(), sort_keys=True) in done:
      print(f"{case}: already in {_OUT.value}, skipped")
      continue
    res = compare.run(case, seed=_SEED.value, draws=_DRAWS.value,
                      exact_draws=_EXACT_DRAWS.value, configs=tuple(_CONFIGS.value))
    record["results"].append(res)
    if _OUT.value:
      fileio.write_json_atomic(_OUT.value, record)
    print(compare.format_table([res]), flush=True)
    if "auto_choice" in res:
      c = res["auto_choice"]
      probes = c["hutchinson_probes"] if c["method"] == "cholesky_hutchinson" else c["num_probes"]
      print(f"  ours-auto ran {c['method']} ({c['reason']}; probes {probes})")
    for ours, key in (("ours-bbmm", "equal_accuracy"), ("ours-auto", "equal_accuracy_auto")):
      eq = res.get(key)
      if eq is None:
        continue
      if eq["rival"] is None:
        print(f"  no other configuration is as accurate as {ours} on both MLL and gradient")
      else:
        print(f"  fastest configuration at least as accurate as {ours}: {eq['rival']}, "
              f"{eq['cpu_ratio']:.2f}× our CPU time ({eq['wall_ratio']:.2f}× wall); "
              f"claim (issue 24): ≥ 3×", flush=True)
  print()
  print(compare.format_table(record["results"]))


if __name__ == "__main__":
  app.run(main)
