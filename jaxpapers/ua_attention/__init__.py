"""Uncertainty-aware attention: RETAIN-DA, RETAIN-SA, UA and UA+ with calibrated, abstaining
predictions on EHR sequences.

Heo, Lee, Lee, Kim, Park, Yang, Hwang. "Uncertainty-Aware Attention for Reliable Interpretation
and Prediction". NeurIPS 2018. Built on Choi et al., "RETAIN", NeurIPS 2016.
"""

from jaxpapers.ua_attention import config as config
from jaxpapers.ua_attention import data as data
from jaxpapers.ua_attention import metrics as metrics
from jaxpapers.ua_attention import train as train
from jaxpapers.ua_attention.data import EHRArrays as EHRArrays
from jaxpapers.ua_attention.data import LoadSummary as LoadSummary
from jaxpapers.ua_attention.data import PhysioNetSet as PhysioNetSet
from jaxpapers.ua_attention.data import SyntheticEHR as SyntheticEHR
from jaxpapers.ua_attention.data import load_physionet as load_physionet
from jaxpapers.ua_attention.data import make_synthetic_ehr as make_synthetic_ehr
from jaxpapers.ua_attention.data import parse_record as parse_record
from jaxpapers.ua_attention.data import prepare_physionet_task as prepare_physionet_task
from jaxpapers.ua_attention.data import task_labels as task_labels
from jaxpapers.ua_attention.metrics import AbstentionCurve as AbstentionCurve
from jaxpapers.ua_attention.metrics import ReliabilityDiagram as ReliabilityDiagram
from jaxpapers.ua_attention.metrics import abstain as abstain
from jaxpapers.ua_attention.metrics import abstention_curve as abstention_curve
from jaxpapers.ua_attention.metrics import auroc as auroc
from jaxpapers.ua_attention.metrics import ece_noise_floor as ece_noise_floor
from jaxpapers.ua_attention.metrics import expected_calibration_error as expected_calibration_error
from jaxpapers.ua_attention.metrics import reliability_diagram as reliability_diagram
from jaxpapers.ua_attention.model import VARIANTS as VARIANTS
from jaxpapers.ua_attention.model import MCPrediction as MCPrediction
from jaxpapers.ua_attention.model import RetainModel as RetainModel
from jaxpapers.ua_attention.model import RetainOutput as RetainOutput
from jaxpapers.ua_attention.model import apply_model as apply_model
from jaxpapers.ua_attention.model import contributions as contributions
from jaxpapers.ua_attention.model import init_params as init_params
from jaxpapers.ua_attention.model import l2_regularizer as l2_regularizer
from jaxpapers.ua_attention.model import masked_softmax as masked_softmax
from jaxpapers.ua_attention.model import mc_predict as mc_predict
from jaxpapers.ua_attention.model import reparameterize as reparameterize
from jaxpapers.ua_attention.train import TrainState as TrainState
from jaxpapers.ua_attention.train import evaluate as evaluate
from jaxpapers.ua_attention.train import fit as fit
from jaxpapers.ua_attention.train import train_and_evaluate as train_and_evaluate
