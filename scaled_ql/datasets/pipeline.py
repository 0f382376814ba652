"""The multi-game training stream: games mixed by weight, shuffled, batched, as numpy or JAX.

    per game: RLDS episodes (runs mixed) -> transitions (interleaved episodes) [-> cache] -> repeat
    all games: sample_from_datasets(weights) -> shuffle -> batch -> prefetch -> numpy [-> device]

The games of one stream belong to one suite (one observation shape per batch, the suite's
`types.ObservationSpec`); `PipelineConfig` refuses a mix, naming the games of each suite.

Memory: each game keeps `episode_cycle` decoded episodes (Atari: 7 KB per step; MinAtar: 1 KB)
plus the shuffle buffer (`shuffle_buffer` transitions of 2 x 28 KB for Atari, 2 x 1 KB for
MinAtar); nothing reads a whole dataset, unless `cache` asks to keep the decoded transitions
of a small one (MinAtar: 2 KB per transition, so 100,000 transitions take 200 MB) in memory:
reading RLDS costs about 10 ms per episode plus the per-step decoding, which on 2 cores bounds
a small learner, and with the cache only the first pass over the selection pays it.
"""

import dataclasses
import os
import queue
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from scaled_ql import types
from scaled_ql.datasets import rlds
from scaled_ql.datasets.rlu_atari import EpisodeSelection, game_episodes, open_run
from scaled_ql.datasets.transitions import TransitionConfig, game_transitions, transition_spec


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The offline data stream of a multi-game run.

    Attributes:
      games: the run's ordered game list, all of one suite; a transition's `game_id` indexes it.
      data_dir: TFDS data_dir holding `<layout>/<Game>_run_<k>/<version>/` (None: TFDS default).
      layout: `rlu_atari`, `rlu_atari_checkpoints_ordered` (for MinAtar games these mean
        `rlu_minatar` / `rlu_minatar_checkpoints_ordered`, which are accepted too), or `auto`
        (per game/run, the plain layout if it exists, else the checkpoint-ordered one).
      selection: runs, checkpoint range and episode fraction to read per game.
      transition: stacking, n-step, discount and reward clipping.
      game_weights: sampling weight per game (normalized); None samples games uniformly.
      batch_size: transitions per batch.
      shuffle_buffer: transitions in the shuffle buffer (mixed over games).
      episode_cycle: episodes of one game read in parallel and interleaved.
      seed: seed of file order, game sampling and shuffling (None: nondeterministic).
      cache: keep each game's decoded transitions in memory after the first pass over its
        selection (later passes read memory in the first pass's episode order; the shuffle
        buffer still mixes them).  For small datasets: every selected transition is held, so
        Atari's 56 KB per transition rules it out beyond a few thousand episodes.
    """

    games: tuple[str, ...]
    data_dir: str | None = None
    layout: str = rlds.AUTO_LAYOUT
    selection: EpisodeSelection = EpisodeSelection()
    transition: TransitionConfig = TransitionConfig()
    game_weights: tuple[float, ...] | None = None
    batch_size: int = 256
    shuffle_buffer: int = 10_000
    episode_cycle: int = 4
    seed: int | None = None
    cache: bool = False

    def __post_init__(self):
        if not self.games or len(set(self.games)) != len(self.games):
            raise ValueError(f"games must be a non-empty list of distinct names, got {self.games}")
        from scaled_ql.environments.suites import suite_of

        suite_of(self.games)  # ValueError naming the games of each suite when they mix
        if self.game_weights is not None:
            if len(self.game_weights) != len(self.games):
                raise ValueError(
                    f"{len(self.game_weights)} game_weights for {len(self.games)} games"
                )
            if any(w < 0 for w in self.game_weights) or sum(self.game_weights) <= 0:
                raise ValueError(
                    f"game_weights must be >= 0 with a positive sum: {self.game_weights}"
                )
        if self.layout not in (*rlds.LAYOUTS, rlds.AUTO_LAYOUT):
            raise ValueError(
                f"layout must be one of {sorted(rlds.LAYOUTS)} or "
                f"{rlds.AUTO_LAYOUT!r}, got {self.layout!r}"
            )
        if self.layout != rlds.AUTO_LAYOUT:
            for game in self.games:
                rlds.resolve_layout(self.layout, game)  # a MinAtar layout for an ALE game
        for name in ("batch_size", "shuffle_buffer", "episode_cycle"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def observation(self) -> types.ObservationSpec:
        """What a transition's observation is: the games' suite spec (stack from `transition`)."""
        from scaled_ql.environments.suites import suite_of

        return self.transition.observation(suite_of(self.games).observation)

    @property
    def weights(self) -> np.ndarray:
        """Normalized per-game sampling weights."""
        weights = (
            np.ones(len(self.games)) if self.game_weights is None else np.asarray(self.game_weights)
        )
        return weights / weights.sum()


def game_transition_dataset(config: PipelineConfig, game_id: int, *, repeat: bool = True):
    """Unbatched transitions of `config.games[game_id]`, repeated forever when `repeat`
    (with `config.cache`, the first pass's transitions are kept and replayed)."""
    game = config.games[game_id]
    seed = None if config.seed is None else config.seed + 1000 * game_id
    episodes = game_episodes(
        game,
        config.selection,
        data_dir=config.data_dir,
        layout=config.layout,
        shuffle_files=True,
        repeat=repeat and not config.cache,
        seed=seed,
        steps_as_tensors=True,
    )
    transitions = game_transitions(
        episodes,
        config.transition,
        game=game,
        game_id=game_id,
        episode_cycle=config.episode_cycle,
        deterministic=config.seed is not None,
    )
    if config.cache:
        transitions = transitions.cache()
        if repeat:
            transitions = transitions.repeat()
    return transitions


def make_dataset(config: PipelineConfig):
    """The batched, mixed, shuffled `tf.data.Dataset` of `Transition`s ([B, ...] each)."""
    import tensorflow as tf

    per_game = [game_transition_dataset(config, i) for i in range(len(config.games))]
    mixed = tf.data.Dataset.sample_from_datasets(
        per_game, weights=config.weights.tolist(), seed=config.seed, stop_on_empty_dataset=True
    )
    spec = transition_spec(config.observation)
    if mixed.element_spec != spec:
        raise AssertionError(f"pipeline yields {mixed.element_spec}, expected {spec}")
    return (
        mixed.shuffle(config.shuffle_buffer, seed=config.seed)
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


class _NamedErrors:
    """Turns a TFRecord read error deep inside tf.data into one naming the broken file."""

    def __init__(self, dataset, config: PipelineConfig):
        self._iterator = dataset.as_numpy_iterator()
        self._config = config

    def __iter__(self):
        return self

    def __next__(self) -> types.Transition:
        import tensorflow as tf

        from scaled_ql.datasets.validation import locate_corruption

        try:
            return next(self._iterator)
        except tf.errors.DataLossError as error:
            runs = [
                open_run(game, run, data_dir=self._config.data_dir, layout=self._config.layout)
                for game in self._config.games
                for run in self._config.selection.runs
            ]
            found = locate_corruption(runs) or "no broken shard found on a second read"
            raise OSError(f"reading the training data failed ({error.message}): {found}") from None


def numpy_iterator(config: PipelineConfig) -> Iterator[types.Transition]:
    """Batches of numpy `Transition`s from `make_dataset(config)`."""
    return _NamedErrors(make_dataset(config), config)


def device_prefetch(iterator: Iterator, size: int = 2, device=None) -> Iterator:
    """Moves batches to a JAX device in a background thread, `size` batches ahead."""
    import jax

    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    buffer: queue.Queue = queue.Queue(maxsize=size)
    done = object()

    def produce():
        try:
            for batch in iterator:
                buffer.put(jax.device_put(batch, device))
        except Exception as error:  # noqa: BLE001 -- re-raised in the consumer
            buffer.put(error)
        buffer.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := buffer.get()) is not done:
        if isinstance(item, Exception):
            raise item
        yield item


def available_games(data_dir: str | os.PathLike, layout: str = rlds.RLU_ATARI) -> Sequence[str]:
    """Games (catalogue names, "minatar/Breakout" for `rlu_minatar`) with at least one complete
    run of `layout` (a name of `rlds.LAYOUTS`) in `data_dir`."""
    if layout not in rlds.LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(rlds.LAYOUTS)}, got {layout!r}")
    root = os.path.join(os.fspath(data_dir), layout)
    if not os.path.isdir(root):
        return []
    version = rlds.LAYOUTS[layout].version
    games = set()
    for name in os.listdir(root):
        parsed = rlds.parse_config_name(layout, name)
        if parsed and os.path.exists(os.path.join(root, name, version, "dataset_info.json")):
            games.add(parsed[0])
    return sorted(games)
