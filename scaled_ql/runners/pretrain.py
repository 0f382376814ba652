"""Single-process multi-game pretraining: stream RLDS data, train, evaluate, checkpoint.

    scaled-ql pretrain --data DIR --games Pong,Breakout --torso resnet18 --steps N --out RUN_DIR
    scaled-ql pretrain --data DIR --games minatar/Breakout,minatar/Asterix ...   # MinAtar

One process: a tf.data pipeline reads every game's RLDS episodes and mixes their transitions;
the learner built by `ScaledQLBuilder` trains on them; every `eval_every` steps the current
network plays `eval_episodes` episodes of every game on the real games (ALE or MinAtar, the
games' suite; batched over worker processes), and the returns are appended to
`RUN_DIR/eval_results.json`.  Checkpoints are atomic and resumable (`resume=True`).
SIGINT/SIGTERM save a checkpoint and return; a run killed outright (SIGKILL, out of memory)
resumes from its newest complete checkpoint, losing at most `checkpoint_every` steps
(docs/RELIABILITY.md).  The shared body of this runner and offline fine-tuning is
`offline.run_offline`; the configuration's parts are `run_config`'s.

Data position on resume: a tf.data stream cannot be rewound to an exact element, so a resumed
run reseeds the stream with (seed, step): it continues on a fresh shuffle of the same data
rather than replaying the batches it already saw.  Each checkpoint records that position as
`extra.data_seed` (the stream's seed) and `extra.data_batches_read` (batches drawn from it).
"""

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from scaled_ql.agents.scaled_ql.checkpointing import config_to_json
from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.runners.evaluate import episode_settings
from scaled_ql.runners.loop import run_guarded
from scaled_ql.runners.offline import (  # noqa: F401  (launchpad_programs import them here)
    eval_protocol,
    make_logger,
    note_resume,
    run_offline,
)
from scaled_ql.runners.run_config import OfflineTraining, json_fields
from scaled_ql.runners.summary import (  # noqa: F401  (launchpad_programs import them here)
    PretrainSummary,
    format_table,
    summarize,
    write_summary,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainConfig(OfflineTraining):
    """A single-process pretraining run: `OfflineTraining`'s fields (the run's identity,
    checkpointing, evaluation, data and loop: `run_config`) and these.

    Attributes:
      games: the training games (heads in this order).
      agent: the learner config (network, losses, optimizer, batch size).
      max_consecutive_skips: updates in a row with a non-finite loss or gradient (each one
        skipped and counted) before the run aborts with `NonFiniteLossError`.
      run_name: as in `RunIdentity` [default 'scaled-ql'].
      method: as in `RunIdentity` [default 'scaled_ql'].
    """

    games: tuple[str, ...]
    agent: ScaledQLConfig = ScaledQLConfig()
    max_consecutive_skips: int = 100
    run_name: str = "scaled-ql"
    method: str = "scaled_ql"

    minimums: ClassVar[dict[str, int]] = {"max_consecutive_skips": 1}

    def __post_init__(self):
        if not self.games:
            raise ValueError("PretrainConfig.games: at least one game is needed")
        super().__post_init__()


def make_builder(config: PretrainConfig, **builder_kwargs):
    """The run's `ScaledQLBuilder` (the Launchpad program adds its replay settings)."""
    from scaled_ql.agents.scaled_ql.builder import ActingConfig, ScaledQLBuilder

    return ScaledQLBuilder(config.agent, config.games,
                           acting=ActingConfig(eval_epsilon=config.eval_epsilon),
                           max_consecutive_skips=config.max_consecutive_skips,
                           **builder_kwargs)


def resolve_episode_settings(flat: dict, games: Sequence[str], prefix: str = "eval_") -> dict:
    """Fills `flat[prefix + 'sticky_action_prob']` and `[prefix + 'max_episode_frames']` with
    the suite's defaults where None (so config.json says what a run used, and an Atari run's
    configuration reads as it did before suites existed); returns `flat`."""
    sticky, frames = f"{prefix}sticky_action_prob", f"{prefix}max_episode_frames"
    flat[sticky], flat[frames] = episode_settings(games, flat[sticky], flat[frames])
    return flat


def run_pretrain(config: PretrainConfig, *, resume: bool = False) -> PretrainSummary:
    """Trains (or continues) the run described by `config`; returns its final summary.

    SIGINT/SIGTERM at any moment end the run with a summary saying what was saved
    (`runners.loop`); a fresh run that fails or is stopped before its first checkpoint leaves
    no run directory behind.
    """
    return run_guarded(config.out_dir, resume,
                       lambda stop, start: _run_pretrain(config, resume, stop, start))


def _run_pretrain(config: PretrainConfig, resume: bool, stop, start) -> PretrainSummary:
    # Bad input (unknown games, data selection) fails before the run directory is touched.
    return run_offline(make_builder(config), config, flat_config(config), resume=resume,
                       stop=stop, start=start, desc="pretrain")


def flat_config(config: PretrainConfig) -> dict:
    """The run's configuration as JSON data: the run fields plus `agent` as a nested dict
    (evaluation settings left to the suite resolved: what the run uses)."""
    flat = resolve_episode_settings(json_fields(config), config.games)
    flat["agent"] = config_to_json(config.agent)
    return flat
