"""Verdicts of the registered Table-1 rows (Tran, Li & Mądry 2018): hand-built cells."""

import pytest

from jaxpapers.spectral_signatures import reproductions as rep


def _cell(caught, pois1, pois2, num_poisons=10, raw_caught=()):
  return {"num_poisons": num_poisons, "caught": list(caught), "pois1": list(pois1),
          "pois2": list(pois2), "raw_caught": list(raw_caught)}


@pytest.mark.parametrize("cell, verdict", [
    # Attack not learned (mean ASR before 0.5 < 0.8): nothing is tested, whatever was caught.
    (_cell([10, 10, 10], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]), "inconclusive"),
    (_cell([0, 0, 0], [0.7, 0.8, 0.8], [0.7, 0.8, 0.8]), "inconclusive"),
    # All caught, backdoor gone: recall 1.0 ≥ 0.9 and ASR after 0.01 ≤ 0.05.
    (_cell([10, 10, 10], [0.95, 1.0, 0.9], [0.0, 0.02, 0.01]), "pass"),
    # Mean recall 0.9 exactly reaches the claim.
    (_cell([9, 9, 9], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]), "pass"),
    # Recall 0.2, 0.3, 0.1: mean 0.2, se 0.0577, t(2)=4.303 → high 0.448 < 0.9: fail.
    (_cell([2, 3, 1], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]), "fail"),
    # All caught but the backdoor survives retraining (ASR after 0.9 everywhere): fail.
    (_cell([10, 10, 10], [1.0, 1.0, 1.0], [0.9, 0.9, 0.9]), "fail"),
    # Recall 1.0, 0.2, 1.0: mean 0.733 < 0.9, but the interval (high ≈ 1.88) reaches it.
    (_cell([10, 2, 10], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]), "inconclusive"),
    # Caught and removed, but the raw-pixel control catches 9.33/10 ≥ 0.9 too: the cell does not
    # test a learned signature.
    (_cell([10, 10, 10], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], raw_caught=[10, 9, 9]),
     "inconclusive"),
    # The control misses most (mean 0.2): a learned signature, pass.
    (_cell([10, 10, 10], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], raw_caught=[2, 2, 2]), "pass"),
    # One seed: the interval is unbounded, so a miss cannot be called a fail.
    (_cell([5], [1.0], [0.0]), "inconclusive"),
])
def test_cell_verdict(cell, verdict):
  assert rep.cell_verdict(cell) == verdict


def test_rows_verdict_ignores_unlearned_cells_and_fails_on_any_failure():
  good = _cell([10, 10, 10], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
  unlearned = _cell([0, 0, 0], [0.3, 0.3, 0.3], [0.3, 0.3, 0.3])
  bad = _cell([1, 1, 1], [1.0, 1.0, 1.0], [0.9, 0.9, 0.9])
  unsure = _cell([10, 2, 10], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
  assert rep.rows_verdict({"a": good, "b": unlearned}) == "pass"
  assert rep.rows_verdict({"b": unlearned}) == "inconclusive"
  assert rep.rows_verdict({"a": good, "c": bad}) == "fail"
  assert rep.rows_verdict({"a": good, "d": unsure}) == "inconclusive"


def test_cifar_verdict_is_gated_on_the_attack_being_learned():
  measured = {"pois1": 0.3, "pois2": 0.0, "caught_fraction": 1.0}
  assert rep.check_cifar(measured, "cpu") == "inconclusive"
  assert rep.check_cifar({**measured, "pois1": 0.95}, "cpu") == "pass"
  assert rep.check_cifar({**measured, "pois1": 0.95, "caught_fraction": 0.5}, "cpu") == "fail"
  assert rep.check_cifar({**measured, "pois1": 0.95, "pois2": 0.5}, "cpu") == "fail"
