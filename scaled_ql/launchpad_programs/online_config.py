"""The online fine-tuning run's config (`FinetuneOnlineConfig`), its resolution against the
checkpoint (`resolve`) and its flat JSON form (`flat_config`, what the run directory and the
results file record).

Below both `online_nodes.py` (the program's own nodes, which take the resolved config) and
`finetune_online.py` (the program, which builds those nodes): neither imports the other's
caller.  See `finetune_online.py` for the program's picture.
"""

import dataclasses
import pathlib
from typing import ClassVar

from scaled_ql.runners.run_config import (
    Checkpointing,
    EvaluationSettings,
    FinetuneStart,
    RunIdentity,
    json_fields,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinetuneOnlineConfig(RunIdentity, Checkpointing, EvaluationSettings, FinetuneStart):
    """An online fine-tuning run on one game variant: the parts of every run
    (`runners.run_config`: `RunIdentity`, `Checkpointing`, `EvaluationSettings`, played on the
    same variant) and of every fine-tuning start (`FinetuneStart`: checkpoint,
    checkpoint_step, agent, freeze_torso, from_scratch, fresh_head; method names get the prefix
    `online_`), and these.

    Attributes:
      game: the game; its variant is (`mode`, `difficulty`), None = the ROM's default (MinAtar:
        difficulty 1 = difficulty ramping, on Asterix, Seaquest and SpaceInvaders).
      env_steps: environment (agent) steps to collect over all actors: the stop condition
        [paper: 20k online steps].
      online_cql_alpha: CQL weight online [default 0.01, our choice: a tenth of the offline
        default 0.1.  Online data comes from the policy being trained, so the
        out-of-distribution over-estimation CQL guards against shrinks, while a little CQL
        keeps the pre-trained Q-values from collapsing in the first updates; PAPER.md gives no
        number].  `agent` None takes the checkpoint's config with `cql_alpha` replaced by this;
        ignored when `agent` is given.
      offline_data: TFDS data_dir with the base game's `rlu_atari` data to mix in (None: none).
      offline_ratio: fraction of each batch sampled from the offline table [default 0.0].
      offline_runs, offline_checkpoints: which offline data (as PretrainConfig.runs /
        checkpoints).
      num_actors: actor nodes.
      train_epsilon: actors' exploration [default 0.01, Dopamine C51's final epsilon: the
        pre-trained policy is already a reasonable one].
      variable_update_period: actor steps between parameter pulls from the learner
        [default 100].
      replay_max_size: items in the online table (FIFO) [default 100,000].
      replay_min_size: items before the learner samples the online table [default 1,000].
      samples_per_insert: learner samples per inserted transition [default 8.0: Dopamine
        DQN/C51 train a batch of 32 every 4 agent steps].
      samples_per_insert_tolerance: relative slack of the sample-to-insert limiter (see
        `ReplayTablesConfig`) [default 0.1, Acme's convention].
      offline_replay_size: items in the offline table [default 100,000].
      sampler_poll_ms: a blocked sample is re-checked this often (ending, stop) [2,000].
      sampler_timeout_ms: the learner fails after waiting this long in total for samples.
      actor_sticky_action_prob: sticky actions while collecting [None: the suite's, as
        evaluation; Atari 0.25, MinAtar 0.1].
      actor_max_episode_frames: episode cap while collecting [None: the suite's; Atari
        108,000 frames, MinAtar 10,000 steps].
      eval_at_start: evaluate the initial network at step 0 [default True].
      num_evaluators: 0 or 1 evaluator node.
      max_pending_rounds: evaluation snapshots the learner may hold before it waits.
    """

    method_prefix: ClassVar[str] = "online_"
    minimums: ClassVar[dict[str, int]] = {
        name: 1 for name in ("env_steps", "num_actors", "variable_update_period",
                             "replay_max_size", "replay_min_size", "offline_replay_size",
                             "sampler_poll_ms", "sampler_timeout_ms", "max_pending_rounds")}

    game: str
    env_steps: int
    mode: int | None = None
    difficulty: int | None = None
    online_cql_alpha: float = 0.01
    offline_data: str | None = None
    offline_ratio: float = 0.0
    offline_runs: tuple[int, ...] = (1,)
    offline_checkpoints: tuple[int, int] | None = None
    num_actors: int = 1
    train_epsilon: float = 0.01
    variable_update_period: int = 100
    replay_max_size: int = 100_000
    replay_min_size: int = 1_000
    samples_per_insert: float = 8.0
    samples_per_insert_tolerance: float = 0.1
    offline_replay_size: int = 100_000
    sampler_poll_ms: int = 2_000
    sampler_timeout_ms: int = 300_000
    actor_sticky_action_prob: float | None = None
    actor_max_episode_frames: int | None = None
    eval_at_start: bool = True
    num_evaluators: int = 1
    max_pending_rounds: int = 2

    def __post_init__(self):
        super().__post_init__()  # the parts' checks, the counts' minimums
        if self.replay_min_size > self.replay_max_size:
            raise ValueError(f"FinetuneOnlineConfig.replay_min_size ({self.replay_min_size}) "
                             f"must be <= replay_max_size ({self.replay_max_size})")
        if not 0.0 <= self.offline_ratio < 1.0:
            raise ValueError(f"FinetuneOnlineConfig.offline_ratio must be in [0, 1), got "
                             f"{self.offline_ratio}")
        if self.offline_ratio > 0 and not self.offline_data:
            raise ValueError("FinetuneOnlineConfig.offline_ratio > 0 needs offline_data (the "
                             "base game's RLDS data_dir)")
        if self.samples_per_insert <= 0 or self.samples_per_insert_tolerance <= 0:
            raise ValueError("FinetuneOnlineConfig.samples_per_insert and its tolerance must "
                             "be > 0")
        if self.online_cql_alpha < 0:
            raise ValueError(f"FinetuneOnlineConfig.online_cql_alpha must be >= 0, got "
                             f"{self.online_cql_alpha}")
        if self.num_evaluators not in (0, 1):
            raise ValueError(f"FinetuneOnlineConfig.num_evaluators must be 0 or 1, got "
                             f"{self.num_evaluators}")
        if not 0.0 <= self.train_epsilon <= 1.0:
            raise ValueError("FinetuneOnlineConfig.train_epsilon must be in [0, 1]")

    @property
    def variant(self) -> str:
        return f"{self.game} (mode {self.mode}, difficulty {self.difficulty})"


def resolve(config: FinetuneOnlineConfig) -> FinetuneOnlineConfig:
    """Validates the game, variant and checkpoint (its suite must be the game's); returns
    `config` with the game's catalogue name, the learner config and the suite's episode
    settings filled in (what the nodes receive)."""
    from scaled_ql.agents.scaled_ql.checkpointing import (
        check_suite,
        config_from_json,
        read_run_meta,
    )
    from scaled_ql.environments.games import get_game
    from scaled_ql.runners.finetune_offline import resolve_agent
    from scaled_ql.runners.pretrain import resolve_episode_settings

    info = get_game(config.game)
    info.check_variant(config.mode, config.difficulty)
    meta, where = read_run_meta(config.checkpoint, config.checkpoint_step)
    check_suite(meta, (info.name,), where)
    pretrained = config_from_json(meta.config)
    agent = config.agent or dataclasses.replace(pretrained, cql_alpha=config.online_cql_alpha)
    agent = resolve_agent(agent, pretrained)
    episodes = {f"{who}_{setting}": getattr(config, f"{who}_{setting}") for who in ("actor", "eval")
                for setting in ("sticky_action_prob", "max_episode_frames")}
    for who in ("actor", "eval"):
        resolve_episode_settings(episodes, (info.name,), prefix=f"{who}_")
    return dataclasses.replace(config, game=info.name, agent=agent,
                               checkpoint=str(pathlib.Path(config.checkpoint).absolute()),
                               out_dir=str(pathlib.Path(config.out_dir).absolute()),
                               **episodes)


def flat_config(config: FinetuneOnlineConfig) -> dict:
    """config.json's data (and the results file's config): the fields as JSON data
    (`run_config.json_fields`), the learner config, the method and run names as derived."""
    from scaled_ql.agents.scaled_ql.checkpointing import config_to_json

    return {**json_fields(config), "agent": config_to_json(config.agent),
            "method": config.method_name, "run_name": config.run_name or config.method_name}
