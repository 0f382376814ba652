"""The online fine-tuning run's config (`FinetuneOnlineConfig`), its resolution against the
checkpoint (`resolve`) and its flat JSON form (`flat_config`, what the run directory and the
results file record).

Below both `online_nodes.py` (the program's own nodes, which take the resolved config) and
`finetune_online.py` (the program, which builds those nodes): neither imports the other's
caller.  See `finetune_online.py` for the program's picture.
"""

import dataclasses
import pathlib

from scaled_ql.agents.scaled_ql.config import EVAL_EPSILON, ScaledQLConfig


@dataclasses.dataclass(frozen=True)
class FinetuneOnlineConfig:
    """An online fine-tuning run on one game variant.

    Attributes:
      checkpoint: run directory of the pre-trained network (latest checkpoint unless
        `checkpoint_step`); from scratch it only provides the architecture and learner config.
      game: the game; its variant is (`mode`, `difficulty`), None = the ROM's default (MinAtar:
        difficulty 1 = difficulty ramping, on Asterix, Seaquest and SpaceInvaders).
      out_dir: the run directory.
      env_steps: environment (agent) steps to collect over all actors: the stop condition
        [paper: 20k online steps].
      agent: the learner config; None takes the checkpoint's with `cql_alpha` replaced by
        `online_cql_alpha`.  Its network must be the checkpoint's.
      online_cql_alpha: CQL weight online [default 0.01, our choice: a tenth of the offline
        default 0.1.  Online data comes from the policy being trained, so the
        out-of-distribution over-estimation CQL guards against shrinks, while a little CQL
        keeps the pre-trained Q-values from collapsing in the first updates; PAPER.md gives no
        number].  Ignored when `agent` is given.
      checkpoint_step, fresh_head, from_scratch, freeze_torso: as in offline fine-tuning.
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
      eval_every: learner steps between evaluation rounds (0: at the start and the end only).
      eval_at_start: evaluate the initial network at step 0 [default True].
      eval_episodes, eval_epsilon, eval_sticky_action_prob, eval_max_episode_frames,
        eval_workers: the evaluation protocol, on the same variant (None: the suite's).
      num_evaluators: 0 or 1 evaluator node.
      checkpoint_every: learner steps between checkpoints (a final one is always written).
      keep_checkpoints: checkpoints kept.
      max_pending_rounds: evaluation snapshots the learner may hold before it waits.
      seed: seeds initialisation, actors' environments and evaluation.
      run_name, method: names in reports (None: derived).
    """

    checkpoint: str
    game: str
    out_dir: str
    env_steps: int
    mode: int | None = None
    difficulty: int | None = None
    agent: ScaledQLConfig | None = None
    online_cql_alpha: float = 0.01
    checkpoint_step: int | None = None
    fresh_head: bool = False
    from_scratch: bool = False
    freeze_torso: bool = False
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
    eval_every: int = 0
    eval_at_start: bool = True
    eval_episodes: int = 10
    eval_epsilon: float = EVAL_EPSILON
    eval_sticky_action_prob: float | None = None
    eval_max_episode_frames: int | None = None
    eval_workers: int | None = None
    num_evaluators: int = 1
    checkpoint_every: int = 1_000
    keep_checkpoints: int = 3
    max_pending_rounds: int = 2
    seed: int = 0
    run_name: str | None = None
    method: str | None = None

    def __post_init__(self):
        from scaled_ql.agents.scaled_ql.builder import check_start

        for name in ("env_steps", "num_actors", "variable_update_period", "replay_max_size",
                     "replay_min_size", "offline_replay_size", "sampler_poll_ms",
                     "sampler_timeout_ms", "eval_episodes", "checkpoint_every",
                     "keep_checkpoints", "max_pending_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"FinetuneOnlineConfig.{name} must be >= 1, got "
                                 f"{getattr(self, name)}")
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
        if self.eval_every < 0:
            raise ValueError("FinetuneOnlineConfig.eval_every must be >= 0")
        check_start("FinetuneOnlineConfig", from_scratch=self.from_scratch,
                    freeze_torso=self.freeze_torso)
        for name in ("train_epsilon", "eval_epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"FinetuneOnlineConfig.{name} must be in [0, 1]")

    @property
    def method_name(self) -> str:
        if self.method:
            return self.method
        if self.from_scratch:
            return "online_scratch"
        return "online_finetune_frozen_torso" if self.freeze_torso else "online_finetune"

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
    from scaled_ql.agents.scaled_ql.checkpointing import config_to_json

    flat = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name != "agent"}
    flat["offline_runs"] = list(flat["offline_runs"])
    flat["offline_checkpoints"] = (None if flat["offline_checkpoints"] is None
                                   else list(flat["offline_checkpoints"]))
    flat["agent"] = config_to_json(config.agent)
    flat["method"] = config.method_name
    flat["run_name"] = config.run_name or config.method_name
    return flat
