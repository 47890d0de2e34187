"""Test configuration: 8 fake CPU devices for pmap/shard_map tests (float64 is enabled per test with `jax.enable_x64`)."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_platforms", "cpu")
