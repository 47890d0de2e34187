"""Spectral signatures in backdoor attacks (Tran, Li & Mądry, NeurIPS 2018).

Backdoor poisons leave a trace in the spectrum of a learned representation: per class, centre
the representations, take the top right singular vector ``v`` and score each example by
``((R_i − R̂)·v)²``; removing the ``1.5·ε·n_y`` highest-scoring examples of every class and
retraining removes the backdoor.
"""

from jaxpapers.spectral_signatures import config as config
from jaxpapers.spectral_signatures import data as data
from jaxpapers.spectral_signatures import models as models
from jaxpapers.spectral_signatures.attacks import TRIGGERS as TRIGGERS
from jaxpapers.spectral_signatures.attacks import PoisonedDataset as PoisonedDataset
from jaxpapers.spectral_signatures.attacks import apply_trigger as apply_trigger
from jaxpapers.spectral_signatures.attacks import num_poisons as num_poisons
from jaxpapers.spectral_signatures.attacks import poison_dataset as poison_dataset
from jaxpapers.spectral_signatures.attacks import trigger_mask as trigger_mask
from jaxpapers.spectral_signatures.attacks import triggered_test_set as triggered_test_set
from jaxpapers.spectral_signatures.defense import ClassBlocks as ClassBlocks
from jaxpapers.spectral_signatures.defense import ClusteringResult as ClusteringResult
from jaxpapers.spectral_signatures.defense import DetectionStats as DetectionStats
from jaxpapers.spectral_signatures.defense import SpectralSignature as SpectralSignature
from jaxpapers.spectral_signatures.defense import (
    activation_clustering_scores as activation_clustering_scores,
)
from jaxpapers.spectral_signatures.defense import class_blocks as class_blocks
from jaxpapers.spectral_signatures.defense import detection_stats as detection_stats
from jaxpapers.spectral_signatures.defense import removal_counts as removal_counts
from jaxpapers.spectral_signatures.defense import removal_mask as removal_mask
from jaxpapers.spectral_signatures.defense import spectral_scores as spectral_scores
from jaxpapers.spectral_signatures.defense import spectral_signature as spectral_signature
from jaxpapers.spectral_signatures.defense import spectre_scores as spectre_scores
from jaxpapers.spectral_signatures.train import run_pipeline as run_pipeline
from jaxpapers.spectral_signatures.train import train_and_evaluate as train_and_evaluate
from jaxpapers.spectral_signatures.train import train_classifier as train_classifier
