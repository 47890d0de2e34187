r"""The accuracy suite's cases under each gradient estimator, side by side.

The registered row ``accuracy_suite`` judges the defaults; this binary answers "would another
estimator pass?" on the same cases, probe keys and float64 Cholesky references:

  python experiments/bbmm/estimators.py --scale=cpu --max_n=5000 \
      --estimators=standard,variance_reduced,control_variate --out=/tmp/estimators.json

Per case and estimator it prints the mean and max single-draw gradient error, the mean MLL error
and the median seconds of one compiled MLL + gradient (all from
:func:`jaxpapers.bbmm.accuracy.run_case`), and the number of cases meeting issue 24's targets.
For ``standard`` and ``control_variate`` it also prints the gradient's relative standard error as
its own probes estimate it (:func:`jaxpapers.bbmm.gradient_spread`, at the first draw's key) and
the probe count that would bring it to 1 %: what an adaptive probe count would have to spend.

``--terms_only`` prints, per case, the float64 reference gradient's two terms (data fit and log
det) and their cancellation ``‖∇ ½log|K̂|‖ / ‖∇‖`` instead (no BBMM runs):

  python experiments/bbmm/estimators.py --scale=cpu --max_n=5000 --terms_only \
      --out=results/experiments/bbmm_gradient_terms_cpu.json

``--auto`` runs the suite's cases as the row ``accuracy_suite_auto`` does (what ``method="auto"``
chooses, at its adapted probe count) at another data ``--seed``: the rule's margin on data the
registered row never sees:

  python experiments/bbmm/estimators.py --scale=cpu --auto --seed=1 \
      --out=results/experiments/bbmm_auto_seed1_cpu.json
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxpapers._src import fileio
from jaxpapers.bbmm import accuracy, likelihood, reproductions
from jaxpapers.bbmm import operators as ops

_SCALE = flags.DEFINE_enum("scale", "quick", ["smoke", "quick", "cpu", "full"], "suite tier")
_MAX_N = flags.DEFINE_integer("max_n", 0, "skip cases with n above this (0: none skipped)")
_ESTIMATORS = flags.DEFINE_list("estimators", list(likelihood.GRAD_ESTIMATORS),
                                "gradient estimators to compare")
_DRAWS = flags.DEFINE_integer("draws", 8, "probe draws per case")
_SEED = flags.DEFINE_integer("seed", 0, "data seed")
_OUT = flags.DEFINE_string("out", "", "write the per-case records as JSON here")
_TERMS_ONLY = flags.DEFINE_bool(
    "terms_only", False, "print only the float64 reference's gradient terms per case: the "
    "data-fit and log-det parts and their cancellation (no BBMM runs)")
_AUTO = flags.DEFINE_bool("auto", False, "run each case as method='auto' chooses it (default "
                          "settings; the accuracy_suite_auto row's protocol) instead")


def _spread(case, settings, x, y, ls):
  """The relative standard error the probes imply (``bbmm.gradient_spread``) at draw 0's key, and
  the probe count that would bring it to 1 % (it falls as ``t^-½``)."""
  p = accuracy.case_params(case, ls, jnp.float32)
  op = ops.ExactOperator(case.kernel, materialize=True)
  spread = likelihood.gradient_spread(jax.random.fold_in(jax.random.key(_SEED.value), 0), op, p,
                                      jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                                      settings, zero_mean=True)
  return {"rel_std_error": float(spread.rel_std_error),
          "probes_for_1pct": spread.probes_for(0.01)}


def _print_terms(cases):
  """Per case ``‖∇‖``, ``‖∇ fit‖``, ``‖∇ ½log|K̂|‖`` and ``cancellation`` (``accuracy.reference``):
  a relative error ``e`` of the probes' trace estimate is an error of ``cancellation · e`` in the
  gradient."""
  records = []
  print(f"{'case':42s} {'‖∇‖':>9s} {'‖∇ fit‖':>9s} {'‖∇ logdet‖':>11s} {'cancellation':>12s}")
  for case in cases:
    x, y, ls = accuracy.case_data(case, _SEED.value)
    ref = accuracy.reference(case, x, y, ls)
    norms = [float(np.linalg.norm(ref[k])) for k in ("grad", "grad_fit", "grad_logdet")]
    name = f"{case.dataset} n={case.n} {case.kernel} σ²={case.noise:g}"
    print(f"{name:42s} {norms[0]:9.1f} {norms[1]:9.1f} {norms[2]:11.1f} "
          f"{ref['cancellation']:12.2f}", flush=True)
    records.append({"dataset": case.dataset, "n": case.n, "kernel": case.kernel,
                    "noise": case.noise, "grad_norm": norms[0], "fit_norm": norms[1],
                    "logdet_norm": norms[2], "cancellation": ref["cancellation"]})
  if _OUT.value:
    fileio.write_json_atomic(_OUT.value, {"scale": _SCALE.value, "max_n": _MAX_N.value,
                                          "seed": _SEED.value, "terms": records})


def _run_auto(cases):
  """Each case as ``method="auto"`` runs it at ``--seed``: the choice, the errors, the time."""
  records = []
  for case in cases:
    rec = accuracy.run_case(case, _SEED.value, draws=_DRAWS.value, method="auto")
    rec["passes"] = reproductions.case_passes(rec)
    records.append(rec)
    name = f"{case.dataset} n={case.n} {case.kernel} σ²={case.noise:g}"
    print(f"{name:42s} {rec['method']:8s} probes {rec['num_probes']:5d} MLL "
          f"{100 * rec['mll_err_mean']:6.3f}% gradient {100 * rec['grad_err_mean']:6.2f}% "
          f"{rec['seconds']:6.2f} s (Cholesky {rec['cholesky_seconds']:6.2f} s) "
          f"{'ok' if rec['passes'] else 'MISSED'}", flush=True)
    if _OUT.value:  # after every case: an interrupted run keeps what it measured
      fileio.write_json_atomic(_OUT.value, {"scale": _SCALE.value, "max_n": _MAX_N.value,
                                            "seed": _SEED.value, "draws": _DRAWS.value,
                                            "method": "auto", "records": records})
  print(f"auto: {sum(r['passes'] for r in records)}/{len(records)} cases meet mean MLL ≤ 0.5 % "
        f"and mean gradient ≤ 1 % at seed {_SEED.value}")


def main(argv):
  del argv
  for est in _ESTIMATORS.value:
    likelihood.check_settings(likelihood.Settings(grad_estimator=est), f"--estimators ({est})")
  cases = [c for c in reproductions.suite_cases(_SCALE.value)
           if not _MAX_N.value or c.n <= _MAX_N.value]
  if _TERMS_ONLY.value:
    _print_terms(cases)
    return
  if _AUTO.value:
    _run_auto(cases)
    return
  records, passing = [], {e: 0 for e in _ESTIMATORS.value}
  print(f"{'case':42s} {'estimator':17s} {'grad mean':>9s} {'grad max':>9s} {'MLL mean':>9s} "
        f"{'s':>6s} {'self SE':>8s} {'t for 1%':>8s}")
  for case in cases:
    x, y, ls = accuracy.case_data(case, _SEED.value)
    ref = accuracy.reference(case, x, y, ls)
    for est in _ESTIMATORS.value:
      settings = likelihood.Settings(grad_estimator=est)
      rec = accuracy.run_case(case, _SEED.value, draws=_DRAWS.value, settings=settings, ref=ref)
      if est != "variance_reduced":  # the estimator's own variance, at the first draw's key
        rec.update(_spread(case, settings, x, y, ls))
      ok = reproductions.case_passes(rec)
      passing[est] += ok
      records.append({**rec, "estimator": est, "passes": ok})
      name = f"{case.dataset} n={case.n} {case.kernel} σ²={case.noise:g}"
      spread = (f" {100 * rec['rel_std_error']:7.2f}% {rec['probes_for_1pct']:8d}"
                if "rel_std_error" in rec else "")
      print(f"{name:42s} {est:17s} {100 * rec['grad_err_mean']:8.2f}% "
            f"{100 * rec['grad_err_max']:8.2f}% {100 * rec['mll_err_mean']:8.3f}% "
            f"{rec['seconds']:6.2f}{spread}", flush=True)
  for est, k in passing.items():
    print(f"{est}: {k}/{len(cases)} cases meet mean MLL ≤ 0.5 % and mean gradient ≤ 1 %")
  if _OUT.value:
    fileio.write_json_atomic(_OUT.value, {"scale": _SCALE.value, "max_n": _MAX_N.value,
                                          "draws": _DRAWS.value, "records": records})


if __name__ == "__main__":
  app.run(main)
