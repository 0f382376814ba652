"""Online fine-tuning on a game variant (ALE mode / difficulty, or MinAtar's difficulty
ramping) as a Launchpad program.

    scaled-ql finetune-online --checkpoint RUN_DIR --game Breakout --mode 4 --difficulty 1 \
        --env-steps 20000 --out RUN_DIR2 [--launch local_mt|local_mp] \
        [--offline-data DIR --offline-ratio 0.5] [--from-scratch]
    scaled-ql finetune-online --checkpoint MINATAR_RUN --game minatar/Asterix --difficulty 1 ...

    actor/i (the variant, epsilon-greedy) --TransitionAdder--> table "transitions/<Game>/online"
                                        (SampleToInsertRatio limiter: actors and learner paced)
    feeder/0 (base game's RLDS data) --------------------> table "transitions/<Game>" (optional)
    learner/0: samples both tables with weights (1 - offline_ratio, offline_ratio), trains,
               serves variables to the actors, checkpoints, publishes evaluation rounds
    evaluator/0: plays the variant (real ALE / MinAtar) at each round -> eval_results.json,
                 learning_curve.csv / .png (mean return against environment steps)
    counter/0: actor_steps (environment steps) and learner_steps
    limiter/0: once actor_steps >= env_steps and the final round is recorded: summary, stop

The learner starts from the pre-trained network: the torso, and the game's own head when the
checkpoint has one (a variant of a training game) unless `fresh_head`; `from_scratch` starts
the same architecture from random initialisation (the single-game baseline) in the same
program.  Checkpoints record the game and its head size, like every other run.  The game must
belong to the checkpoint's suite (`SuiteMismatchError` otherwise, before anything starts);
environments come from that suite (`environments.suites`), with its sticky actions and
episode cap unless set.

Ending.  Actors stop once the counter has `env_steps` environment steps.  The learner checks
the count before each update and then writes its final checkpoint and final evaluation round;
an update blocked on the rate limiter (actors done) notices through a short sampler wait
(`sampler_poll_ms`) instead of hanging; a write blocked on the limiter likewise.  With several
actors the total may exceed `env_steps` by at most one step per actor.

Pacing.  An actor keeps at most one written transition unconfirmed by Reverb
(`max_in_flight_items=1`), so the sample-to-insert limiter holds it back within one step of
what the learner has consumed; a larger window would let actors run ahead of the limiter.

The run's config (`FinetuneOnlineConfig`, `resolve`, `flat_config`) is in `online_config.py`;
the program's own parts (its builder, tables, learner, what actors and evaluator play) in
`online_nodes.py`; the shared nodes in `nodes.py`, `learner_node.py` and `actor_node.py`.

Not supported: `--resume` (an online run's replay is not checkpointed; start a new run).
"""

import dataclasses
import pathlib
import shutil
import tempfile

from scaled_ql.launchpad_programs import actor_node
from scaled_ql.launchpad_programs import nodes as nodes_lib
from scaled_ql.launchpad_programs import online_nodes
from scaled_ql.launchpad_programs import supervision
from scaled_ql.launchpad_programs.online_config import (  # noqa: F401  (the program's API)
    FinetuneOnlineConfig,
    flat_config,
    resolve,
)

LAUNCH_TYPES = ("local_mt", "local_mp")


# -- the program --------------------------------------------------------------------------------


def make_program(config: FinetuneOnlineConfig, *, status_dir: str | None = None):
    """The online fine-tuning `lp.Program` (groups replay, counter, feeder (when mixing),
    learner, actor, evaluator (unless num_evaluators=0), limiter).

    Validates the game, variant, checkpoint and learner config here, and prepares the run
    directory (which must not hold checkpoints yet).
    """
    import launchpad as lp

    from scaled_ql.runners import run_dir as run_dir_lib

    config = resolve(config)
    online_nodes.make_builder(config).transition_config()  # validates the data-side settings
    run_dir_lib.prepare(config.out_dir, flat_config(config), resume=False)

    program = lp.Program("scaled_ql_finetune_online")
    with program.group("replay"):
        replay = program.add_node(lp.ReverbNode(online_nodes.TableFactory(config)))
    with program.group("counter"):
        counter = program.add_node(lp.CourierNode(supervision.LingeringCounter))
    if config.offline_ratio > 0:
        pretrain, options = online_nodes.offline_feeder_config(config)
        options = dataclasses.replace(options, status_dir=status_dir)
        with program.group("feeder"):
            program.add_node(lp.CourierNode(nodes_lib.Feeder, pretrain, options, (config.game,),
                                            replay, f"feeder/0 ({config.game} offline)"))
    with program.group("learner"):
        learner = program.add_node(lp.CourierNode(online_nodes.Learner, config, replay,
                                                  counter, status_dir, "learner/0"))
    with program.group("actor"):
        for i in range(config.num_actors):
            program.add_node(lp.CourierNode(actor_node.Actor, online_nodes.acting(config),
                                            replay, counter, learner, i, status_dir,
                                            f"actor/{i}"))
    if config.num_evaluators:
        with program.group("evaluator"):
            program.add_node(lp.CourierNode(nodes_lib.Evaluator,
                                            online_nodes.evaluation(config),
                                            (config.game,), 0, learner, status_dir,
                                            "evaluator/0"))
    with program.group("limiter"):
        program.add_node(lp.CourierNode(
            nodes_lib.Limiter, counter, learner, counter_key="actor_steps",
            limit=config.env_steps, out_dir=config.out_dir, games=(config.game,),
            seed=config.seed, summarize=bool(config.num_evaluators), status_dir=status_dir,
            name="limiter/0"))
    return program


def launch(config: FinetuneOnlineConfig, *, launch_type: str = "local_mp",
           timeout_s: float | None = None) -> int:
    """Builds the program, launches it and waits for its end; returns an exit code.

    0 normal end (final checkpoint, evaluation, summary, online_stats.json written); 1 a node
    failed (named on stderr); 124 `timeout_s` ran out; 128 + signal stopped from outside (130:
    Ctrl-C).  Every node is stopped before this returns.
    """
    if launch_type not in LAUNCH_TYPES:
        raise ValueError(f"launch_type must be one of {LAUNCH_TYPES}, got {launch_type!r}")
    status_dir = tempfile.mkdtemp(prefix="scaled-ql-online-")
    try:
        program = make_program(config, status_dir=status_dir)
        code = supervision.launch_and_watch(program, launch_type=launch_type,
                                            status_dir=status_dir, timeout_s=timeout_s)
        summary = pathlib.Path(config.out_dir) / "summary.md"
        if code == supervision.EXIT_OK and summary.exists():
            print(summary.read_text(), flush=True)
        return code
    finally:
        shutil.rmtree(status_dir, ignore_errors=True)
