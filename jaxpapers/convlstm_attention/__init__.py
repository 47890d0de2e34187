"""Attention in ConvLSTM for gesture recognition (Zhang et al., NeurIPS 2018).

Zhang, Zhu, Shen, Song, Gao & Yang, "Attention in Convolutional LSTM for Gesture Recognition".
ConvLSTM (Shi et al. 2015) and the paper's variants — (a) gates without convolutions, (b) spatial
attention on the input, (c)/(d) attention input/output gates, and the new variant with convolution
only in the input-to-state transition — as pure cells, the 3D-CNN → ConvLSTM → MobileNet network
(reduced, configurable), the paper's network as written (``paper_network``: Res3D-18 stem with
BatchNorm, MobileNet head with ReLU6; ``config.network = "paper"``), a synthetic gesture generator
where only temporal order defines the class, and Jester/IsoGD loaders.
"""

from jaxpapers.convlstm_attention import config as config
from jaxpapers.convlstm_attention import paper_network as paper_network
from jaxpapers.convlstm_attention.cells import PADDINGS as PADDINGS
from jaxpapers.convlstm_attention.cells import VARIANTS as VARIANTS
from jaxpapers.convlstm_attention.cells import LSTMState as LSTMState
from jaxpapers.convlstm_attention.cells import cell as cell
from jaxpapers.convlstm_attention.cells import count_params as count_params
from jaxpapers.convlstm_attention.cells import gates as gates
from jaxpapers.convlstm_attention.cells import init_cell as init_cell
from jaxpapers.convlstm_attention.cells import run_cell as run_cell
from jaxpapers.convlstm_attention.cells import zero_state as zero_state
from jaxpapers.convlstm_attention.data import CLASSES as CLASSES
from jaxpapers.convlstm_attention.data import Clips as Clips
from jaxpapers.convlstm_attention.data import load_isogd as load_isogd
from jaxpapers.convlstm_attention.data import load_jester as load_jester
from jaxpapers.convlstm_attention.data import synthetic_batch as synthetic_batch
from jaxpapers.convlstm_attention.data import synthetic_clip as synthetic_clip
from jaxpapers.convlstm_attention.model import MODELS as MODELS
from jaxpapers.convlstm_attention.model import apply_network as apply_network
from jaxpapers.convlstm_attention.model import init_network as init_network
from jaxpapers.convlstm_attention.paper_network import BNState as BNState
from jaxpapers.convlstm_attention.paper_network import apply_paper_network as apply_paper_network
from jaxpapers.convlstm_attention.paper_network import format_param_counts as format_param_counts
from jaxpapers.convlstm_attention.paper_network import init_paper_network as init_paper_network
from jaxpapers.convlstm_attention.paper_network import param_counts as param_counts
from jaxpapers.convlstm_attention.paper_network import print_param_counts as print_param_counts
from jaxpapers.convlstm_attention.streaming import ClipDecodeError as ClipDecodeError
from jaxpapers.convlstm_attention.streaming import ClipStream as ClipStream
from jaxpapers.convlstm_attention.streaming import StreamBatch as StreamBatch
from jaxpapers.convlstm_attention.streaming import isogd_stream as isogd_stream
from jaxpapers.convlstm_attention.streaming import jester_stream as jester_stream
from jaxpapers.convlstm_attention.train import FullPassEval as FullPassEval
from jaxpapers.convlstm_attention.train import format_table as format_table
from jaxpapers.convlstm_attention.train import full_pass_eval as full_pass_eval
from jaxpapers.convlstm_attention.train import init_params as init_params
from jaxpapers.convlstm_attention.train import make_train as make_train
from jaxpapers.convlstm_attention.train import network_logits as network_logits
from jaxpapers.convlstm_attention.train import train_and_evaluate as train_and_evaluate
from jaxpapers.convlstm_attention.train import train_model as train_model
