"""Test configuration: 8 fake CPU devices for pmap/shard_map tests (float64 is enabled per test with `jax.enable_x64`)."""

import os
import tempfile

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# A persistent compilation cache shared by the test workers and the subprocesses they start is
# opt-in (JAXPAPERS_TEST_CACHE=1): two test workers segfaulted inside XLA:CPU while reading or
# writing it (jax 0.10.2, long-lived xdist workers), which a CI run must not depend on.
if os.environ.get("JAXPAPERS_TEST_CACHE") == "1":
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                        os.path.join(tempfile.gettempdir(), f"jaxpapers-test-cache-{os.getuid()}"))

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_platforms", "cpu")


import gc  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_executables():
  """Drop every module's compiled executables when it ends.

  Each XLA:CPU executable keeps its own memory mappings; an xdist worker that runs half of the suite
  without releasing them grows by ~1,500 mappings per test module (measured with /proc/self/maps)
  and passes Linux's default ``vm.max_map_count`` (65,530) near the end of the run, where the next
  compile segfaults -- the XLA crashes seen in CI in the last (volume_sampling) modules.
  """
  yield
  jax.clear_caches()
  gc.collect()


@pytest.fixture(scope="module")
def x64():
  """float64 for every test of a module that asks for it (``pytestmark = usefixtures("x64")``)."""
  old = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", old)
