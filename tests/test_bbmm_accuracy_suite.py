"""The accuracy suite's case runner: errors against a hand-checkable reference."""

import numpy as np
import pytest

from jaxpapers.bbmm import accuracy


def test_reference_matches_scipy_and_finite_differences():
  case = accuracy.Case("synthetic", 120, "matern52", 0.05)
  x, y, ls = accuracy.case_data(case, 0)
  ref = accuracy.reference(case, x, y, ls)
  # Value: an independent float64 Matérn-5/2 with the same ARD lengthscales.
  r = np.sqrt(np.sum(((x[:, None, :] - x[None, :, :]) / ls) ** 2, -1))
  k = (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r) + 0.05 * np.eye(120)
  sign, logdet = np.linalg.slogdet(k)
  mll = -0.5 * y @ np.linalg.solve(k, y) - 0.5 * logdet - 60 * np.log(2 * np.pi)
  assert sign > 0
  np.testing.assert_allclose(ref["mll"], mll, rtol=1e-10)
  np.testing.assert_allclose(ref["logdet"], logdet, rtol=1e-10)
  # Gradient w.r.t. log σ² by a central difference of the same closed form.
  def f(log_noise):
    kk = k - 0.05 * np.eye(120) + np.exp(log_noise) * np.eye(120)
    return -0.5 * y @ np.linalg.solve(kk, y) - 0.5 * np.linalg.slogdet(kk)[1]
  h = 1e-5
  fd = (f(np.log(0.05) + h) - f(np.log(0.05) - h)) / (2 * h)
  np.testing.assert_allclose(ref["grad"][-1], fd, rtol=1e-6)
  assert ref["grad"].shape == (8 + 2,)
  # The two terms w.r.t. log σ² in closed form: ½ σ² αᵀα (data fit) and −½ σ² tr(K̂⁻¹).
  alpha = np.linalg.solve(k, y)
  np.testing.assert_allclose(ref["grad_fit"][-1], 0.5 * 0.05 * alpha @ alpha, rtol=1e-8)
  np.testing.assert_allclose(ref["grad_logdet"][-1], -0.5 * 0.05 * np.trace(np.linalg.inv(k)),
                             rtol=1e-8)
  np.testing.assert_allclose(ref["cancellation"],
                             np.linalg.norm(ref["grad_logdet"]) / np.linalg.norm(ref["grad"]))


def test_run_case_reports_per_draw_errors_and_an_exact_preconditioner_value():
  # n = 200 ≤ the default preconditioner rank: the MLL value is exact up to float32, while the
  # standard gradient estimator still has probe noise (what the suite measures per draw).
  case = accuracy.Case("synthetic", 200, "rbf", 0.01)
  out = accuracy.run_case(case, 0, draws=3)
  assert len(out["mll_err"]) == len(out["grad_err"]) == 3
  assert out["mll_err_max"] < 1e-4
  assert out["grad_err_mean"] == pytest.approx(np.mean(out["grad_err"]))
  assert 0 < out["grad_err_mean"] < 0.5
  with pytest.raises(ValueError, match="draws must be a positive int"):
    accuracy.run_case(case, 0, draws=0)
  with pytest.raises(ValueError, match="case.kernel must be one of"):
    accuracy.case_data(accuracy.Case("synthetic", 50, "cosine", 0.1), 0)



def test_run_case_auto_records_the_choice_and_runs_it():
  # n = 200 ≤ cholesky_size: "auto" is the float32 Cholesky, evaluated once (deterministic),
  # within float32 rounding of the float64 reference in value and gradient.
  case = accuracy.Case("synthetic", 200, "rbf", 0.01)
  out = accuracy.run_case(case, 0, draws=3, method="auto")
  assert (out["method"], out["reason"]) == ("cholesky", "n <= cholesky_size")
  assert len(out["mll_err"]) == 1 and out["cg_iters"] == [0]
  assert out["mll_err_max"] < 1e-4 and out["grad_err_max"] < 1e-3
  with pytest.raises(ValueError, match="method must be one of"):
    accuracy.run_case(case, 0, method="cholesky")
