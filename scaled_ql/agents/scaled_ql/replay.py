"""The builder's Reverb side: which tables, how the learner samples them, how actors write.

Two layouts, picked by `ReplayConfig.samples_per_insert`:

- offline (None): one table per game, "transitions/<Game>", gated by `MinSize`; feeders write
  RLDS transitions into it (`datasets.feed`), there are no actors recording (no adder).
- online (a number): one table per game, "transitions/<Game>/online", gated by a
  `SampleToInsertRatio` limiter; actors write their own play into it through the builder's
  adder (`adder.TransitionAdder`).  With `offline_ratio > 0` the games' offline tables are
  added too (fed from RLDS as above), and each batch takes that fraction from them.

The learner's iterator (`ReplaySampler`) waits for samples in slices of `sampler_poll_ms`: a
slice that times out asks the program whether the data has ended (`should_end`, e.g. the
actors spent their step budget: `DataEnded`) or it is stopping (`should_stop`), and otherwise
waits again, up to `sampler_timeout_ms` in total (then `SamplerTimeoutError` with every table's
size, instead of a hang).
"""

import dataclasses
import time
from collections.abc import Callable, Sequence

ONLINE_SUFFIX = "/online"


def online_table_key(game: str) -> str:
    """The online table's key for `datasets.table_name` ('transitions/<Game>/online')."""
    return f"{game}{ONLINE_SUFFIX}"


class DataEnded(Exception):
    """The sampler is blocked and `should_end()` says no more data will come."""


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Reverb tables, sampling and writing of a `ScaledQLBuilder`'s agent (module docstring).

    Attributes:
      max_size: items per game table (the online table when online) before FIFO eviction.
      min_size: items a table needs before the learner may sample it.
      samples_per_insert: None for offline tables (`MinSize`, fed from RLDS); a number for
        online tables written by actors (`SampleToInsertRatio`: learner samples per inserted
        transition).
      samples_per_insert_tolerance: relative slack of that limiter (`ReplayTablesConfig`)
        [default 0.1, Acme's convention].
      offline_ratio: online only: fraction of each batch sampled from the games' offline
        tables, which are then added [default 0.0: none].
      offline_max_size, offline_min_size: size and sampling threshold of those offline tables.
      sampler_timeout_ms: the learner fails after waiting this long in total for a sample.
      sampler_poll_ms: a blocked sample is re-checked this often (`should_end`, `should_stop`);
        None waits `sampler_timeout_ms` in one piece.
      adder_max_in_flight_items: transitions an actor may have written but not yet confirmed
        by Reverb [default 1: the sample-to-insert limiter then holds an actor within one
        step of what the learner has consumed; a larger window lets actors run ahead].
      adder_timeout_ms: the longest one write may block on the limiter (None: no limit).
    """

    max_size: int = 1_000_000
    min_size: int = 1_000
    samples_per_insert: float | None = None
    samples_per_insert_tolerance: float = 0.1
    offline_ratio: float = 0.0
    offline_max_size: int = 100_000
    offline_min_size: int = 1_000
    sampler_timeout_ms: int = 60_000
    sampler_poll_ms: int | None = None
    adder_max_in_flight_items: int = 1
    adder_timeout_ms: int | None = 600_000

    def __post_init__(self):
        for name in ("max_size", "min_size", "offline_max_size", "offline_min_size",
                     "sampler_timeout_ms", "adder_max_in_flight_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"ReplayConfig.{name} must be >= 1, got {getattr(self, name)}")
        for small, large in (("min_size", "max_size"), ("offline_min_size", "offline_max_size")):
            if getattr(self, small) > getattr(self, large):
                raise ValueError(f"ReplayConfig.{small} ({getattr(self, small)}) must be <= "
                                 f"{large} ({getattr(self, large)})")
        if self.samples_per_insert is not None and self.samples_per_insert <= 0:
            raise ValueError(f"ReplayConfig.samples_per_insert must be > 0 or None, got "
                             f"{self.samples_per_insert}")
        if self.samples_per_insert_tolerance <= 0:
            raise ValueError("ReplayConfig.samples_per_insert_tolerance must be > 0")
        if not 0.0 <= self.offline_ratio < 1.0:
            raise ValueError(f"ReplayConfig.offline_ratio must be in [0, 1), got "
                             f"{self.offline_ratio}")
        if self.offline_ratio > 0 and not self.online:
            raise ValueError("ReplayConfig.offline_ratio mixes offline tables into online ones: "
                             "it needs samples_per_insert (online tables)")
        if self.sampler_poll_ms is not None and self.sampler_poll_ms < 1:
            raise ValueError(f"ReplayConfig.sampler_poll_ms must be >= 1 or None, got "
                             f"{self.sampler_poll_ms}")
        if self.adder_timeout_ms is not None and self.adder_timeout_ms < 1:
            raise ValueError("ReplayConfig.adder_timeout_ms must be >= 1 or None")

    @property
    def online(self) -> bool:
        """Whether actors write the tables (a sample-to-insert limiter)."""
        return self.samples_per_insert is not None

    def tables_configs(self, games: Sequence[str]) -> list:
        """The `datasets.ReplayTablesConfig`s of `games`: online and/or offline tables."""
        from scaled_ql.datasets import ReplayTablesConfig

        games = tuple(games)
        if not self.online:
            return [ReplayTablesConfig(games=games, max_size=self.max_size,
                                       min_size_to_sample=self.min_size)]
        configs = [ReplayTablesConfig(
            games=tuple(online_table_key(g) for g in games), max_size=self.max_size,
            min_size_to_sample=self.min_size, samples_per_insert=self.samples_per_insert,
            samples_per_insert_tolerance=self.samples_per_insert_tolerance)]
        if self.offline_ratio > 0:
            configs.append(ReplayTablesConfig(games=games, max_size=self.offline_max_size,
                                              min_size_to_sample=self.offline_min_size))
        return configs

    def sampled_tables(self, games: Sequence[str], game_weights: Sequence[float] | None = None
                       ) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """(table keys, sampling weight of each) for the learner: the games' weights (uniform
        by default), split (1 - offline_ratio, offline_ratio) between online and offline
        tables when mixing."""
        games = tuple(games)
        weights = tuple(game_weights) if game_weights is not None else (1.0,) * len(games)
        if not self.online:
            return games, weights
        keys = tuple(online_table_key(g) for g in games)
        if self.offline_ratio == 0:
            return keys, weights
        online = tuple(w * (1.0 - self.offline_ratio) for w in weights)
        return keys + games, online + tuple(w * self.offline_ratio for w in weights)


class ReplaySampler:
    """Batches from Reverb tables (a `datasets.ReverbSampler`) that wait in short slices.

    A slice that times out rebuilds the stream, unless `should_end()` says no data will come
    (`DataEnded`), or `timeout_ms` passed in total or `should_stop()` (then the sampler's
    `SamplerTimeoutError`, naming every table's size).
    """

    def __init__(self, address: str, keys: Sequence[str], weights: Sequence[float] | None, *,
                 batch_size: int, timeout_ms: int, poll_ms: int | None = None,
                 should_end: Callable[[], bool] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        poll_ms = timeout_ms if poll_ms is None else min(poll_ms, timeout_ms)
        self._args = dict(server_address=address, games=tuple(keys), batch_size=batch_size,
                          weights=None if weights is None else tuple(weights),
                          rate_limiter_timeout_ms=poll_ms)
        self._timeout_s = timeout_ms / 1000
        self._one_slice = poll_ms >= timeout_ms
        self._should_end = should_end or (lambda: False)
        self._should_stop = should_stop or (lambda: False)
        self._sampler = None

    def __iter__(self):
        return self

    def __next__(self):
        from scaled_ql.datasets import ReverbSampler, SamplerTimeoutError

        started = time.monotonic()
        while True:
            if self._sampler is None:
                self._sampler = ReverbSampler(**self._args)
            try:
                return next(self._sampler)
            except SamplerTimeoutError:
                self._sampler = None
                if self._should_end():
                    raise DataEnded() from None
                if (self._one_slice or time.monotonic() - started > self._timeout_s
                        or self._should_stop()):
                    raise
