"""Pipe-SGD: a decentralized pipelined SGD framework (Li et al., NeurIPS 2018).

Youjie Li, Mingchao Yu, Songze Li, Salman Avestimehr, Nam Sung Kim, Alexander Schwing.
"Pipe-SGD: A Decentralized Pipelined SGD Framework for Distributed Deep Net Training."
NeurIPS 2018. Data-parallel SGD whose AllReduce of step t overlaps the compute of step t + 1
(pipeline width K = 2: w_{t+1} = w_t − η · mean_i ∇f_i(w_{t−1})), timing models of
parameter-server and AllReduce training, and lossy compression inside the ring AllReduce.
"""

from jaxpapers.pipe_sgd import cluster as cluster
from jaxpapers.pipe_sgd import config as config
from jaxpapers.pipe_sgd import data as data
from jaxpapers.pipe_sgd import distributed as distributed
from jaxpapers.pipe_sgd import models as models
from jaxpapers.pipe_sgd import netshape as netshape
from jaxpapers.pipe_sgd import race as race
from jaxpapers.pipe_sgd import timing as timing
from jaxpapers.pipe_sgd.allreduce import default_mesh as default_mesh
from jaxpapers.pipe_sgd.allreduce import make_allreduce as make_allreduce
from jaxpapers.pipe_sgd.allreduce import pmap_ring_allreduce as pmap_ring_allreduce
from jaxpapers.pipe_sgd.allreduce import ring_allreduce as ring_allreduce
from jaxpapers.pipe_sgd.allreduce import ring_elements_sent as ring_elements_sent
from jaxpapers.pipe_sgd.allreduce import tree_ring_allreduce as tree_ring_allreduce
from jaxpapers.pipe_sgd.compression import Compressor as Compressor
from jaxpapers.pipe_sgd.compression import get_compressor as get_compressor
from jaxpapers.pipe_sgd.compression import quantize8_decode as quantize8_decode
from jaxpapers.pipe_sgd.compression import quantize8_encode as quantize8_encode
from jaxpapers.pipe_sgd.compression import roundtrip as roundtrip
from jaxpapers.pipe_sgd.compression import truncate16_decode as truncate16_decode
from jaxpapers.pipe_sgd.compression import truncate16_encode as truncate16_encode
from jaxpapers.pipe_sgd.pipeline import OverlapResult as OverlapResult
from jaxpapers.pipe_sgd.pipeline import PipeState as PipeState
from jaxpapers.pipe_sgd.pipeline import init_pipe_state as init_pipe_state
from jaxpapers.pipe_sgd.pipeline import make_overlap_fns as make_overlap_fns
from jaxpapers.pipe_sgd.pipeline import make_train_step as make_train_step
from jaxpapers.pipe_sgd.pipeline import run_overlapped as run_overlapped
from jaxpapers.pipe_sgd.timing import Network as Network
from jaxpapers.pipe_sgd.timing import best_pipeline_width as best_pipeline_width
from jaxpapers.pipe_sgd.timing import pipe_sgd_time as pipe_sgd_time
from jaxpapers.pipe_sgd.timing import ring_allreduce_time as ring_allreduce_time
from jaxpapers.pipe_sgd.train import format_table as format_table
from jaxpapers.pipe_sgd.train import train_and_evaluate as train_and_evaluate
