"""Serving transitions through Reverb: one table per game, feeders, a weighted learner sampler.

    feeder(game)  --TrajectoryWriter--> table "transitions/<Game>"  --TrajectoryDataset--+
    feeder(game') --TrajectoryWriter--> table "transitions/<Game'>" --TrajectoryDataset--+-> mix

- Tables sample uniformly and evict the oldest item (FIFO) once `max_size` is reached.
  Offline pre-training gates sampling with `MinSize`; online fine-tuning sets
  `samples_per_insert` and gets a `SampleToInsertRatio` limiter.
- The item signature is derived from `transitions.transition_spec` (the same spec the tf.data
  pipeline yields), never written out by hand.  One item = one `Transition` (no time axis).
  Its observation is the game suite's (`ReplayTablesConfig.observation`, by default that of
  the tables' games: Atari [84, 84, 4], MinAtar [10, 10, 10]); the tables of one config hold
  games of one suite.  A table key is a game name, optionally followed by "/<tag>"
  (`transitions/minatar/Breakout/online`).
- `acme.datasets.make_reverb_dataset` (dm-acme 0.4.0) takes one table, so the sampler mixes one
  `reverb.TrajectoryDataset` per table with `tf.data.Dataset.sample_from_datasets`.
- Every sampler uses a rate-limiter timeout: a table that stays empty (or starved) ends its
  stream, and the iterator raises `SamplerTimeoutError` naming the tables and their sizes.
- Addresses are `localhost:<port>`.  reverb 0.7.3's `reverb.Server` always listens on all
  interfaces (`[::]:<port>`) and has no option to bind to localhost only.
- Checkpoints: `checkpoint_tables` asks the server for a Reverb checkpoint and records our table
  settings next to it (`scaled_ql_tables.json` in the checkpoint folder);
  `start_server(config, checkpoint_dir=...)` restores the newest one.  Reverb restores a table
  with the settings it was checkpointed with and ignores the ones it is given (size, rate
  limiter), silently; we compare the recorded settings with the requested ones first and warn
  (`ReplayConfigChangedWarning`) naming each table and field that differs.
"""

import dataclasses
import json
import logging
import os
import pathlib
import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from scaled_ql import types
from scaled_ql.datasets.transitions import transition_spec

TABLE_PREFIX = "transitions/"


class SamplerTimeoutError(TimeoutError):
    """A Reverb table gave no sample within the rate-limiter timeout."""


class ReplayConfigChangedWarning(UserWarning):
    """A Reverb checkpoint being restored was made with other table settings (Reverb keeps the
    checkpointed ones)."""


TABLES_FILE = "scaled_ql_tables.json"
TABLES_FORMAT = "scaled-ql/reverb-tables"
_log = logging.getLogger(__name__)


def table_name(game: str) -> str:
    """The Reverb table holding one game's transitions."""
    return f"{TABLE_PREFIX}{game}"


def observation_of_tables(keys: Sequence[str]) -> types.ObservationSpec:
    """The observation spec of the suite of the games behind table keys (a game name, or a
    game name followed by "/<tag>", e.g. "Pong/online").

    Raises:
      ValueError: a key names no game, or the games belong to different suites (naming them).
    """
    from scaled_ql.environments.games import get_game
    from scaled_ql.environments.suites import suite_of

    games = []
    for key in keys:
        try:
            games.append(get_game(key).name)
        except ValueError:
            head, sep, _ = key.rpartition("/")
            if not sep:
                raise
            games.append(get_game(head).name)  # ValueError naming the game part
    return suite_of(games).observation


@dataclasses.dataclass(frozen=True)
class ReplayTablesConfig:
    """Per-game Reverb tables.

    Attributes:
      games: one table per game, in the run's game order.
      max_size: items per table before the oldest are evicted.
      min_size_to_sample: items a table must hold before it can be sampled.
      samples_per_insert: None for offline pre-training (a `MinSize` limiter: feeders insert
        freely); a number for online fine-tuning (`SampleToInsertRatio`).
      samples_per_insert_tolerance: allowed relative deviation from `samples_per_insert`
        (Acme's convention: error buffer = min_size_to_sample x samples_per_insert x this).
      observation: the observation spec of the item signature; None (default) is the suite's
        of the games (`observation_of_tables`), which must all belong to one suite.
    """

    games: tuple[str, ...]
    max_size: int = 1_000_000
    min_size_to_sample: int = 1_000
    samples_per_insert: float | None = None
    samples_per_insert_tolerance: float = 0.1
    observation: types.ObservationSpec | None = None

    def __post_init__(self):
        if not self.games or len(set(self.games)) != len(self.games):
            raise ValueError(f"games must be a non-empty list of distinct names, got {self.games}")
        suite_observation = observation_of_tables(self.games)  # one suite, or a ValueError
        if self.observation is not None and self.observation.name != suite_observation.name:
            raise ValueError(
                f"observation is a {self.observation.name} spec; the tables' games "
                f"{list(self.games)} are {suite_observation.name} games"
            )
        if not 1 <= self.min_size_to_sample <= self.max_size:
            raise ValueError(
                f"need 1 <= min_size_to_sample ({self.min_size_to_sample}) "
                f"<= max_size ({self.max_size})"
            )
        if self.samples_per_insert is not None and self.samples_per_insert <= 0:
            raise ValueError(f"samples_per_insert must be > 0, got {self.samples_per_insert}")
        if self.samples_per_insert_tolerance <= 0:
            raise ValueError("samples_per_insert_tolerance must be > 0")

    @property
    def observation_spec(self) -> types.ObservationSpec:
        """`observation`, or the suite's of the games when it is None."""
        return self.observation or observation_of_tables(self.games)


def _rate_limiter(config: ReplayTablesConfig):
    import reverb

    if config.samples_per_insert is None:
        return reverb.rate_limiters.MinSize(config.min_size_to_sample)
    spi = config.samples_per_insert
    error_buffer = config.min_size_to_sample * spi * config.samples_per_insert_tolerance
    error_buffer = max(error_buffer, 2.0 * max(1.0, spi))  # Reverb needs room for one step
    return reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=spi,
        min_size_to_sample=config.min_size_to_sample,
        error_buffer=error_buffer,
    )


def make_tables(config: ReplayTablesConfig) -> list:
    """One uniform-sampling FIFO `reverb.Table` per game, signed with the Transition spec."""
    import reverb

    signature = transition_spec(config.observation_spec)
    return [
        reverb.Table(
            name=table_name(game),
            sampler=reverb.selectors.Uniform(),
            remover=reverb.selectors.Fifo(),
            max_size=config.max_size,
            rate_limiter=_rate_limiter(config),
            signature=signature,
        )
        for game in config.games
    ]


def start_server(config: ReplayTablesConfig, port: int | None = None, *,
                 checkpoint_dir: str | os.PathLike | None = None):
    """A `reverb.Server` with `make_tables(config)`; reach it at `address(server)`.

    With `checkpoint_dir`, the server restores the newest complete Reverb checkpoint there (if
    any) and `client.checkpoint()` / `checkpoint_tables` write new ones there.  Before the
    restore, the settings recorded with that checkpoint are compared with `config`: a table the
    checkpoint holds but `config` lacks is an error, any other difference a
    `ReplayConfigChangedWarning` (Reverb keeps the checkpointed settings).
    """
    import reverb

    checkpointer = None
    if checkpoint_dir is not None:
        latest = latest_checkpoint(checkpoint_dir)
        if latest is not None:
            check_restored_tables(latest, config)
        checkpointer = reverb.checkpointers.DefaultCheckpointer(os.fspath(checkpoint_dir))
    return reverb.Server(make_tables(config), port=port, checkpointer=checkpointer)


def table_settings(config: ReplayTablesConfig) -> dict[str, dict]:
    """What each table of `config` is made with, by table name (JSON data)."""
    settings = {"sampler": "uniform", "remover": "fifo", "max_size": config.max_size,
                "min_size_to_sample": config.min_size_to_sample,
                "samples_per_insert": config.samples_per_insert,
                "samples_per_insert_tolerance": config.samples_per_insert_tolerance,
                "observation_shape": list(config.observation_spec.shape)}
    return {table_name(game): dict(settings) for game in config.games}


def checkpoint_tables(server_address: str, config: ReplayTablesConfig) -> pathlib.Path:
    """Writes a Reverb checkpoint of the server at `server_address` (started with
    `start_server(config, checkpoint_dir=...)`) and records `config`'s table settings in it.

    Returns the checkpoint's folder.
    """
    import reverb

    path = pathlib.Path(reverb.Client(server_address).checkpoint())
    record = {"format": TABLES_FORMAT, "version": 1, "tables": table_settings(config)}
    tmp = path / (TABLES_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, path / TABLES_FILE)
    return path


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> pathlib.Path | None:
    """The checkpoint Reverb's default checkpointer restores: the newest folder (by its
    timestamp name) holding Reverb's DONE marker; None if there is none."""
    root = pathlib.Path(checkpoint_dir)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if (p / "DONE").exists())
    return done[-1] if done else None


def check_restored_tables(checkpoint: str | os.PathLike, config: ReplayTablesConfig) -> list[str]:
    """Compares the settings recorded in a Reverb checkpoint folder with `config`.

    Returns the differences (also emitted as one `ReplayConfigChangedWarning` and a log
    warning).  Raises ValueError for a checkpointed table that `config` does not have: Reverb
    refuses to start then, with a message that does not say why.
    """
    checkpoint = pathlib.Path(checkpoint)
    requested = table_settings(config)
    record_path = checkpoint / TABLES_FILE
    if not record_path.exists():
        differences = [f"{checkpoint} has no {TABLES_FILE} (not written by checkpoint_tables): "
                       "its table settings cannot be compared; Reverb restores them as saved"]
    else:
        record = json.loads(record_path.read_text())
        if record.get("format") != TABLES_FORMAT:
            raise ValueError(f"{record_path}: not a {TABLES_FORMAT} record")
        saved = record["tables"]
        extra = sorted(set(saved) - set(requested))
        if extra:
            raise ValueError(
                f"Reverb checkpoint {checkpoint} holds table(s) {extra} that this configuration "
                f"does not have (tables: {sorted(requested)}); restore with the same games, or "
                "start without the checkpoint")
        differences = []
        for name in sorted(requested):
            if name not in saved:
                differences.append(f"table {name!r} is not in the checkpoint: it starts empty")
                continue
            for field in sorted(set(saved[name]) | set(requested[name])):
                old, new = saved[name].get(field), requested[name].get(field)
                if old != new:
                    differences.append(
                        f"table {name!r}: {field} is {old!r} in the checkpoint, {new!r} "
                        f"requested; Reverb keeps {old!r}")
    if differences:
        message = f"restoring Reverb checkpoint {checkpoint}: " + "; ".join(differences)
        warnings.warn(message, ReplayConfigChangedWarning, stacklevel=3)
        _log.warning(message)
    return differences


def address(server) -> str:
    """The client address of a server running in this process."""
    return f"localhost:{server.port}"


def feed(
    server_address: str,
    game: str,
    transitions: Iterable[types.Transition],
    *,
    max_items: int | None = None,
    max_in_flight_items: int = 32,
    timeout_ms: int | None = None,
) -> int:
    """Writes one game's transitions into its table, one item each; returns the item count.

    `transitions` are unbatched numpy `Transition`s, e.g. from
    `pipeline.game_transition_dataset(...).as_numpy_iterator()`.  With a
    `SampleToInsertRatio` table, writes block while the learner lags; `timeout_ms` bounds each
    wait (None waits); at most `max_in_flight_items` items are unconfirmed at a time.
    """
    import reverb

    client = reverb.Client(server_address)
    table = table_name(game)
    count = 0
    with client.trajectory_writer(num_keep_alive_refs=1) as writer:
        for transition in transitions:
            writer.append(transition)
            item = types.Transition(*(column[-1] for column in writer.history))
            writer.create_item(table, priority=1.0, trajectory=item)
            count += 1
            writer.flush(block_until_num_items=max_in_flight_items, timeout_ms=timeout_ms)
            if max_items is not None and count >= max_items:
                break
        writer.flush(timeout_ms=timeout_ms)
    return count


def make_sampler_dataset(
    server_address: str,
    games: Sequence[str],
    *,
    batch_size: int,
    weights: Sequence[float] | None = None,
    observation: types.ObservationSpec | None = None,
    rate_limiter_timeout_ms: int = 30_000,
    seed: int | None = None,
):
    """Batched `Transition`s sampled from the per-game tables with per-game weights.

    `observation` is the tables' observation spec (None: the suite's of `games`, which are
    table keys as in `ReplayTablesConfig.games`).
    """
    import reverb
    import tensorflow as tf

    if rate_limiter_timeout_ms < 0:
        raise ValueError("rate_limiter_timeout_ms must be >= 0: an infinite wait could hang")
    weights = np.ones(len(games)) if weights is None else np.asarray(weights, np.float64)
    if len(weights) != len(games) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"need one non-negative weight per game with a positive sum: {weights}")
    spec = transition_spec(observation or observation_of_tables(games))
    dtypes = tf.nest.map_structure(lambda s: s.dtype, spec)
    shapes = tf.nest.map_structure(lambda s: s.shape, spec)
    per_table = [
        reverb.TrajectoryDataset(
            server_address=server_address,
            table=table_name(game),
            dtypes=dtypes,
            shapes=shapes,
            max_in_flight_samples_per_worker=2 * batch_size,
            rate_limiter_timeout_ms=rate_limiter_timeout_ms,
        ).map(lambda sample: sample.data)
        for game in games
    ]
    mixed = tf.data.Dataset.sample_from_datasets(
        per_table, weights=(weights / weights.sum()).tolist(), seed=seed, stop_on_empty_dataset=True
    )
    return mixed.batch(batch_size, drop_remainder=True).prefetch(2)


class ReverbSampler:
    """Iterator of numpy `Transition` batches from Reverb that fails loudly instead of hanging.

    A table that cannot be sampled within the rate-limiter timeout ends its stream; the mixed
    stream then ends and `__next__` raises `SamplerTimeoutError` with every table's size.
    """

    def __init__(self, server_address: str, games: Sequence[str], *, batch_size: int, **kwargs):
        self._address = server_address
        self._games = tuple(games)
        self._timeout_ms = kwargs.get("rate_limiter_timeout_ms", 30_000)
        dataset = make_sampler_dataset(server_address, games, batch_size=batch_size, **kwargs)
        self._iterator = dataset.as_numpy_iterator()

    def __iter__(self) -> Iterator[types.Transition]:
        return self

    def __next__(self) -> types.Transition:
        try:
            return next(self._iterator)
        except StopIteration:
            import reverb

            info = reverb.Client(self._address).server_info(timeout=5)
            sizes = {
                game: info[table_name(game)].current_size if table_name(game) in info else "missing"
                for game in self._games
            }
            raise SamplerTimeoutError(
                f"no sample from Reverb at {self._address} within {self._timeout_ms} ms; "
                f"table sizes {sizes}: is a feeder writing to every table, and has each reached "
                "its min_size_to_sample?"
            ) from None
