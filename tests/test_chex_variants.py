"""chex variants: public pure functions give the same values jitted and eager, on the default
device and from host arrays (chex.variants), checked against hand-derived values."""

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from jaxpapers.dmgan import core as dmgan_core
from jaxpapers.pipe_sgd import compression


class VariantsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True, with_device=True, without_device=True)
  def test_entropy_weight_is_the_reference_counter(self):
    weight = self.variant(dmgan_core.entropy_weight)
    steps = np.arange(4, dtype=np.int32)
    # the reference multiplies its counter (initialised to 1) by 0.999 before each prior loss
    np.testing.assert_allclose(weight(steps), 1000.0 * 0.999 ** (steps + 1.0), rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True, with_device=True, without_device=True)
  def test_prior_entropy_of_a_uniform_prior_is_log_n(self):
    entropy = self.variant(dmgan_core.prior_entropy)
    np.testing.assert_allclose(entropy(np.zeros(10, np.float32)), np.log(10.0), rtol=1e-6)
    np.testing.assert_allclose(entropy(np.array([0.0, -1e4], np.float32)), 0.0, atol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_truncate16_round_trip_keeps_the_high_bits(self):
    x = jnp.asarray([1.0, -2.5, 3.14159265, 1e-3], jnp.float32)
    roundtrip = self.variant(lambda v: compression.truncate16_decode(compression.truncate16_encode(v)))
    out = np.asarray(roundtrip(x))
    bits = np.asarray(x).view(np.uint32) & np.uint32(0xFFFF0000)
    np.testing.assert_array_equal(out.view(np.uint32), bits)


if __name__ == "__main__":
  absltest.main()
