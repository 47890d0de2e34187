"""Meta-gradient reinforcement learning: online meta-learned discount γ and bootstrapping λ.

Xu, van Hasselt & Silver, "Meta-Gradient Reinforcement Learning", NeurIPS 2018
(arXiv:1805.09801). An IMPALA/V-trace actor-critic whose return's ``η = (γ, λ)`` is adapted by
differentiating a validation objective on the next trajectory through one learner update.
"""

from jaxpapers.meta_gradient import config as config
from jaxpapers.meta_gradient.atari import AtariEnv as AtariEnv
from jaxpapers.meta_gradient.atari import max_pool_and_resize as max_pool_and_resize
from jaxpapers.meta_gradient.atari import train_and_evaluate_atari as train_and_evaluate_atari
from jaxpapers.meta_gradient.core import AgentOutput as AgentOutput
from jaxpapers.meta_gradient.core import MetaLearner as MetaLearner
from jaxpapers.meta_gradient.core import MetaParams as MetaParams
from jaxpapers.meta_gradient.core import MetaTrace as MetaTrace
from jaxpapers.meta_gradient.core import Trajectory as Trajectory
from jaxpapers.meta_gradient.core import accumulate_trace as accumulate_trace
from jaxpapers.meta_gradient.core import actor_critic_loss as actor_critic_loss
from jaxpapers.meta_gradient.core import check_reference as check_reference
from jaxpapers.meta_gradient.core import check_trajectory as check_trajectory
from jaxpapers.meta_gradient.core import init_meta_params as init_meta_params
from jaxpapers.meta_gradient.core import make_inner_optimizer as make_inner_optimizer
from jaxpapers.meta_gradient.core import make_meta_learner as make_meta_learner
from jaxpapers.meta_gradient.core import make_meta_optimizer as make_meta_optimizer
from jaxpapers.meta_gradient.core import max_logit as max_logit
from jaxpapers.meta_gradient.core import meta_step as meta_step
from jaxpapers.meta_gradient.core import meta_values as meta_values
from jaxpapers.meta_gradient.core import vtrace_targets as vtrace_targets
from jaxpapers.meta_gradient.core import zero_trace as zero_trace
from jaxpapers.meta_gradient.data import human_normalized as human_normalized
from jaxpapers.meta_gradient.data import load_game_scores as load_game_scores
from jaxpapers.meta_gradient.data import load_reference_scores as load_reference_scores
from jaxpapers.meta_gradient.data import median_human_normalized as median_human_normalized
from jaxpapers.meta_gradient.data import write_game_scores as write_game_scores
from jaxpapers.meta_gradient.envs import ENVS as ENVS
from jaxpapers.meta_gradient.envs import make_env as make_env
from jaxpapers.meta_gradient.haiku_networks import from_haiku as from_haiku
from jaxpapers.meta_gradient.haiku_networks import haiku_actor_critic as haiku_actor_critic
from jaxpapers.meta_gradient.haiku_networks import haiku_params_from_flax as haiku_params_from_flax
from jaxpapers.meta_gradient.haiku_networks import make_haiku_agent as make_haiku_agent
from jaxpapers.meta_gradient.networks import Agent as Agent
from jaxpapers.meta_gradient.networks import make_agent as make_agent
from jaxpapers.meta_gradient.toy import ToyConfig as ToyConfig
from jaxpapers.meta_gradient.toy import eta_return as eta_return
from jaxpapers.meta_gradient.toy import run_toy as run_toy
from jaxpapers.meta_gradient.toy import sample_chain_rewards as sample_chain_rewards
from jaxpapers.meta_gradient.train import TrainState as TrainState
from jaxpapers.meta_gradient.train import make_learner as make_learner
from jaxpapers.meta_gradient.train import make_train as make_train
from jaxpapers.meta_gradient.train import run_variants as run_variants
from jaxpapers.meta_gradient.train import train_and_evaluate as train_and_evaluate
