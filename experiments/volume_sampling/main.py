"""Loss ratio vs sample size for (leveraged) volume, i.i.d. leverage and uniform sampling.

  python experiments/volume_sampling/main.py \\
      --config=experiments/volume_sampling/configs/default.py:cpu --workdir=/tmp/volume_sampling
"""

from absl import app, flags, logging
from ml_collections import config_flags

from jaxpapers.volume_sampling import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment configuration.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (metrics, results, plot).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  for name, res in list(results["datasets"].items()) + [("lower_bound", results["lower_bound"])]:
    for method, curve in res["curves"].items():
      cells = ", ".join(f"k={k}: {s['mean']:.3g} (med {s['median']:.3g})" for k, s in curve.items())
      logging.info("%s n=%d d=%d %s: %s", name, res["n"], res["d"], method, cells)
      print(f"{name} {method}: {cells}", flush=True)
  print(f"done in {results['seconds']:.1f} s; outputs in {_WORKDIR.value}", flush=True)


if __name__ == "__main__":
  app.run(main)
