"""JAX-native environments (gymnax) for the meta-gradient learner.

gymnax 1.0's ``step`` returns ``(obs, state, reward, terminated, truncated, info)`` and auto-resets;
``info["final_observation"]`` is the observation before the reset, used to bootstrap on truncation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnax

from jaxpapers._src.validation import check_in

ENVS = (
    "Breakout-MinAtar",
    "Asterix-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
    "CartPole-v1",
    "DiscountingChain-bsuite",
)

# The network torso that suits each environment's observation.
TORSO = {name: ("conv" if name.endswith("MinAtar") else "mlp") for name in ENVS}

# bsuite DiscountingChain: with the default mapping seed the best arm pays at step 1 and γ is
# irrelevant; with mapping_seed=4 the best arm pays late, so the optimum needs γ > ~0.999.
ENV_KWARGS = {"DiscountingChain-bsuite": {"mapping_seed": 4}}


class EnvSpec(NamedTuple):
  """An environment, its params, and what the agent needs to know about it."""

  env: Any
  params: Any
  name: str
  num_actions: int
  obs_shape: tuple
  torso: str


def make_env(name: str) -> EnvSpec:
  """Creates a supported gymnax environment.

  Args:
    name: one of :data:`ENVS`.

  Raises:
    ValueError: for an unknown environment name.
  """
  check_in(name, "env_name", ENVS)
  env, params = gymnax.make(name, **ENV_KWARGS.get(name, {}))
  space = env.observation_space(params)
  return EnvSpec(env, params, name, int(env.num_actions), tuple(space.shape), TORSO[name])
