r"""The accuracy suite's cases under each gradient estimator, side by side.

The registered row ``accuracy_suite`` judges the defaults; this binary answers "would another
estimator pass?" on the same cases, probe keys and float64 Cholesky references:

  python experiments/bbmm/estimators.py --scale=cpu --max_n=5000 \
      --estimators=standard,variance_reduced,control_variate --out=/tmp/estimators.json

Per case and estimator it prints the mean and max single-draw gradient error, the mean MLL error
and the median seconds of one compiled MLL + gradient (all from
:func:`jaxpapers.bbmm.accuracy.run_case`), and the number of cases meeting issue 24's targets.
"""

from __future__ import annotations

from absl import app, flags

from jaxpapers._src import fileio
from jaxpapers.bbmm import accuracy, likelihood, reproductions

_SCALE = flags.DEFINE_enum("scale", "quick", ["smoke", "quick", "cpu", "full"], "suite tier")
_MAX_N = flags.DEFINE_integer("max_n", 0, "skip cases with n above this (0: none skipped)")
_ESTIMATORS = flags.DEFINE_list("estimators", list(likelihood.GRAD_ESTIMATORS),
                                "gradient estimators to compare")
_DRAWS = flags.DEFINE_integer("draws", 8, "probe draws per case")
_SEED = flags.DEFINE_integer("seed", 0, "data seed")
_OUT = flags.DEFINE_string("out", "", "write the per-case records as JSON here")


def main(argv):
  del argv
  for est in _ESTIMATORS.value:
    likelihood.check_settings(likelihood.Settings(grad_estimator=est), f"--estimators ({est})")
  cases = [c for c in reproductions.suite_cases(_SCALE.value)
           if not _MAX_N.value or c.n <= _MAX_N.value]
  records, passing = [], {e: 0 for e in _ESTIMATORS.value}
  print(f"{'case':42s} {'estimator':17s} {'grad mean':>9s} {'grad max':>9s} {'MLL mean':>9s} "
        f"{'s':>6s}")
  for case in cases:
    x, y, ls = accuracy.case_data(case, _SEED.value)
    ref = accuracy.reference(case, x, y, ls)
    for est in _ESTIMATORS.value:
      rec = accuracy.run_case(case, _SEED.value, draws=_DRAWS.value,
                              settings=likelihood.Settings(grad_estimator=est), ref=ref)
      ok = (rec["mll_err_mean"] <= reproductions.SUITE_MLL_TOL
            and rec["grad_err_mean"] <= reproductions.SUITE_GRAD_TOL)
      passing[est] += ok
      records.append({**rec, "estimator": est, "passes": ok})
      name = f"{case.dataset} n={case.n} {case.kernel} σ²={case.noise:g}"
      print(f"{name:42s} {est:17s} {100 * rec['grad_err_mean']:8.2f}% "
            f"{100 * rec['grad_err_max']:8.2f}% {100 * rec['mll_err_mean']:8.3f}% "
            f"{rec['seconds']:6.2f}", flush=True)
  for est, k in passing.items():
    print(f"{est}: {k}/{len(cases)} cases meet mean MLL ≤ 0.5 % and mean gradient ≤ 1 %")
  if _OUT.value:
    fileio.write_json_atomic(_OUT.value, {"scale": _SCALE.value, "max_n": _MAX_N.value,
                                          "draws": _DRAWS.value, "records": records})


if __name__ == "__main__":
  app.run(main)
