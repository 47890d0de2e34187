"""Disconnected-manifold GANs: DMWGAN and DMWGAN-PL with a learned prior.

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018 (arXiv:1806.00880).
"""

from jaxpapers._src.loop import run_chunked as run_chunked
from jaxpapers.dmgan import config as config
from jaxpapers.dmgan import core as core
from jaxpapers.dmgan import data as data
from jaxpapers.dmgan import metrics as metrics
from jaxpapers.dmgan import networks as networks
from jaxpapers.dmgan import plotting as plotting
from jaxpapers.dmgan.core import DMGANConfig as DMGANConfig
from jaxpapers.dmgan.core import PriorState as PriorState
from jaxpapers.dmgan.core import TrainState as TrainState
from jaxpapers.dmgan.core import active_generators as active_generators
from jaxpapers.dmgan.core import critic_loss as critic_loss
from jaxpapers.dmgan.core import encoder_loss as encoder_loss
from jaxpapers.dmgan.core import entropy_weight as entropy_weight
from jaxpapers.dmgan.core import generator_loss as generator_loss
from jaxpapers.dmgan.core import gradient_penalty as gradient_penalty
from jaxpapers.dmgan.core import init_prior as init_prior
from jaxpapers.dmgan.core import init_state as init_state
from jaxpapers.dmgan.core import make_train_step as make_train_step
from jaxpapers.dmgan.core import prior_loss as prior_loss
from jaxpapers.dmgan.core import prior_update as prior_update
from jaxpapers.dmgan.core import sample_model as sample_model
from jaxpapers.dmgan.core import variant_config as variant_config
from jaxpapers.dmgan.data import load_digits as load_digits
from jaxpapers.dmgan.data import load_mnist as load_mnist
from jaxpapers.dmgan.data import mixture_sampler as mixture_sampler
from jaxpapers.dmgan.data import read_idx as read_idx
from jaxpapers.dmgan.data import two_domain_mixture as two_domain_mixture
from jaxpapers.dmgan.metrics import energy_distance as energy_distance
from jaxpapers.dmgan.metrics import frechet_distance as frechet_distance
from jaxpapers.dmgan.metrics import off_manifold_fraction as off_manifold_fraction
from jaxpapers.dmgan.networks import generate as generate
from jaxpapers.dmgan.networks import init_generators as init_generators
from jaxpapers.dmgan.train import train_and_evaluate as train_and_evaluate
