"""`ScaledQLBuilder`: the one place where the agent's parts are wired together.

It implements dm-acme 0.4.0's `ActorLearnerBuilder` methods (`make_replay_tables`,
`make_dataset_iterator`, `make_adder`, `make_actor`, `make_learner`) plus `make_policy`,
`make_networks` and `make_offline_dataset_iterator`, so the single-process runner, the
Launchpad programs and other people's Acme code build the same agent from the same calls:

    builder = ScaledQLBuilder(config, games=("Pong", "Breakout"))
    networks = builder.make_networks()
    learner = builder.make_learner(key, networks, builder.make_offline_dataset_iterator(data))
    actor = builder.make_actor(key, builder.make_policy(networks, "Pong"),
                               variable_source=learner)
    acme.EnvironmentLoop(builder.make_environment("Pong"), actor).run(num_episodes=1)

The games decide the suite (`environments.suites.suite_of`: Atari, or MinAtar for
"minatar/<Game>" names; one suite per builder), and with it the observation spec the
networks, data streams and environments use.

Fine-tuning goes through the same calls.  With a `FinetuneConfig`, `make_learner` starts from
`make_initial_state` (a pre-trained checkpoint moved onto this builder's games: its torso, and
the heads of games it already has unless `reuse_heads=False`) and freezes the torso when
asked; with an online `ReplayConfig` (`samples_per_insert`), `make_replay_tables`,
`make_adder` and `make_dataset_iterator` give the online tables, the actors' adder and the
learner's mixed sampler (see `replay.py`).  Acme's own layouts (`DistributedLayout`,
`OfflineDistributedLayout`) can therefore run this agent from the builder alone: its
`make_networks` takes (and checks) the environment spec they pass.
"""

import dataclasses
import math
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from acme import core
from acme.agents.jax import builders
from acme.utils import counting, loggers

from scaled_ql.agents.scaled_ql.actor import EVAL_EPSILON, make_actor, make_policy
from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.agents.scaled_ql.learner import ScaledQLLearner
from scaled_ql.agents.scaled_ql.learning import TrainingState, init_training_state
from scaled_ql.agents.scaled_ql.replay import ReplayConfig, ReplaySampler, online_table_key
from scaled_ql import types
from scaled_ql.environments import suites
from scaled_ql.environments.games import get_game
from scaled_ql.networks import ScaledQLNetworks, make_networks
from scaled_ql.types import Transition


@dataclasses.dataclass(frozen=True)
class ActingConfig:
    """How actors act.

    Attributes:
      eval_epsilon: exploration of evaluation policies [default 0.001, Dopamine evaluation].
      train_epsilon: exploration of data-collecting actors [default 0.01, Dopamine DQN/C51
        final epsilon].
      variable_update_period: actor steps between parameter pulls from the learner.
    """

    eval_epsilon: float = EVAL_EPSILON
    train_epsilon: float = 0.01
    variable_update_period: int = 1000

    def __post_init__(self):
        for name in ("eval_epsilon", "train_epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"ActingConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.variable_update_period < 1:
            raise ValueError("ActingConfig.variable_update_period must be >= 1")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Where the learner starts: a pre-trained checkpoint (offline and online fine-tuning).

    Attributes:
      checkpoint: run directory of the pre-trained network; its suite must be the games'.
      checkpoint_step: which of its checkpoints (None: the latest).
      reuse_heads: copy the head of every game the checkpoint has a head for (a variant of a
        training game) [default True]; False starts every head fresh (only the torso moves).
      from_scratch: start the same architecture from a random initialisation instead (the
        baseline, one flag apart); the checkpoint then only fixes the suite.
      freeze_torso: train the heads only: `make_learner` wraps the networks with
        `finetune.freeze_torso`, so the torso stays bit-for-bit the pre-trained one.  With
        `from_scratch` it stays the random one: heads on random, fixed features, the control
        that tells what a frozen pre-trained torso owes to its pre-training and what to
        training fewer parameters.
    """

    checkpoint: str
    checkpoint_step: int | None = None
    reuse_heads: bool = True
    from_scratch: bool = False
    freeze_torso: bool = False


class ScaledQLBuilder(builders.ActorLearnerBuilder):
    """Builds the Scaled QL networks, learner, actors and data streams for a list of games."""

    def __init__(
        self,
        config: ScaledQLConfig,
        games: Sequence[str],
        *,
        acting: ActingConfig = ActingConfig(),
        replay: ReplayConfig = ReplayConfig(),
        finetune: FinetuneConfig | None = None,
        game_weights: Sequence[float] | None = None,
        max_consecutive_skips: int = 100,
        logger_factory=None,
    ):
        """Creates the builder.

        Args:
          config: the learner config (network, losses, optimizer, batch layout).
          games: the run's ordered game list; head g belongs to games[g].  All of one suite
            (a ValueError naming them otherwise).
          acting: exploration and parameter-refresh settings of actors.
          replay: the Reverb tables, the learner's sampling and the actors' writing (offline
            tables fed from RLDS by default; online tables with `samples_per_insert`).
          finetune: start the learner from a pre-trained checkpoint (None: a fresh network).
          game_weights: per-game sampling weights (default uniform over games).
          max_consecutive_skips: non-finite updates in a row before the learner aborts.
          logger_factory: label -> acme Logger (default: no terminal output).
        """
        self._config = config
        self._games = tuple(get_game(g).name for g in games)  # validates names early
        if len(set(self._games)) != len(self._games):
            raise ValueError(f"games must be distinct, got {list(games)}")
        self._suite = suites.suite_of(self._games)
        self._num_actions = tuple(get_game(g).num_actions for g in self._games)
        self._acting = acting
        self._replay = replay
        self._finetune = finetune
        if game_weights is not None and len(game_weights) != len(self._games):
            raise ValueError(f"{len(game_weights)} game_weights for {len(self._games)} games")
        self._game_weights = None if game_weights is None else tuple(game_weights)
        self._max_consecutive_skips = max_consecutive_skips
        self._logger_factory = logger_factory

    @property
    def config(self) -> ScaledQLConfig:
        return self._config

    @property
    def games(self) -> tuple[str, ...]:
        return self._games

    @property
    def num_actions(self) -> tuple[int, ...]:
        return self._num_actions

    @property
    def replay(self) -> ReplayConfig:
        return self._replay

    @property
    def finetune(self) -> FinetuneConfig | None:
        return self._finetune

    @property
    def suite(self) -> suites.Suite:
        """The games' suite (Atari or MinAtar)."""
        return self._suite

    @property
    def observation(self) -> types.ObservationSpec:
        """What one observation of these games looks like (the network's input)."""
        return self._suite.observation

    def game_id(self, game: str) -> int:
        name = get_game(game).name
        if name not in self._games:
            raise ValueError(f"{name} is not one of this agent's games {list(self._games)}")
        return self._games.index(name)

    # -- networks and policies ---------------------------------------------------------------

    def make_networks(self, environment_spec=None) -> ScaledQLNetworks:
        """One torso and one head per game.  `environment_spec` (what Acme's layouts pass to
        their network factory) is only checked: its observations must be this suite's."""
        self._check_environment_spec(environment_spec)
        return make_networks(self._config.network, self._num_actions,
                             observation=self.observation)

    def _check_environment_spec(self, environment_spec) -> None:
        if environment_spec is None:
            return
        observations = environment_spec.observations
        shape, dtype = tuple(observations.shape), np.dtype(observations.dtype)
        if shape != tuple(self.observation.shape) or dtype != np.uint8:
            raise ValueError(
                f"the environment's observations are {dtype} {shape}; this builder's games "
                f"{list(self._games)} are {self.observation.name} games "
                f"({self.observation.describe()})")

    def make_policy(self, networks: ScaledQLNetworks, game: str, evaluation: bool = True):
        """The epsilon-greedy policy of `game`'s head (eval or training epsilon)."""
        epsilon = self._acting.eval_epsilon if evaluation else self._acting.train_epsilon
        return make_policy(networks, self.game_id(game), epsilon, self._config.compute_dtype)

    # -- data --------------------------------------------------------------------------------

    @property
    def learner_batch_size(self) -> int:
        """Transitions per learner step: batch_size x num_sgd_steps_per_step."""
        return self._config.batch_size * self._config.num_sgd_steps_per_step

    def make_replay_tables(self, environment_spec=None) -> list:
        """The Reverb tables of `replay`: one per game (uniform sampling, FIFO), `MinSize`
        offline or `SampleToInsertRatio` online, plus the offline tables an online agent
        mixes in (`ReplayConfig.offline_ratio`)."""
        self._check_environment_spec(environment_spec)  # the signature is the suite's
        from scaled_ql.datasets import make_tables

        return [table for tables in self._replay.tables_configs(self._games)
                for table in make_tables(tables)]

    def make_dataset_iterator(self, replay_client, *, should_end=None,
                              should_stop=None) -> Iterator[Transition]:
        """Batches sampled from the tables with the per-game weights (and the online/offline
        split), waiting at most `replay.sampler_timeout_ms` for a sample.

        While a sample is blocked, both are asked every `replay.sampler_poll_ms`:
        `should_end()` True ends the stream with `replay.DataEnded` (e.g. the actors' step
        budget is spent), `should_stop()` True fails it with the timeout error without waiting
        out the rest (the program is stopping).
        """
        keys, weights = self._replay.sampled_tables(self._games, self._game_weights)
        return ReplaySampler(replay_client.server_address, keys, weights,
                             batch_size=self.learner_batch_size,
                             timeout_ms=self._replay.sampler_timeout_ms,
                             poll_ms=self._replay.sampler_poll_ms,
                             should_end=should_end, should_stop=should_stop)

    def make_offline_dataset_iterator(self, data_dir: str, *, selection=None,
                                      layout: str | None = None, shuffle_buffer: int = 10_000,
                                      seed: int | None = None,
                                      cache: bool = False) -> Iterator[Transition]:
        """Batches streamed straight from RLDS datasets on disk (single-process pretraining);
        `cache` keeps the decoded transitions in memory after the first pass (small datasets:
        `datasets.PipelineConfig.cache`)."""
        from scaled_ql.datasets import PipelineConfig, numpy_iterator
        from scaled_ql.datasets import rlds

        kwargs = {} if selection is None else {"selection": selection}
        pipeline = PipelineConfig(
            games=self._games, data_dir=data_dir, layout=layout or rlds.AUTO_LAYOUT,
            transition=self.transition_config(),
            game_weights=self._game_weights, batch_size=self.learner_batch_size,
            shuffle_buffer=shuffle_buffer, seed=seed, cache=cache, **kwargs)
        return numpy_iterator(pipeline)

    def transition_config(self):
        """The data-side settings (n-step, discount, reward clipping) of this learner."""
        from scaled_ql.datasets import TransitionConfig

        clip = self._config.reward_clip
        if math.isfinite(clip) and clip != 1.0:
            raise ValueError(f"ScaledQLConfig.reward_clip={clip}: the data pipeline clips "
                             "rewards to [-1, 1] (1.0) or not at all (inf)")
        return TransitionConfig(n_step=self._config.n_step, discount=self._config.discount,
                                clip_rewards=math.isfinite(clip))

    def make_adder(self, replay_client, *, game: str | None = None, should_stop=None):
        """The adder of an actor playing `game` (default: the builder's only game): n-step
        `Transition`s of its play into the game's online table, with this learner's n-step,
        discount and reward clipping (`adder.TransitionAdder`; writes block on the
        sample-to-insert limiter, at most `replay.adder_timeout_ms`, and give up with
        `AdderStopped` once `should_stop()` says so).

        None for offline tables: pre-training records no experience.
        """
        if not self._replay.online:
            return None
        from scaled_ql.agents.scaled_ql.adder import TransitionAdder
        from scaled_ql.datasets import table_name

        if game is None:
            if len(self._games) != 1:
                raise ValueError(f"make_adder: name the game the actor plays (game=...), one "
                                 f"of {list(self._games)}")
            game = self._games[0]
        game_id = self.game_id(game)
        transition = self.transition_config()
        return TransitionAdder(
            replay_client, table_name(online_table_key(self._games[game_id])), game_id=game_id,
            n_step=transition.n_step, discount=transition.discount,
            clip_rewards=transition.clip_rewards, observation=self.observation,
            max_in_flight_items=self._replay.adder_max_in_flight_items,
            timeout_ms=self._replay.adder_timeout_ms, should_stop=should_stop)

    def make_environment(self, game: str, seed: int | None = None, **kwargs):
        """A dm_env environment of `game` (one of this builder's games), through its suite;
        kwargs as the suite's environment takes them (mode, difficulty, sticky_action_prob,
        max_episode_frames), unset ones at the suite's defaults.  `seed` may come second, so
        `functools.partial(builder.make_environment, game)` is an Acme environment factory
        (seed -> environment)."""
        if seed is not None:
            kwargs["seed"] = seed
        return self._suite.make_environment(self._games[self.game_id(game)], **kwargs)

    # -- actors and learners ------------------------------------------------------------------

    def make_actor(self, random_key: jax.Array, policy_network, adder=None,
                   variable_source: core.VariableSource | None = None) -> core.Actor:
        return make_actor(policy_network, random_key, variable_source=variable_source,
                          adder=adder, variable_update_period=self._acting.variable_update_period)

    def pretrained_meta(self):
        """(metadata, where) of `finetune`'s checkpoint (`checkpointing.read_run_meta`),
        checked against this builder's suite; None without `finetune`.

        Raises:
          FileNotFoundError: no such run directory or checkpoint.
          SuiteMismatchError: the checkpoint belongs to another suite than the games.
        """
        if self._finetune is None:
            return None
        from scaled_ql.agents.scaled_ql.checkpointing import check_suite, read_run_meta

        meta, where = read_run_meta(self._finetune.checkpoint, self._finetune.checkpoint_step)
        check_suite(meta, self._games, where)
        return meta, where

    def reused_heads(self) -> tuple[str, ...]:
        """The games whose head `make_initial_state` copies from the checkpoint."""
        finetune = self._finetune
        if finetune is None or finetune.from_scratch or not finetune.reuse_heads:
            return ()
        meta, _ = self.pretrained_meta()
        return tuple(g for g in self._games if g in meta.games)

    def make_initial_state(self, random_key: jax.Array) -> TrainingState:
        """The learner's starting state: target = online parameters, a fresh optimizer, step 0.

        Without `finetune` (or from scratch) a fresh network; otherwise the pre-trained one
        moved onto this builder's games (`finetune.rehead_params`): its torso, and each
        game's own head when the checkpoint has one and `reuse_heads` (fresh heads else).

        Raises:
          FileNotFoundError, SuiteMismatchError: as `pretrained_meta`.
          HeadMismatchError: the checkpoint's torso is not this config's network, or a reused
            head has another action count.
        """
        networks = self.make_networks()
        finetune = self._finetune
        if finetune is None:
            return init_training_state(networks, self._config, random_key)
        self.pretrained_meta()  # the suite check, also from scratch
        if finetune.from_scratch:
            return init_training_state(networks, self._config, random_key)
        from scaled_ql.agents.scaled_ql.finetune import rehead_params
        from scaled_ql.agents.scaled_ql.checkpointing import load_checkpoint

        loaded = load_checkpoint(finetune.checkpoint, finetune.checkpoint_step)
        init_key, _ = jax.random.split(random_key)  # as init_training_state splits it
        _, params, _ = rehead_params(
            loaded.params, network=self._config.network, source_games=loaded.meta.games,
            source_num_actions=loaded.meta.num_actions, games=self._games,
            num_actions=self._num_actions, key=init_key, reuse_heads=finetune.reuse_heads,
            observation=loaded.meta.observation)
        return init_training_state(networks, self._config, random_key, params=params)

    def make_learner(self, random_key: jax.Array, networks: ScaledQLNetworks,
                     dataset: Iterator[Transition], replay_client=None,
                     counter: counting.Counter | None = None, *, initial_state=None,
                     logger: loggers.Logger | None = None) -> ScaledQLLearner:
        """The learner on `dataset`, from `initial_state` (default: `make_initial_state`
        under `finetune`, else a fresh network from `random_key`), with a frozen torso when
        `finetune.freeze_torso`.  `counter` receives `steps` (Acme's learner convention)."""
        del replay_client  # uniform sampling: no priorities to update
        if logger is None and self._logger_factory is not None:
            logger = self._logger_factory("learner")
        if initial_state is None and self._finetune is not None:
            initial_state = self.make_initial_state(random_key)
        if self._finetune is not None and self._finetune.freeze_torso:
            from scaled_ql.agents.scaled_ql.finetune import freeze_torso

            networks = freeze_torso(networks)
        return ScaledQLLearner(
            networks, self._config, dataset, random_key, games=self._games, counter=counter,
            logger=logger, max_consecutive_skips=self._max_consecutive_skips,
            initial_state=initial_state)
