"""The parts every run configuration is made of, each documented and checked once.

    RunIdentity         out_dir, seed, run_name, method: who the run is and where it writes
    Checkpointing       checkpoint_every, keep_checkpoints
    EvaluationSettings  eval_every and the evaluation protocol (eval_episodes, eval_epsilon,
                        eval_sticky_action_prob, eval_max_episode_frames, eval_workers)
    OfflineTraining     the three above, plus what a single-process offline run reads and how
                        its loop runs (data_dir, steps, runs, ..., final_eval, log_every,
                        progress): what `offline.run_offline` takes
    FinetuneStart       checkpoint, checkpoint_step, agent, freeze_torso, from_scratch,
                        fresh_head: where a fine-tuning run starts

A command's config (`PretrainConfig`, `FinetuneOfflineConfig`) is a frozen dataclass that
inherits the parts it has and adds its own fields, so its fields stay flat: the command line's
flags (`cli.flags` has one helper per part), config.json and a `--resume` comparison see the
same names as before the parts existed.  Every field is keyword-only.  A part declares the least
value of its counts (`minimums`) and checks anything else in a `__post_init__` that hands on to
the next part (`super().__post_init__()`); a message names the config class and the field
(`PretrainConfig.steps must be >= 1, got 0`), which the command line turns into the flag
(`cli.common.Command.user_words`).
"""

import dataclasses
from typing import Any, ClassVar

from scaled_ql.agents.scaled_ql.config import EVAL_EPSILON, ScaledQLConfig


def check_at_least(config: Any, minimum: int, *names: str) -> None:
    """Raises ValueError naming `config`'s class and the first of `names` below `minimum`."""
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise ValueError(f"{type(config).__name__}.{name} must be >= {minimum}, got {value}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Part:
    """What every part checks: its `minimums` (field -> least value), those of every class of
    the config in turn; a part with other checks adds a `__post_init__` that hands on with
    `super().__post_init__()`."""

    minimums: ClassVar[dict[str, int]] = {}

    def __post_init__(self):
        for cls in type(self).__mro__:
            for name, minimum in vars(cls).get("minimums", {}).items():
                check_at_least(self, minimum, name)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunIdentity(_Part):
    """Who a run is and where it writes.

    Attributes:
      out_dir: the run directory.
      seed: seeds parameters, data order and evaluation.
      run_name: the configuration's name in reports; seeds of one configuration share it (None:
        derived from the method).
      method: the method's name in reports ('scaled_ql', 'c51', 'bc', 'finetune', ...; None:
        derived from the command's flags).
    """

    out_dir: str
    seed: int = 0
    run_name: str | None = None
    method: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Checkpointing(_Part):
    """How often a run checkpoints.

    Attributes:
      checkpoint_every: SGD (learner) steps between checkpoints (a final one is always
        written).
      keep_checkpoints: checkpoints kept on disk.
    """

    minimums: ClassVar[dict[str, int]] = {"checkpoint_every": 1, "keep_checkpoints": 1}

    checkpoint_every: int = 1_000
    keep_checkpoints: int = 3


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationSettings(_Part):
    """When a run is evaluated, and how (the protocol: rounds of two protocols never mix).

    Attributes:
      eval_every: SGD (learner) steps between evaluation rounds (0: none between the start
        and the end).
      eval_episodes: episodes per game per round.
      eval_epsilon: exploration during evaluation [0.001, Dopamine].
      eval_sticky_action_prob: sticky actions during evaluation [None: the suite's; Atari
        0.25, as the data; MinAtar 0.1].
      eval_max_episode_frames: episode cap in frames [None: the suite's; Atari 108,000 = 30
        minutes of play; MinAtar 10,000 steps].  config.json records the resolved values.
      eval_workers: evaluation worker processes (None: one per core; 0: in this process).
    """

    eval_every: int = 0
    eval_episodes: int = 10
    eval_epsilon: float = EVAL_EPSILON
    eval_sticky_action_prob: float | None = None
    eval_max_episode_frames: int | None = None
    eval_workers: int | None = None

    minimums: ClassVar[dict[str, int]] = {"eval_episodes": 1, "eval_every": 0}

    def __post_init__(self):
        if not 0.0 <= self.eval_epsilon <= 1.0:
            raise ValueError(f"{type(self).__name__}.eval_epsilon must be in [0, 1], got "
                             f"{self.eval_epsilon}")
        super().__post_init__()


@dataclasses.dataclass(frozen=True, kw_only=True)
class OfflineTraining(RunIdentity, Checkpointing, EvaluationSettings):
    """A single-process run on offline data (`offline.run_offline`): the identity,
    checkpointing and evaluation parts, the data it reads, and how its loop runs.

    Attributes:
      data_dir: TFDS data_dir with `rlu_atari/<Game>_run_<k>/` datasets (MinAtar games:
        `rlu_minatar/<Game>_run_<k>/`).
      steps: total SGD steps (a resumed run stops at the same total).
      runs: dataset runs to read per game.
      checkpoints: inclusive checkpoint_id range to read (None: all; (0, 9) of 50 is the
        paper's sub-optimal split).
      episode_fraction: fraction of the selected episodes to read.
      shuffle_buffer: transitions in the shuffle buffer.
      cache_data: keep the decoded transitions in memory after the first pass (small datasets
        such as MinAtar's; `datasets.PipelineConfig.cache`).
      final_eval: evaluate at the end [default True; False with eval_every 0: no evaluation].
      log_every: SGD steps between updates of the loss on the progress bar (logs/learner.csv
        and TensorBoard get a row at every learner step).
      progress: show progress bars.
    """

    data_dir: str
    steps: int
    runs: tuple[int, ...] = (1,)
    checkpoints: tuple[int, int] | None = None
    episode_fraction: float = 1.0
    shuffle_buffer: int = 10_000
    cache_data: bool = False
    final_eval: bool = True
    log_every: int = 100
    progress: bool = True

    minimums: ClassVar[dict[str, int]] = {"steps": 1, "log_every": 1}


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinetuneStart(_Part):
    """Where a fine-tuning run starts: a pre-trained run's checkpoint.

    Attributes:
      checkpoint: run directory of the pre-trained network (its latest checkpoint unless
        `checkpoint_step`); from scratch it only provides the architecture and the default
        learner config.
      checkpoint_step: which checkpoint of `checkpoint` to load (None: the latest).
      agent: the learner config; None takes the checkpoint's.  Its network must be the
        checkpoint's (the torso is copied); the loss and optimizer settings may differ.
      freeze_torso: train only the head; the torso stays bit-for-bit the pre-trained one.
      from_scratch: random initialisation of the same architecture (the baseline); with
        `freeze_torso`, the head on a random, frozen torso (the random-features control).
      fresh_head: when the game already has a head in the checkpoint, start it fresh anyway
        [default False: reuse it].
    """

    # What `method_name` puts before the method ('online_' for online fine-tuning).
    method_prefix: ClassVar[str] = ""

    checkpoint: str
    checkpoint_step: int | None = None
    agent: ScaledQLConfig | None = None
    freeze_torso: bool = False
    from_scratch: bool = False
    fresh_head: bool = False

    def builder_start(self):
        """The builder's `FinetuneConfig` of this start (the learner's initial state)."""
        from scaled_ql.agents.scaled_ql.builder import FinetuneConfig

        return FinetuneConfig(checkpoint=self.checkpoint, checkpoint_step=self.checkpoint_step,
                              reuse_heads=not self.fresh_head, from_scratch=self.from_scratch,
                              freeze_torso=self.freeze_torso)

    @property
    def method_name(self) -> str:
        """`method` if given, else what the start says: finetune, finetune_frozen_torso,
        finetune_lp_ft (the agent's `frozen_torso_steps` > 0), scratch or scratch_frozen_torso
        (after `method_prefix`)."""
        if getattr(self, "method", None):
            return self.method
        probe = self.agent is not None and self.agent.frozen_torso_steps > 0
        frozen = "_frozen_torso" if self.freeze_torso else ""
        method = ("scratch" + frozen if self.from_scratch else
                  "finetune" + frozen if self.freeze_torso else
                  "finetune_lp_ft" if probe else "finetune")
        return self.method_prefix + method


def json_fields(config: Any, leave_out: tuple[str, ...] = ("agent",)) -> dict:
    """A config's fields as config.json data, less `leave_out`: tuples become lists, as JSON
    reads them back (so a `--resume` compares the run's config.json with equal values)."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
              if f.name not in leave_out}
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in values.items()}
