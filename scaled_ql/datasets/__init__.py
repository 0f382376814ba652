"""RLDS data in the `rlu_atari` schema: writing, reading, transitions, Reverb serving.

Every game suite uses the same schema; the suite's `types.ObservationSpec` sets the frames
(Atari `rlu_atari/...`, MinAtar `rlu_minatar/...`).

Modules import TensorFlow, TFDS and Reverb only inside functions, so importing this package
stays light.  See docs/DATA.md for the schema and the conventions.
"""

from scaled_ql.datasets.collect import CollectConfig
from scaled_ql.datasets.collect import Policy
from scaled_ql.datasets.collect import UniformRandomPolicy
from scaled_ql.datasets.collect import collect_games
from scaled_ql.datasets.collect import collect_run
from scaled_ql.datasets.collect import register_policy
from scaled_ql.datasets.pipeline import PipelineConfig
from scaled_ql.datasets.pipeline import device_prefetch
from scaled_ql.datasets.pipeline import game_transition_dataset
from scaled_ql.datasets.pipeline import make_dataset
from scaled_ql.datasets.pipeline import numpy_iterator
from scaled_ql.datasets.reverb_tables import ReplayTablesConfig
from scaled_ql.datasets.reverb_tables import ReverbSampler
from scaled_ql.datasets.reverb_tables import SamplerTimeoutError
from scaled_ql.datasets.reverb_tables import feed
from scaled_ql.datasets.reverb_tables import make_sampler_dataset
from scaled_ql.datasets.reverb_tables import make_tables
from scaled_ql.datasets.reverb_tables import start_server
from scaled_ql.datasets.reverb_tables import table_name
from scaled_ql.datasets.rlds import RLU_ATARI
from scaled_ql.datasets.rlds import RLU_ATARI_ORDERED
from scaled_ql.datasets.rlds import RLU_MINATAR
from scaled_ql.datasets.rlds import RLU_MINATAR_ORDERED
from scaled_ql.datasets.rlds import EpisodeArrays
from scaled_ql.datasets.rlds import RluAtariWriter
from scaled_ql.datasets.rlds import episode_features
from scaled_ql.datasets.rlu_atari import DatasetNotFoundError
from scaled_ql.datasets.rlu_atari import DatasetSuiteError
from scaled_ql.datasets.rlu_atari import EpisodeSelection
from scaled_ql.datasets.rlu_atari import RunDataset
from scaled_ql.datasets.rlu_atari import find_datasets
from scaled_ql.datasets.rlu_atari import game_episodes
from scaled_ql.datasets.rlu_atari import open_directory
from scaled_ql.datasets.rlu_atari import open_run
from scaled_ql.datasets.transitions import TransitionConfig
from scaled_ql.datasets.transitions import episode_transitions
from scaled_ql.datasets.transitions import transition_spec
from scaled_ql.datasets.validation import DatasetValidationError
from scaled_ql.datasets.validation import inspect_run

__all__ = [
    "RLU_ATARI",
    "RLU_ATARI_ORDERED",
    "RLU_MINATAR",
    "RLU_MINATAR_ORDERED",
    "CollectConfig",
    "DatasetNotFoundError",
    "DatasetSuiteError",
    "DatasetValidationError",
    "EpisodeArrays",
    "EpisodeSelection",
    "PipelineConfig",
    "Policy",
    "ReplayTablesConfig",
    "ReverbSampler",
    "RluAtariWriter",
    "RunDataset",
    "SamplerTimeoutError",
    "TransitionConfig",
    "UniformRandomPolicy",
    "collect_games",
    "collect_run",
    "device_prefetch",
    "episode_features",
    "episode_transitions",
    "feed",
    "find_datasets",
    "game_episodes",
    "game_transition_dataset",
    "inspect_run",
    "make_dataset",
    "make_sampler_dataset",
    "make_tables",
    "numpy_iterator",
    "open_directory",
    "open_run",
    "register_policy",
    "start_server",
    "table_name",
    "transition_spec",
]
