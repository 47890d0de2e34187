"""BBMM beside GPyTorch (bbmm.compare): scoring, interleaving, the equal-accuracy rule, our steps."""

import math

import numpy as np
import pytest

from jaxpapers.bbmm import accuracy, compare, likelihood


def _row(mll, grad, cpu, wall=None):
  return {"mll_err_mean": mll, "mll_err_max": mll, "grad_err_mean": grad, "grad_err_max": grad,
          "cpu_s": cpu, "wall_s": cpu if wall is None else wall, "draws": 8}


def test_equal_accuracy_picks_the_fastest_rival_at_least_as_accurate():
  summary = {"ours-bbmm": _row(3e-3, 2e-2, 1.0),
             "ours-cholesky32": _row(1e-6, 1e-6, 0.1),        # ours: never a rival
             "gpytorch-defaults": _row(2e-2, 1e-1, 0.2),      # faster but less accurate
             "gpytorch-tight": _row(1e-3, 3e-2, 0.5),         # MLL better, gradient worse
             "gpytorch-cholesky32": _row(2e-5, 1e-5, 4.0, 4.4),
             "gpytorch-cholesky64": _row(0.0, 0.0, 9.0)}
  eq = compare.equal_accuracy_speedups(summary)
  assert eq["rival"] == "gpytorch-cholesky32"
  assert eq["qualifying"] == ["gpytorch-cholesky32", "gpytorch-cholesky64"]
  assert eq["cpu_ratio"] == pytest.approx(4.0) and eq["wall_ratio"] == pytest.approx(4.4)


def test_equal_accuracy_treats_errors_below_the_floor_as_exact():
  # ours exact to rounding (1e-6) and a rival at 5e-6: both are float32 rounding, a tie
  summary = {"ours-bbmm": _row(1e-6, 1e-2, 1.0), "gpytorch-cholesky32": _row(5e-6, 1e-5, 0.5)}
  assert compare.equal_accuracy_speedups(summary)["rival"] == "gpytorch-cholesky32"
  strict = compare.equal_accuracy_speedups(summary, floor=0.0)
  assert strict["rival"] is None and math.isnan(strict["cpu_ratio"])
  with pytest.raises(ValueError, match="ours='mine' is not among"):
    compare.equal_accuracy_speedups(summary, ours="mine")


def test_interleaved_orders_calls_caps_exact_draws_and_scores_errors():
  ref = {"mll": -100.0, "grad": np.array([3.0, 4.0])}
  calls = []

  def step(name, value, grad):
    def fn(seed):
      calls.append((name, seed))
      return value, np.asarray(grad)
    return fn

  steps = {"a": step("a", -101.0, [3.0, 4.5]), "b": step("b", -100.0, [3.0, 4.0]),
           "c": step("c", float("nan"), [3.0, 4.0])}
  scores = compare.interleaved(steps, ref, draws=3, exact_draws={"b": 1})
  warm = [("a", 10_000), ("b", 10_000), ("c", 10_000)]
  assert calls == warm + [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1), ("a", 2), ("c", 2)]
  assert scores["a"].mll_err == pytest.approx([0.01] * 3)
  assert scores["a"].grad_err == pytest.approx([0.1] * 3)  # ‖(0, 0.5)‖ / ‖(3, 4)‖
  assert scores["b"].mll_err == [0.0] and len(scores["b"].cpu) == 1
  assert scores["c"].mll_err == [math.inf] * 3  # NaN in: never a finite error out
  summary = compare.summarise(scores)
  assert summary["a"]["draws"] == 3 and summary["b"]["draws"] == 1
  assert summary["c"]["mll_err_mean"] == math.inf
  with pytest.raises(ValueError, match="draws must be a positive int"):
    compare.interleaved(steps, ref, draws=0)
  with pytest.raises(ValueError, match=r"exact_draws\['b'\] must be a positive int"):
    compare.interleaved(steps, ref, draws=2, exact_draws={"b": 0})


@pytest.mark.parametrize("kernel", ["rbf", "matern52"])
def test_our_steps_agree_with_the_float64_reference(kernel):
  case = accuracy.Case("synthetic", 150, kernel, 0.05)
  x, y, ls = accuracy.case_data(case, 0)
  ref = accuracy.reference(case, x, y, ls)
  value, grad = compare.jax_step(case, x, y, ls, method="cholesky")(0)
  assert abs(value - ref["mll"]) / abs(ref["mll"]) < 1e-4  # float32 Cholesky: exact to rounding
  assert np.linalg.norm(grad - ref["grad"]) / np.linalg.norm(ref["grad"]) < 1e-3
  # BBMM with a preconditioner of rank ≥ n: the value is exact, the gradient stochastic
  settings = likelihood.Settings(precond_rank=200, num_probes=8)
  bvalue, bgrad = compare.jax_step(case, x, y, ls, method="bbmm", settings=settings)(1)
  assert abs(bvalue - ref["mll"]) / abs(ref["mll"]) < 1e-3
  assert np.linalg.norm(bgrad - ref["grad"]) / np.linalg.norm(ref["grad"]) < 0.5
  # The exact value with a probed gradient: the value is float32 Cholesky's.
  hvalue, hgrad = compare.jax_step(case, x, y, ls, method="cholesky_hutchinson",
                                   settings=settings)(2)
  assert hvalue == value
  assert np.linalg.norm(hgrad - ref["grad"]) / np.linalg.norm(ref["grad"]) < 0.5
  with pytest.raises(ValueError, match="method must be 'bbmm', 'cholesky', 'cholesky_hutchinson' "
                                       "or 'auto'"):
    compare.jax_step(case, x, y, ls, method="lu")


def test_ours_auto_runs_and_records_what_choose_method_picks():
  # n = 150 ≤ cholesky_size: "auto" is our float32 Cholesky, exact, and capped like one.
  case = accuracy.Case("synthetic", 150, "rbf", 0.05)
  res = compare.run(case, draws=3, exact_draws=2, configs=("ours-cholesky32", "ours-auto"))
  assert res["auto_choice"]["method"] == "cholesky"
  assert res["auto_choice"]["reason"] == "n <= cholesky_size"
  assert res["summary"]["ours-auto"]["draws"] == 2
  assert res["summary"]["ours-auto"]["mll_err_mean"] == res["summary"]["ours-cholesky32"][
      "mll_err_mean"]
  assert res["equal_accuracy_auto"]["rival"] is None  # ours-* are never rivals


def test_run_refuses_unknown_configurations_and_names_settings():
  with pytest.raises(ValueError, match="configs must be among"):
    compare.run(accuracy.Case("synthetic", 50, "rbf", 0.1), configs=("ours-bbmm", "gpflow"))
  named = compare.our_settings_for_gpytorch(likelihood.Settings(num_probes=12, precond_rank=64))
  assert named["num_trace_samples"] == 12 and named["max_preconditioner_size"] == 64
  assert "gpytorch-our-settings" not in compare.DEFAULT_CONFIGS


def test_format_table_lists_every_configuration_in_percent():
  res = {"case": {"dataset": "synthetic", "n": 100, "kernel": "rbf", "noise": 0.01},
         "summary": {"ours-bbmm": _row(0.004, 0.02, 0.25)}}
  table = compare.format_table([res])
  assert "| synthetic n=100 rbf σ²=0.01 | ours-bbmm | 0.250 | 0.250 | 0.4 / 0.4 % | 2 / 2 % |" \
      in table


def test_gpytorch_cholesky64_equals_the_reference():
  """Where torch + gpytorch are installed (the ``[compare]`` extra): GPyTorch's float64
  Cholesky gives the reference's value and log-hyperparameter gradient, so both libraries are
  scored on the same quantity."""
  pytest.importorskip("gpytorch")
  for kernel in ("rbf", "matern52"):
    case = accuracy.Case("synthetic", 120, kernel, 0.02)
    x, y, ls = accuracy.case_data(case, 1)
    ref = accuracy.reference(case, x, y, ls)
    value, grad = compare.gpytorch_step(case, x, y, ls, cholesky=True, dtype="float64")(0)
    assert value == pytest.approx(ref["mll"], rel=1e-10)
    np.testing.assert_allclose(grad, ref["grad"], rtol=1e-7, atol=1e-9)
  with pytest.raises(ValueError, match="settings names unknown to gpytorch.settings"):
    compare.gpytorch_step(case, x, y, ls, settings={"no_such_knob": 1})


def test_speedup_row_is_judged_against_the_papers_20x_only_on_a_gpu():
  from jaxpapers.bbmm import reproductions
  cpu = {"speedup": 1.6, "device": "cpu"}
  assert reproductions.check_speed(cpu, "cpu") == "inconclusive"      # 20× is not testable here
  assert reproductions.check_speed({**cpu, "speedup": 0.8}, "cpu") == "fail"  # slower: a finding
  assert reproductions.check_speed({**cpu, "speedup": 25.0}, "full") == "inconclusive"  # a CPU
  assert reproductions.check_speed({"speedup": 25.0, "device": "gpu"}, "full") == "pass"
  assert reproductions.check_speed({"speedup": 12.0, "device": "gpu"}, "full") == "fail"
  assert reproductions.check_speed({"speedup": float("nan"), "device": "cpu"}, "smoke") is False
  assert reproductions.check_speed({"speedup": float("nan"), "device": "cpu"}, "cpu") == "fail"
