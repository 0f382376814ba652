"""Distributed multi-game pretraining as a Launchpad program: the single-process runner's job,
split over nodes.

    feeder/i  --(RLDS -> Transitions)-->  replay (one Reverb table per game)
                                               |  weighted sampling (builder)
    counter  <--learner_steps--  learner  <----+      checkpoints -> RUN_DIR/checkpoints
                                   |  evaluation rounds (parameter snapshots)
                                   v
                             evaluator/j  --> RUN_DIR/eval_results.json
    limiter: at `steps` learner steps, once the final checkpoint and the final round are on
             disk, writes RUN_DIR/summary.{json,md} and calls lp.stop().

Node groups (labels): `replay`, `feeder`, `counter`, `learner`, `evaluator`, `limiter`.
`PretrainConfig` means what it means for `run_pretrain`: the same checkpoint steps
(`checkpoint_every`, and at the end), the same evaluation steps (`eval_every`, and at the
end), the same run directory, results file and summary.  See `nodes.py` for how evaluation
rounds are scheduled.

Differences from the single-process runner:
  - Data reaches the learner through Reverb: feeders write each game's transitions into its
    table (FIFO, `replay_max_size` items) and the learner samples the tables uniformly with the
    per-game weights, instead of a shuffle buffer.  On resume the feeders restart their streams
    with the same seed (the learner samples uniformly from the table, so the order matters
    little).
  - Training overlaps evaluation by up to `max_pending_rounds` rounds.

Addresses.  Launchpad's local launches give every node `localhost:<port>` (its
`SimpleLocalAddressBuilder`), so clients connect over loopback.  The servers themselves
cannot be restricted: `reverb.Server` (0.7.3, used by `lp.ReverbNode`) and courier's server
(used by `lp.CourierNode`) listen on all interfaces, `[::]:<port>`, with no option to bind
to localhost.  Run on a machine whose firewall keeps those ports private.
"""

import dataclasses
import pathlib
import shutil
import tempfile

from scaled_ql.launchpad_programs import learner_node
from scaled_ql.launchpad_programs import nodes as nodes_lib
from scaled_ql.launchpad_programs import supervision
from scaled_ql.runners.pretrain import PretrainConfig

LAUNCH_TYPES = ("local_mp", "local_mt")


def make_program(config: PretrainConfig, *, resume: bool = False, num_feeders: int = 1,
                 num_evaluators: int = 1, **options):
    """The pretraining program for `config`.

    Prepares the run directory first (`config.json`, `logs/`), so a bad `out_dir` (an existing
    run without `resume`, or `resume` with another configuration) fails here, before any node
    starts.

    Args:
      config: the run, as for `run_pretrain`.
      resume: continue from the newest checkpoint in `config.out_dir/checkpoints`.
      num_feeders: feeder nodes (games split into contiguous groups).
      num_evaluators: evaluator nodes (likewise); 0: no evaluation and no summary.
      **options: further `nodes.ProgramOptions` fields (replay sizes, timeouts, status_dir).

    Returns:
      An `lp.Program` with groups replay, feeder, counter, learner, evaluator, limiter.
    """
    import launchpad as lp

    from scaled_ql.runners import run_dir as run_dir_lib
    from scaled_ql.runners.pretrain import flat_config

    opts = nodes_lib.ProgramOptions(num_feeders=num_feeders, num_evaluators=num_evaluators,
                                    **options)
    feeder_groups = nodes_lib.split_games(config.games, num_feeders, "num_feeders")
    eval_groups = (nodes_lib.split_games(config.games, num_evaluators, "num_evaluators")
                   if num_evaluators else [])
    nodes_lib.make_builder(config, opts)  # validates games, agent and replay settings here
    run_dir_lib.prepare(config.out_dir, flat_config(config), resume)

    program = lp.Program("scaled_ql_pretrain")
    with program.group("replay"):
        replay = program.add_node(lp.ReverbNode(
            _TableFactory(config, opts)))
    with program.group("counter"):
        counter = program.add_node(lp.CourierNode(supervision.LingeringCounter))
    with program.group("feeder"):
        for i, games in enumerate(feeder_groups):
            program.add_node(lp.CourierNode(nodes_lib.Feeder, config, opts, games, replay,
                                            _node_name("feeder", i, games)))
    with program.group("learner"):
        learner = program.add_node(lp.CourierNode(learner_node.Learner, config, opts, resume,
                                                  replay, counter, "learner/0"))
    evaluation = nodes_lib.pretrain_evaluation(config, opts)
    with program.group("evaluator"):
        for j, games in enumerate(eval_groups):
            program.add_node(lp.CourierNode(nodes_lib.Evaluator, evaluation, games, j, learner,
                                            opts.status_dir, _node_name("evaluator", j, games)))
    with program.group("limiter"):
        program.add_node(lp.CourierNode(
            nodes_lib.Limiter, counter, learner, counter_key="learner_steps",
            limit=config.steps, out_dir=config.out_dir, games=config.games, seed=config.seed,
            summarize=bool(num_evaluators), status_dir=opts.status_dir, name="limiter/0"))
    return program


@dataclasses.dataclass(frozen=True)
class _TableFactory:
    """Picklable `() -> tables` for `lp.ReverbNode` (a frozen config pair, no live objects)."""

    config: PretrainConfig
    options: nodes_lib.ProgramOptions

    def __call__(self) -> list:
        return nodes_lib.make_replay_tables(self.config, self.options)


def _node_name(label: str, index: int, games: tuple[str, ...]) -> str:
    return f"{label}/{index} ({','.join(games)})"


def launch(config: PretrainConfig, *, launch_type: str = "local_mp", resume: bool = False,
           num_feeders: int = 1, num_evaluators: int = 1, timeout_s: float | None = None,
           **options) -> int:
    """Builds the program, launches it and waits for its end; returns an exit code.

    0: the program ended normally (final checkpoint, evaluation and summary written).
    1: a node failed; the node's name, error and traceback are printed to stderr.
    124: `timeout_s` ran out.  128 + signal: stopped from outside (130 Ctrl-C, 143 SIGTERM).
    Every node is stopped before this returns (local_mp: no process is left behind).

    `launch_type` is 'local_mp' (one process per node, output in this terminal, prefixed by
    the node's name) or 'local_mt' (threads of this process; a node that does not stop within
    Launchpad's termination notice makes Launchpad kill the whole process).
    """
    if launch_type not in LAUNCH_TYPES:
        raise ValueError(f"launch_type must be one of {LAUNCH_TYPES}, got {launch_type!r}")
    if "status_dir" in options:
        raise ValueError("launch() manages status_dir itself")
    status_dir = tempfile.mkdtemp(prefix="scaled-ql-launch-")
    try:
        program = make_program(config, resume=resume, num_feeders=num_feeders,
                               num_evaluators=num_evaluators, status_dir=status_dir, **options)
        code = supervision.launch_and_watch(program, launch_type=launch_type,
                                            status_dir=status_dir, timeout_s=timeout_s)
        if code == supervision.EXIT_OK and num_evaluators:
            summary = pathlib.Path(config.out_dir) / "summary.md"
            if summary.exists():
                print(summary.read_text(), flush=True)
        return code
    finally:
        shutil.rmtree(status_dir, ignore_errors=True)
