"""StarCraft defogger (Synnaeve et al., NeurIPS 2018) on a JAX-native fog-of-war RTS world.

Synnaeve, Lin, Gehring, Gant, Mella, Khalidov, Carion & Usunier, "Forward Modeling for Partial
Observation Strategy Games — A StarCraft Defogger". From partial observations of an RTS game,
predict per-cell enemy unit counts and types (hidden or not) and the opponent's build tree, at
horizons s = 0, 1, 3. STARDATA is not obtainable here, so a vmapped, scan-able RTS generator with
tech tree, build orders, scouting, combat and fog stands in; the featurizer follows the
reference's semantics so that real replay unit lists plug in.
"""

from jaxpapers.defogger import config as config
from jaxpapers.defogger.bot import evaluate_bots as evaluate_bots
from jaxpapers.defogger.bot import memory_target as memory_target
from jaxpapers.defogger.bot import outcome as outcome
from jaxpapers.defogger.bot import pick_target as pick_target
from jaxpapers.defogger.data import load_unit_lists as load_unit_lists
from jaxpapers.defogger.data import save_unit_lists as save_unit_lists
from jaxpapers.defogger.features import FeatureConfig as FeatureConfig
from jaxpapers.defogger.features import Features as Features
from jaxpapers.defogger.features import count_units as count_units
from jaxpapers.defogger.features import featurize as featurize
from jaxpapers.defogger.features import input_only as input_only
from jaxpapers.defogger.features import memory_channels as memory_channels
from jaxpapers.defogger.features import perfect_memory as perfect_memory
from jaxpapers.defogger.features import previously_seen as previously_seen
from jaxpapers.defogger.features import tech_closure as tech_closure
from jaxpapers.defogger.metrics import defogger_metrics as defogger_metrics
from jaxpapers.defogger.metrics import f1_score as f1_score
from jaxpapers.defogger.metrics import per_game_pr as per_game_pr
from jaxpapers.defogger.model import DefoggerStep as DefoggerStep
from jaxpapers.defogger.model import unroll as unroll
from jaxpapers.defogger.study import run_study as run_study
from jaxpapers.defogger.train import build_dataset as build_dataset
from jaxpapers.defogger.train import format_tables as format_tables
from jaxpapers.defogger.train import sequence_features as sequence_features
from jaxpapers.defogger.train import train_and_evaluate as train_and_evaluate
from jaxpapers.defogger.world import BotOrders as BotOrders
from jaxpapers.defogger.world import Game as Game
from jaxpapers.defogger.world import GameConfig as GameConfig
from jaxpapers.defogger.world import generate_game as generate_game
from jaxpapers.defogger.world import generate_games as generate_games
