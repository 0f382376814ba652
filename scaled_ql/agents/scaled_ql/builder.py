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
"""

import dataclasses
import math
from collections.abc import Iterator, Sequence

import jax
from acme import core
from acme.agents.jax import builders
from acme.utils import counting, loggers

from scaled_ql.agents.scaled_ql.actor import EVAL_EPSILON, make_actor, make_policy
from scaled_ql.agents.scaled_ql.config import ScaledQLConfig
from scaled_ql.agents.scaled_ql.learner import ScaledQLLearner
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
                raise ValueError(f"ActingConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.variable_update_period < 1:
            raise ValueError("ActingConfig.variable_update_period must be >= 1")


class ScaledQLBuilder(builders.ActorLearnerBuilder):
    """Builds the Scaled QL networks, learner, actors and data streams for a list of games."""

    def __init__(
        self,
        config: ScaledQLConfig,
        games: Sequence[str],
        *,
        acting: ActingConfig = ActingConfig(),
        replay_max_size: int = 1_000_000,
        replay_min_size: int = 1_000,
        sampler_timeout_ms: int = 60_000,
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
          replay_max_size: items per Reverb table (one table per game).
          replay_min_size: items a table needs before the learner may sample it.
          sampler_timeout_ms: how long the learner waits on an empty table before failing.
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
        self._replay_max_size = replay_max_size
        self._replay_min_size = replay_min_size
        self._sampler_timeout_ms = sampler_timeout_ms
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

    def make_networks(self) -> ScaledQLNetworks:
        return make_networks(self._config.network, self._num_actions,
                             observation=self.observation)

    def make_policy(self, networks: ScaledQLNetworks, game: str, evaluation: bool = True):
        """The epsilon-greedy policy of `game`'s head (eval or training epsilon)."""
        epsilon = self._acting.eval_epsilon if evaluation else self._acting.train_epsilon
        return make_policy(networks, self.game_id(game), epsilon, self._config.compute_dtype)

    # -- data --------------------------------------------------------------------------------

    def _replay_config(self, samples_per_insert: float | None = None):
        from scaled_ql.datasets import ReplayTablesConfig

        return ReplayTablesConfig(
            games=self._games, max_size=self._replay_max_size,
            min_size_to_sample=self._replay_min_size, samples_per_insert=samples_per_insert)

    @property
    def learner_batch_size(self) -> int:
        """Transitions per learner step: batch_size x num_sgd_steps_per_step."""
        return self._config.batch_size * self._config.num_sgd_steps_per_step

    def make_replay_tables(self, environment_spec=None) -> list:
        """One Reverb table per game (uniform sampling, `MinSize` limiter for offline data)."""
        del environment_spec  # the signature comes from the Transition spec
        from scaled_ql.datasets import make_tables

        return make_tables(self._replay_config())

    def make_dataset_iterator(self, replay_client) -> Iterator[Transition]:
        """Batches sampled from the per-game tables with the per-game weights."""
        from scaled_ql.datasets import ReverbSampler

        address = replay_client.server_address
        return ReverbSampler(address, self._games, batch_size=self.learner_batch_size,
                             weights=self._game_weights,
                             rate_limiter_timeout_ms=self._sampler_timeout_ms)

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

    def make_adder(self, replay_client):
        """Offline pre-training records no experience: there is no adder."""
        del replay_client
        return None

    def make_environment(self, game: str, **kwargs):
        """A dm_env environment of `game` (one of this builder's games), through its suite;
        kwargs as the suite's environment takes them (mode, difficulty, sticky_action_prob,
        max_episode_frames, seed), unset ones at the suite's defaults."""
        return self._suite.make_environment(self._games[self.game_id(game)], **kwargs)

    # -- actors and learners ------------------------------------------------------------------

    def make_actor(self, random_key: jax.Array, policy_network, adder=None,
                   variable_source: core.VariableSource | None = None) -> core.Actor:
        return make_actor(policy_network, random_key, variable_source=variable_source,
                          adder=adder, variable_update_period=self._acting.variable_update_period)

    def make_learner(self, random_key: jax.Array, networks: ScaledQLNetworks,
                     dataset: Iterator[Transition], replay_client=None,
                     counter: counting.Counter | None = None, *, initial_state=None,
                     logger: loggers.Logger | None = None) -> ScaledQLLearner:
        del replay_client  # uniform sampling: no priorities to update
        if logger is None and self._logger_factory is not None:
            logger = self._logger_factory("learner")
        return ScaledQLLearner(
            networks, self._config, dataset, random_key, games=self._games, counter=counter,
            logger=logger, max_consecutive_skips=self._max_consecutive_skips,
            initial_state=initial_state)
