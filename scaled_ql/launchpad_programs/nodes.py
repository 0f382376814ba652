"""The nodes of the distributed programs (see `pretrain.py` for the picture): the pretraining
feeders and evaluators, and the `Limiter` every program ends with; the pretraining learner is
in `learner_node.py`, the online fine-tuning program's own parts in `online_nodes.py`.

Every constructor takes plain, picklable values (the frozen `PretrainConfig`, a frozen
`ProgramOptions`, game tuples, strings) and Launchpad handles; heavy objects (TF datasets,
JAX networks, Reverb clients' datasets, checkpointers) are built inside the node process.
Each node's body runs under `supervision.guarded`, so a failure is recorded with the node's
name and stops the program.

Evaluation rounds.  The learner publishes a snapshot of its parameters at the same steps as
the single-process runner: every step with `step % eval_every < num_sgd_steps_per_step`
below `steps`, and the final step.  Every evaluator group evaluates every round, in order,
and appends its games' episodes to `eval_results.json` (`append_evaluation` merges the groups
of one step), under the rules of `rounds.EvaluationRounds`.
"""

import dataclasses
import functools
import pathlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from scaled_ql.launchpad_programs import supervision
from scaled_ql.runners.pretrain import PretrainConfig


@dataclasses.dataclass(frozen=True)
class ProgramOptions:
    """How the program is laid out (what `PretrainConfig` does not say).

    Attributes:
      num_feeders: feeder nodes; the games are split into this many contiguous groups.
      num_evaluators: evaluator nodes (game groups likewise); 0 disables evaluation and the
        summary.
      replay_max_size: items per game table before FIFO eviction (one item = one transition,
        about 56 KB before Reverb's compression).
      replay_min_size: items a table needs before the learner samples it.
      sampler_timeout_ms: the learner fails (`SamplerTimeoutError`) after waiting this long
        on a table.
      feed_chunk: transitions a feeder writes to one game before it turns to the next and
        checks for the program's stop.
      feed_inserts_per_sample: once a table is full, a feeder inserts at most this many new
        transitions per transition the learner sampled from it, so the FIFO window moves
        through the dataset as fast as training consumes it (1.0: each transition is sampled
        about once while in the table, like one pass of the single-process stream) instead of
        feeders spinning flat out.  None: unpaced.
      max_pending_rounds: evaluation snapshots the learner may hold before it waits.
      status_dir: where nodes record failures and the normal end (see `supervision`).
    """

    num_feeders: int = 1
    num_evaluators: int = 1
    replay_max_size: int = 100_000
    replay_min_size: int = 1_000
    sampler_timeout_ms: int = 60_000
    feed_chunk: int = 256
    feed_inserts_per_sample: float | None = 1.0
    max_pending_rounds: int = 2
    status_dir: str | None = None

    def __post_init__(self):
        for name in ("num_feeders", "replay_max_size", "replay_min_size", "sampler_timeout_ms",
                     "feed_chunk", "max_pending_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"ProgramOptions.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_evaluators < 0:
            raise ValueError(f"ProgramOptions.num_evaluators must be >= 0, got "
                             f"{self.num_evaluators}")
        if self.feed_inserts_per_sample is not None and self.feed_inserts_per_sample <= 0:
            raise ValueError("ProgramOptions.feed_inserts_per_sample must be > 0 or None, got "
                             f"{self.feed_inserts_per_sample}")
        if self.replay_min_size > self.replay_max_size:
            raise ValueError(f"replay_min_size ({self.replay_min_size}) must be <= "
                             f"replay_max_size ({self.replay_max_size})")


def split_games(games: tuple[str, ...], num_groups: int, what: str) -> list[tuple[str, ...]]:
    """`games` cut into `num_groups` contiguous, non-empty groups of near-equal size."""
    if not 1 <= num_groups <= len(games):
        raise ValueError(f"{what}={num_groups}: need between 1 and {len(games)} (one game per "
                         f"group at least; games: {list(games)})")
    bounds = np.linspace(0, len(games), num_groups + 1).round().astype(int)
    return [tuple(games[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def make_builder(config: PretrainConfig, options: ProgramOptions):
    """The `ScaledQLBuilder` every node builds its parts with."""
    from scaled_ql.agents.scaled_ql.replay import ReplayConfig
    from scaled_ql.runners.pretrain import make_builder as make_run_builder

    return make_run_builder(config, replay=ReplayConfig(
        max_size=options.replay_max_size, min_size=options.replay_min_size,
        sampler_timeout_ms=options.sampler_timeout_ms))


def make_replay_tables(config: PretrainConfig, options: ProgramOptions) -> list:
    """The Reverb node's table factory: one table per game, from the builder."""
    return make_builder(config, options).make_replay_tables()


def is_round_step(config: PretrainConfig, step: int) -> bool:
    """Whether the single-process runner would evaluate at `step` (before the final step)."""
    per_call = config.agent.num_sgd_steps_per_step
    return bool(config.eval_every) and step % config.eval_every < per_call and step < config.steps


# -- feeders ---------------------------------------------------------------------------------


class Feeder:
    """Streams its games' RLDS transitions into their Reverb tables, round-robin, forever."""

    def __init__(self, config: PretrainConfig, options: ProgramOptions, games: tuple[str, ...],
                 replay, name: str):
        self._config = config
        self._options = options
        self._games = tuple(games)
        self._address = replay.server_address
        self._name = name
        self._iterators: dict[str, object] = {}
        self._fed = {game: 0 for game in self._games}
        self._client = None

    def _iterator(self, game: str):
        if game not in self._iterators:
            from scaled_ql.datasets import EpisodeSelection, PipelineConfig
            from scaled_ql.datasets import game_transition_dataset

            config = self._config
            pipeline = PipelineConfig(
                games=config.games, data_dir=config.data_dir,
                selection=EpisodeSelection(runs=tuple(config.runs),
                                           checkpoints=config.checkpoints,
                                           episode_fraction=config.episode_fraction),
                transition=make_builder(config, self._options).transition_config(),
                seed=config.seed)
            dataset = game_transition_dataset(pipeline, config.games.index(game), repeat=True)
            self._iterators[game] = dataset.as_numpy_iterator()
        return self._iterators[game]

    def feed(self, max_items_per_game: int | dict[str, int]) -> dict[str, int]:
        """Writes up to `max_items_per_game` transitions of each game (a number, or one per
        game); returns the totals written so far."""
        from scaled_ql.datasets import feed

        for game in self._games:
            limit = (max_items_per_game.get(game, 0) if isinstance(max_items_per_game, dict)
                     else max_items_per_game)
            if limit > 0:
                self._fed[game] += feed(self._address, game, self._iterator(game),
                                        max_items=limit)
        return dict(self._fed)

    def budget(self) -> dict[str, int]:
        """Transitions each game may receive now under `feed_inserts_per_sample` pacing."""
        import reverb

        from scaled_ql.datasets import table_name

        chunk, ratio = self._options.feed_chunk, self._options.feed_inserts_per_sample
        if ratio is None:
            return {game: chunk for game in self._games}
        if self._client is None:
            self._client = reverb.Client(self._address)
        info = self._client.server_info(timeout=30)
        budget = {}
        for game in self._games:
            table = info[table_name(game)]
            stats = table.rate_limiter_info
            allowed = table.max_size + ratio * stats.sample_stats.completed
            budget[game] = int(max(0, min(chunk, allowed - stats.insert_stats.completed)))
        return budget

    def run(self) -> None:
        with supervision.guarded(self._options.status_dir, self._name):
            while not supervision.stop_requested():
                budget = self.budget()
                if any(budget.values()):
                    self.feed(budget)
                elif supervision.wait_or_stop(0.2):
                    break


# -- evaluators ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvaluationSpec:
    """What a program's evaluator nodes play and where they record it (picklable values).

    Attributes:
      make_builder: `() -> ScaledQLBuilder` of the run (a `functools.partial` of a module-level
        function): the networks, and `builder.games` as the heads.
      protocol: how episodes are played (`runners.evaluate.EvalProtocol`, with the variant).
      out_dir: the run directory (its eval_results.json).
      run_name, method, seed, config: the run as `evaluation.RunInfo` records it.
      curve_title: also draw learning_curve.csv/.png against environment steps under this
        title (online fine-tuning, whose rounds carry `env_steps`); None: no curve.
    """

    make_builder: Callable[[], Any]
    protocol: Any
    out_dir: str
    run_name: str
    method: str
    seed: int
    config: dict
    curve_title: str | None = None


def pretrain_evaluation(config: PretrainConfig, options: ProgramOptions) -> EvaluationSpec:
    """The pretraining program's evaluation: the runner's protocol, without progress bars."""
    from scaled_ql.runners.pretrain import eval_protocol, flat_config

    return EvaluationSpec(
        make_builder=functools.partial(make_builder, config, options),
        protocol=dataclasses.replace(eval_protocol(config), progress=False),
        out_dir=config.out_dir, run_name=config.run_name, method=config.method,
        seed=config.seed, config=flat_config(config))


class Evaluator:
    """Evaluates its games (real ALE or MinAtar) at every round the learner publishes, in
    order, and appends the episodes to the run's eval_results.json (and a point of the
    learning curve when `spec.curve_title` is set)."""

    def __init__(self, spec: EvaluationSpec, games: tuple[str, ...], group: int, learner,
                 status_dir: str | None, name: str):
        self._spec = spec
        self._games = tuple(games)
        self._group = group
        self._learner = supervision.stop_aware(learner)
        self._status_dir = status_dir
        self._name = name
        self._last_step = -1
        self._params = None
        self._info: dict = {}
        self._final = False
        self._evaluate = None

    def _setup(self) -> None:
        if self._evaluate is not None:
            return
        from scaled_ql.runners.evaluate import make_evaluator

        builder = self._spec.make_builder()
        self._networks = builder.make_networks()
        self._run_games = tuple(builder.games)
        self._evaluate = make_evaluator(self._networks, builder.games, self._spec.protocol,
                                        builder.config.compute_dtype)

    def fetch_round(self) -> int | None:
        """Pulls the next evaluation round from the learner; its step or None if none yet."""
        reply = self._learner.next_round(self._group, self._last_step)
        if reply is None:
            return None
        step, (params, info), final = reply
        self._params, self._info = params, dict(info)
        self._last_step, self._final = int(step), bool(final)
        return self._last_step

    def parameters(self):
        """The parameters of the round last fetched (numpy pytree)."""
        return self._params

    def evaluate_round(self) -> dict[str, float]:
        """Evaluates the fetched round, appends it in order; returns mean return per game."""
        from scaled_ql.evaluation import RunInfo, append_evaluation
        from scaled_ql.runners.finetune_offline import curve_row, write_learning_curve

        if self._params is None:
            raise RuntimeError("no round fetched yet: call fetch_round() first")
        self._setup()
        spec, step = self._spec, self._last_step
        started = time.time()
        episodes = self._evaluate(self._params, step, self._games)
        wall = time.time() - started
        while not self._learner.may_record(self._group, step):
            if supervision.wait_or_stop(0.2):
                return {}
        num_params = self._networks.parameter_counts(self._params)["total_used"]
        run_info = RunInfo(name=spec.run_name, method=spec.method, seed=spec.seed,
                           num_params=int(num_params), config=spec.config)
        append_evaluation(spec.out_dir, run_info, self._run_games, step, episodes,
                          wall_time=wall)
        if spec.curve_title is not None:
            for game in self._games:
                write_learning_curve(spec.out_dir, curve_row(
                    game, step, episodes, env_steps=self._info.get("env_steps")),
                    x="env_steps", title=spec.curve_title)
        self._learner.round_recorded(self._group, step)
        return {g: float(np.mean([e.episode_return for e in episodes if e.game == g]))
                for g in self._games}

    def evaluate_next(self) -> dict | None:
        """Fetches, evaluates and records the next round: its step, environment steps (None
        offline), whether it was the final round and the mean return over this node's
        games; None if no round is published yet."""
        with supervision.guarded(self._status_dir, self._name):
            if self.fetch_round() is None:
                return None
            returns = self.evaluate_round()
            return {"step": self._last_step, "env_steps": self._info.get("env_steps"),
                    "final": self._final,
                    "mean_return": float(np.mean(list(returns.values()))) if returns else None}

    def run(self) -> None:
        with supervision.guarded(self._status_dir, self._name):
            while not supervision.stop_requested():
                result = self.evaluate_next()
                if result is None:
                    supervision.wait_or_stop(0.5)
                elif result["final"]:
                    break
        supervision.wait_or_stop(None)


# -- limiter ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Limiter:
    """Ends a program: once the counter's `counter_key` reaches `limit` and the final work is
    on disk.

    Pretraining counts `learner_steps` up to its SGD steps, online fine-tuning `actor_steps`
    up to its environment steps.  When the limit is reached it waits until the learner
    reports the final checkpoint saved and the final round recorded by every evaluator group,
    writes `summary.json` / `summary.md` from that round (as the single-process runner does;
    not when `summarize` is False: no evaluators), records the normal end and calls
    `lp.stop()`.

    Attributes:
      counter, learner: the program's counter and learner nodes (courier handles).
      counter_key, limit: the count that ends the program, and where.
      out_dir, games, seed: the run directory, its games and the summary's bootstrap seed.
      summarize: write summary.* from the final round.
      status_dir, name: as every node (see `supervision`).
      poll_s: seconds between checks.
    """

    counter: Any
    learner: Any
    _: dataclasses.KW_ONLY
    counter_key: str
    limit: int
    out_dir: str
    games: tuple[str, ...]
    seed: int
    summarize: bool
    status_dir: str | None
    name: str = "limiter/0"
    poll_s: float = 0.5

    def __post_init__(self):
        # Its calls end when the program stops (`supervision.stop_aware`).
        object.__setattr__(self, "counter", supervision.stop_aware(self.counter))
        object.__setattr__(self, "learner", supervision.stop_aware(self.learner))

    def write_summary(self, step: int) -> dict:
        """Summarizes the evaluation round at `step` from eval_results.json into summary.*."""
        from scaled_ql.evaluation import read_results
        from scaled_ql.runners.pretrain import PretrainSummary, summarize, write_summary

        rounds = [e for e in read_results(self.out_dir).evaluations if e.step == step]
        if not rounds:
            raise RuntimeError(f"{self.out_dir}: no evaluation at the final step {step}")
        missing = sorted(set(self.games) - {e.game for e in rounds[0].episodes})
        if missing:
            raise RuntimeError(f"the final evaluation (step {step}) lacks games {missing}")
        mean_returns, normalized, iqm, ci = summarize(self.games, rounds[0].episodes,
                                                      seed=self.seed)
        summary = PretrainSummary(str(pathlib.Path(self.out_dir).absolute()), step, None,
                                  mean_returns, normalized, iqm, ci)
        write_summary(pathlib.Path(summary.run_dir), summary)  # the launcher prints summary.md
        return mean_returns

    def check(self) -> bool:
        """Whether the program's work is complete (limit reached and final work done)."""
        count = int(self.counter.get_counts().get(self.counter_key, 0))
        return count >= self.limit and bool(self.learner.status()["finished"])

    def run(self) -> None:
        import launchpad as lp

        with supervision.guarded(self.status_dir, self.name):
            while not self.check():
                if supervision.wait_or_stop(self.poll_s):
                    return
            status = self.learner.status()
            if self.summarize:
                self.write_summary(status["final_step"])
            supervision.mark_done(self.status_dir, {"step": status["final_step"]})
            lp.stop()
