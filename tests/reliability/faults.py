"""The table of faults and bad inputs, with what a user sees: docs/RELIABILITY.md is rendered
from it (`scripts/reliability_doc.py`), and the tests assert each row's message through it.

A test checks a row's message with `check(row_id, text, **fields)` (the template, formatted
with `fields`, must equal `text`, or start it for `match="prefix"`), or marks a behaviour row
as covered with `expect(row_id)`.  `test_doc.py` fails when the doc differs from the rendered
table or when a row is referenced by no test.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Row:
    """One fault or bad input.

    Attributes:
      id: the name tests use.
      kind: 'fault' (something breaks while running) or 'bad input'.
      what: the fault or input.
      where: how it reaches the code (a command line or an API call).
      outcome: what happens.
      message: the exact text the user sees ({placeholders} vary per run), or '' when the
        outcome is a behaviour rather than a message.
      match: 'exact' or 'prefix' (the message goes on, e.g. with a list of all games).
      test: the test that shows it.
    """

    id: str
    kind: str
    what: str
    where: str
    outcome: str
    message: str
    test: str
    match: str = "exact"


FAULT, BAD = "fault", "bad input"
_KILLS = "tests/reliability/test_kill_resume.py"
_LP = "tests/reliability/test_launchpad_faults.py"
_NAN = "tests/reliability/test_nonfinite.py"
_RVB = "tests/reliability/test_reverb_faults.py"
_CKPT = "tests/reliability/test_checkpoint_safety.py"
_BAD = "tests/reliability/test_bad_inputs.py"
_SIG = "tests/reliability/test_signals.py"
_CLI = "tests/cli/test_errors.py"
_SIG_CLI = "tests/cli/test_signals.py"
_RESUME = "tests/cli/test_resume.py"
_CLI_ERR = "exit status 2, one line on stderr"

ROWS = (
    # -- faults while running --------------------------------------------------------------
    Row("kill9_single_process", FAULT, "`kill -9` (or out-of-memory kill) at a random moment",
        "`scaled-ql pretrain`, then the same command with `--resume`",
        "The newest complete checkpoint is intact and loads with finite parameters; `--resume` "
        "continues from it (next step = checkpoint + 1, optimizer state and RNG carried over); "
        "at most `--checkpoint-every` steps are lost; `logs/learner.csv` is cut back to the "
        "checkpoint, so each step is logged once.",
        "resuming {run_dir} from the checkpoint at step {step}; dropped {rows} log row(s) "
        "after it", _KILLS),
    Row("kill9_mid_checkpoint_write", FAULT,
        "killed while a checkpoint is being written (unfinished `<step>.orbax-checkpoint-tmp-*` "
        "folder left behind)", "any runner",
        "The unfinished folder is never taken for the latest checkpoint; the next run on the "
        "directory deletes it.", "", _CKPT),
    Row("sigint_sigterm", FAULT, "Ctrl-C (SIGINT) or SIGTERM", "`scaled-ql pretrain` "
        "(and `scaled-ql finetune-offline`, which shares its training loop)",
        "The step in progress finishes, a final checkpoint is written, exit status 128 + signal "
        "(130 / 143), one line on stderr, no traceback; `--resume` continues.",
        "scaled-ql pretrain: stopped by {signal} at step {step}; checkpoint {step} saved in "
        "{run_dir}/checkpoints; continue with --resume", _SIG),
    Row("signal_during_startup", FAULT, "Ctrl-C (SIGINT) or SIGTERM during startup (imports, "
        "data pipeline, JIT, before the first step)",
        "`scaled-ql pretrain` / `finetune-offline` / `finetune-online` (from the first import "
        "of `scaled_ql.cli` on: any `scaled-ql` command)",
        "Exit status 128 + signal, one line on stderr, no traceback; a fresh run leaves no run "
        "directory behind (a resumed one keeps its checkpoints). (Only a signal in Python's own "
        "start, a tenth of a second before `scaled_ql.cli` is imported, gets Python's "
        "default.)",
        "scaled-ql pretrain: stopped by SIGINT during startup; nothing saved; run the command "
        "again", _SIG_CLI),
    Row("signal_during_evaluation", FAULT,
        "Ctrl-C (SIGINT) or SIGTERM during a periodic or the final evaluation",
        "`scaled-ql pretrain` / `finetune-offline` (evaluation workers ignore Ctrl-C; the main "
        "process ends them)",
        "The evaluation stops at once (no waiting for its episodes), a checkpoint of the step is "
        "written, exit status 128 + signal, no traceback. The round is dropped whole: "
        "`eval_results.json` only holds complete rounds; `--resume` plays it again.",
        "scaled-ql pretrain: stopped by SIGINT at step {step} during the evaluation at step "
        "{step} (its episodes are not recorded; --resume plays it again); checkpoint {step} "
        "saved in {run_dir}/checkpoints; continue with --resume", _SIG_CLI),
    Row("second_signal", FAULT, "a second Ctrl-C while the command is stopping",
        "`scaled-ql pretrain` / `finetune-offline`",
        "The command ends at once; the newest complete checkpoint stays the latest (an "
        "interrupted write is never taken for one), no evaluation round is recorded half; exit "
        "status 130 as the shell sees it.", "", _SIG_CLI),
    Row("signal_launched", FAULT, "Ctrl-C (SIGINT) or SIGTERM",
        "`scaled-ql finetune-online` (`--launch local_mt` or `local_mp`; `scaled-ql pretrain "
        "--launch` alike, continuing with --resume)",
        "Every node stops within seconds (the counter node serves a few seconds past the stop, "
        "so no node waits on it forever), exit status 128 + signal, one line on stderr, no "
        "traceback; the newest checkpoint and the evaluation rounds recorded stay.",
        "scaled-ql finetune-online: stopped by {signal}; checkpoint {step} kept in "
        "{run_dir}/checkpoints; online runs cannot be resumed: run the command again with "
        "another --out", _SIG_CLI),
    Row("kill9_evaluation_shared_memory", FAULT,
        "`kill -9` of a process in the middle of an evaluation with worker processes (an "
        "evaluator node, a single-process run)", "any evaluation (`evaluate_policy`)",
        "Its workers and fork server end; multiprocessing's resource tracker unlinks the "
        "observations' shared memory (nothing left in /dev/shm). Its 'leaked shared_memory' "
        "warning is quiet under `scaled-ql` (shown with `--verbose`).", "",
        "tests/environments/test_vector.py"),
    Row("signal_during_collect", FAULT, "Ctrl-C (SIGINT) or SIGTERM", "`scaled-ql collect`",
        "Exit status 128 + signal, one line on stderr (after the progress bar), no traceback; "
        "complete datasets are kept, unfinished `incomplete.*` folders removed (and the next "
        "`collect` removes those of a killed one).",
        "scaled-ql collect: stopped by SIGINT; no dataset complete; unfinished ones removed; run "
        "the command again for the missing games (--overwrite to replace the kept ones)",
        _SIG_CLI),
    Row("learner_node_killed", FAULT, "`kill -9` of the learner node's process",
        "`scaled-ql pretrain --launch local_mp`",
        "Every other node is stopped (none left behind), exit status 1 naming the node; its "
        "newest complete checkpoint loads and `--resume` continues from it.",
        "[scaled-ql] launch failed (1): node learner/0 exited without reporting an error "
        "(killed, out of memory, or a crash in native code?)", _LP),
    Row("learner_stops_mid_fetch", FAULT,
        "the learner stops (or its courier call never returns) while an actor fetches its "
        "parameters", "the actors of a Launchpad program (`scaled-ql finetune-online`, "
        "`scaled-ql pretrain --launch`)",
        "The fetch runs on a daemon thread of the package's variable client: the actor keeps "
        "acting with the parameters it has, and the process exits when its work is done instead "
        "of waiting for the call (Acme 0.4.0's client, whose executor worker Python joins at "
        "exit, kept it alive). A fetch that fails is logged.",
        "variable fetch of {keys} failed; keeping the previous variables: {error}",
        "tests/agents/scaled_ql/test_variable_client.py"),
    Row("evaluator_node_killed", FAULT, "`kill -9` of an evaluator node's process",
        "`scaled-ql pretrain --launch local_mp`",
        "The program stops: every node is stopped, exit status 1 naming the evaluator "
        "(training without its evaluations would leave the run's results incomplete). "
        "Checkpoints and the evaluation rounds already recorded stay; `--resume` continues "
        "from the newest checkpoint. (Runs with `--reliability-sweep`.)",
        "[scaled-ql] launch failed (1): node evaluator/0 exited without reporting an error "
        "(killed, out of memory, or a crash in native code?)", _LP),
    Row("nan_batch", FAULT, "a batch whose loss or gradient is NaN/inf", "the learner (any runner)",
        "The update is skipped (parameters and optimizer state untouched) and counted in "
        "`num_skipped_updates` (logged, checkpointed); checkpoints keep finite parameters.",
        "", _NAN),
    Row("nan_abort", FAULT, "`max_consecutive_skips` non-finite updates in a row",
        "`PretrainConfig.max_consecutive_skips` (default 100)",
        "The run aborts with `NonFiniteLossError` (a ValueError: one line from the CLI); the "
        "last checkpoint holds the last finite parameters.",
        "{n} consecutive updates had a non-finite loss or gradient (last finite parameters "
        "kept, step {step}); check the data for NaN/inf rewards or lower the learning rate",
        _NAN),
    Row("nonfinite_checkpoint", FAULT, "saving parameters that are NaN/inf", "`Checkpointer.save`",
        "Refused (`FloatingPointError`); the previous checkpoint stays the latest.",
        "refusing to checkpoint non-finite parameters at step {step} into {directory}", _NAN),
    Row("reverb_empty_table", FAULT, "a Reverb table that stays empty (no feeder)",
        "the learner of a Launchpad program (`sampler_timeout_ms`)",
        "`learner.step()` raises `SamplerTimeoutError` after the timeout instead of hanging; "
        "the message gives every table's size.",
        "no sample from Reverb at {address} within {timeout_ms} ms; table sizes {sizes}: is a "
        "feeder writing to every table, and has each reached its min_size_to_sample?", _RVB),
    Row("reverb_starved_table", FAULT, "one game's table below `min_size_to_sample` (feeder "
        "stopped early), the others full", "the learner of a Launchpad program",
        "The same timeout and message; the sizes show which table starves.",
        "no sample from Reverb at {address} within {timeout_ms} ms; table sizes {sizes}: is a "
        "feeder writing to every table, and has each reached its min_size_to_sample?", _RVB),
    Row("reverb_restore_changed", FAULT,
        "restoring a Reverb checkpoint with other table settings (e.g. `max_size`)",
        "`start_server(config, checkpoint_dir=...)`",
        "The items are restored; Reverb keeps the checkpointed settings, so a "
        "`ReplayConfigChangedWarning` (and a log warning) names each table and field.",
        "restoring Reverb checkpoint {checkpoint}: table '{table}': max_size is {old} in the "
        "checkpoint, {new} requested; Reverb keeps {old}", _RVB),
    Row("reverb_restore_removed_table", BAD,
        "restoring a Reverb checkpoint that holds a table the new configuration lacks",
        "`start_server(config, checkpoint_dir=...)`", "ValueError before Reverb starts.",
        "Reverb checkpoint {checkpoint} holds table(s) {extra} that this configuration does not "
        "have (tables: {tables}); restore with the same games, or start without the checkpoint",
        _RVB),
    Row("checkpoint_no_pickle", FAULT, "a checkpoint from elsewhere", "`Checkpointer.restore`",
        "Read without unpickling anything (orbax arrays + JSON metadata): loading cannot run "
        "code.", "", _CKPT),
    # -- bad input -------------------------------------------------------------------------
    Row("unknown_game", BAD, "unknown game `Pongg`", "`scaled-ql pretrain --games Pongg,Breakout`",
        _CLI_ERR + ", before any data is read; close matches suggested, all 46 games listed.",
        "scaled-ql pretrain: error: Unknown game 'Pongg'. Did you mean 'Pong'? scaled-ql knows "
        "the 46 rlu_atari games (`scaled-ql games` lists them): Alien, Amidar, Assault,", _BAD,
        match="prefix"),
    Row("invalid_mode", BAD, "ALE mode the game does not have",
        "`scaled-ql finetune-online --game Breakout --mode 5`",
        _CLI_ERR + ", before ALE loads the ROM (which would kill the process).",
        "scaled-ql finetune-online: error: Breakout has no --mode 5; valid mode values for "
        "Breakout: 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44 (or leave out --mode for the "
        "game's default)", _BAD),
    Row("invalid_difficulty", BAD, "ALE difficulty the game does not have",
        "`scaled-ql finetune-online --game Pong --difficulty 7`", _CLI_ERR + ".",
        "scaled-ql finetune-online: error: Pong has no --difficulty 7; valid difficulty values "
        "for Pong: 0, 1, 2, 3 (or leave out --difficulty for the game's default)", _BAD),
    Row("observation_shape", BAD, "a batch observation of the wrong shape (3 stacked frames)",
        "`ScaledQLLearner.step()` (any data iterator)", "ValueError before the update.",
        "batch observation is uint8 (16, 84, 84, 3); the network takes uint8 [B, 84, 84, 4] "
        "(4 stacked 84x84 grayscale frames)", _BAD),
    Row("observation_dtype", BAD, "a batch observation of the wrong dtype (float32 pixels)",
        "`ScaledQLLearner.step()`", "ValueError before the update.",
        "batch observation is float32 (16, 84, 84, 4); the network takes uint8 [B, 84, 84, 4] "
        "(4 stacked 84x84 grayscale frames)", _BAD),
    Row("frames_to_write", BAD, "frames of the wrong shape or dtype written to an RLDS dataset",
        "`rlds.EpisodeArrays(frames=...)`", "ValueError before anything is written.",
        "frames must be uint8 [T, 84, 84, 1], got float32 (5, 84, 84, 1)", _BAD),
    Row("action_env", BAD, "an action outside the game's minimal action set",
        "`AtariEnvironment('Pong').step(6)`", "ValueError naming the game; ALE is not called.",
        "Pong: action must be an int in [0, 6), got 6", _BAD),
    Row("action_batch", BAD, "an action outside its game's range in a training batch",
        "`ScaledQLLearner.step()`", "ValueError before the update.",
        "batch action 6 for Pong is outside its minimal action set [0, 6)", _BAD),
    Row("action_data", BAD, "an action outside the game's range in an RLDS dataset",
        "`scaled-ql pretrain` on that data", _CLI_ERR + ", naming shard and episode.",
        "scaled-ql pretrain: error: bad training data: Breakout run 1: shard {shard}, episode "
        "0: action 9 at step 1 is outside the minimal action set [0, 4) (`scaled-ql data "
        "validate {data_dir}` checks every shard)", _BAD),
    Row("nonfinite_reward", BAD, "a NaN reward in an RLDS dataset", "`scaled-ql pretrain` on that "
        "data", _CLI_ERR + ", naming shard and episode (never reaches the learner).",
        "scaled-ql pretrain: error: bad training data: Pong run 1: shard {shard}, episode 0: "
        "non-finite reward (`scaled-ql data validate {data_dir}` checks every shard)", _BAD),
    Row("missing_dataset", BAD, "no dataset for a requested game", "`scaled-ql pretrain --games "
        "Pong,Alien`", _CLI_ERR + ", saying where it looked.",
        "scaled-ql pretrain: error: Alien run 1: no complete rlu_atari/Alien_run_1 at "
        "{data_dir}/rlu_atari/Alien_run_1/1.3.0; the real rlu_atari must be prepared into "
        "--data beforehand (docs/DATA.md) (nor a rlu_atari_checkpoints_ordered dataset)", _BAD),
    Row("missing_shard", BAD, "a shard file deleted from a dataset", "`scaled-ql pretrain`",
        _CLI_ERR + ", before training.",
        "scaled-ql pretrain: error: Pong run 1: missing shard {shard}", _BAD),
    Row("truncated_shard", BAD, "a truncated shard", "`scaled-ql pretrain`",
        _CLI_ERR + " when the stream reaches it, naming the file.",
        "scaled-ql pretrain: error: reading the training data failed ({tf_error}): Pong run 1: "
        "shard {shard} is corrupted after 0 readable episode(s): {tf_error}", _BAD),
    Row("flipped_bytes", BAD, "a shard with flipped bytes (CRC mismatch)", "`scaled-ql pretrain`",
        _CLI_ERR + " when the stream reaches it, naming the file.",
        "scaled-ql pretrain: error: reading the training data failed ({tf_error}): Pong run 1: "
        "shard {shard} is corrupted after 0 readable episode(s): {tf_error}", _BAD),
    Row("flipped_bytes_validate", BAD, "a shard with flipped bytes", "`scaled-ql data validate`",
        "one error line per failing dataset on stderr, exit status 2; every other dataset is "
        "still checked.",
        "scaled-ql data validate: error: Pong run 1: shard {shard} is corrupted after 0 "
        "readable episode(s): {tf_error}", _BAD),
    Row("checkpoint_other_games", BAD, "a checkpoint of another game set", "`Checkpointer.restore` "
        "(resume, evaluation, fine-tuning loads)", "`CheckpointMismatchError` (a ValueError) "
        "before any array is read.",
        "{where} has heads for games ['Pong', 'Breakout'] with action counts [6, 4]; this run "
        "has ['Pong', 'Alien'] with [6, 18]. Fine-tuning adds heads deliberately: see "
        "`scaled-ql finetune-offline`.", _BAD),
    Row("checkpoint_other_architecture", BAD, "a checkpoint of another architecture (torso)",
        "`Checkpointer.restore`", "`CheckpointMismatchError` naming the checkpoint.",
        "{where} does not fit this network (another torso, width or atom count?): ", _BAD,
        match="prefix"),
    Row("checkpoint_other_suite", BAD, "a checkpoint of another game suite (an Atari network "
        "fine-tuned on a MinAtar game)", "`scaled-ql finetune-offline --checkpoint ATARI_RUN "
        "--game minatar/Breakout` (likewise resume, `evaluate --games`, `finetune-online`)",
        _CLI_ERR + " (`SuiteMismatchError`, a ValueError), before any data is read or the run "
        "directory is made.",
        "scaled-ql finetune-offline: error: {where} is a checkpoint of the atari suite (games "
        "['Pong', 'Breakout'], observations uint8 [84, 84, 4]); ['minatar/Breakout'] are "
        "minatar games (observations uint8 [10, 10, 10]): a network reads one suite's "
        "observations, so a checkpoint loads, resumes or fine-tunes only for games of its own "
        "suite", _BAD),
    Row("resume_other_config", BAD, "`--resume` with different settings",
        "`scaled-ql pretrain --resume --torso impala ...`",
        _CLI_ERR + ", listing each changed setting.",
        "scaled-ql pretrain: error: --resume of {run_dir} with a different configuration: "
        "--torso: was 'nature', now 'impala'; --name: was 'scaled_ql-nature', now "
        "'scaled_ql-impala'. Resume with the original settings, or choose another --out", _BAD),
    Row("resume_fewer_steps", BAD, "`--resume` with `--steps` below the run's newest "
        "checkpoint", "`scaled-ql pretrain --resume --steps 1` of a run at step 2",
        _CLI_ERR + "; config.json and the results are untouched.",
        "scaled-ql pretrain: error: --resume of {run_dir} with a different configuration: "
        "--steps: must be at least 2 (its newest checkpoint), now 1. Resume with the original "
        "settings, or choose another --out", _RESUME),
    Row("resume_other_protocol", BAD, "`--resume` with another evaluation protocol "
        "(episodes, episode cap, epsilon, sticky actions)",
        "`scaled-ql pretrain --resume --eval-episodes 3` of a run evaluated with 1",
        _CLI_ERR + ", listing each difference; rounds of two protocols are never mixed. (Paths "
        "are compared by what they point to, and the run's own folder not at all: a moved run, "
        "or one resumed from another folder, continues.)",
        "scaled-ql pretrain: error: --resume of {run_dir} with a different configuration: "
        "--eval-episodes: was 1, now 3. Resume with the original settings, or choose another "
        "--out", _RESUME),
    Row("resume_no_run", BAD, "`--resume` of a folder that does not exist",
        "`scaled-ql pretrain --resume --out MISSING`", _CLI_ERR + "; nothing is created.",
        "scaled-ql pretrain: error: --resume of {run_dir}: no such folder; give the run "
        "directory of an earlier run, or leave out --resume to start one", _RESUME),
    Row("out_foreign_folder", BAD, "`--out` on a folder that holds files a run writes "
        "(summary.json, config.json, logs/, ...) but no run of the command (e.g. a report "
        "folder)", "`scaled-ql pretrain --out REPORT_DIR`",
        _CLI_ERR + "; nothing in the folder is touched. (Other files, e.g. a job script's "
        "record, may sit in `--out`; they are left alone.)",
        "scaled-ql pretrain: error: --out {run_dir} is not empty and holds no run of this "
        "command (found summary.json); nothing was written: choose a new or empty folder",
        _RESUME),
    Row("failed_start_no_half_run", BAD, "a fresh run that fails before its first checkpoint "
        "(e.g. missing data)", "`scaled-ql pretrain --data EMPTY --out RUN`",
        _CLI_ERR + "; what the command made (config.json, logs/, checkpoints/, the folder if it "
        "made it) is removed: no half-made run.", "", _RESUME),
    Row("existing_run_without_resume", BAD, "an existing run directory without `--resume`",
        "`scaled-ql pretrain --out RUN`", _CLI_ERR + "; nothing is overwritten.",
        "scaled-ql pretrain: error: {run_dir} already holds checkpoints: pass --resume to "
        "continue that run, or choose another --out", _BAD),
    Row("contradictory_replay_sizes", BAD, "`--replay-min-size` above `--replay-size`",
        "`scaled-ql finetune-online`", _CLI_ERR + ".",
        "scaled-ql finetune-online: error: --replay-min-size (5000) must be <= --replay-size "
        "(100)", _BAD),
    Row("contradictory_checkpoint_range", BAD, "a checkpoint range whose first is after its last",
        "`scaled-ql pretrain --checkpoints 9-0`", _CLI_ERR + ".",
        "scaled-ql pretrain: error: --checkpoints must be (first, last), 0 <= first <= last: "
        "got (9, 0)", _BAD),
    Row("contradictory_bc_cql", BAD, "behaviour cloning asked for together with a CQL weight",
        "`scaled-ql pretrain --bc --cql-alpha 0.5`", _CLI_ERR + "; nothing is created.",
        "scaled-ql pretrain: error: --bc trains behaviour cloning alone (TD and CQL weights 0); "
        "drop --cql-alpha", _BAD),
    Row("contradictory_loss_weights", BAD, "every loss weight zero", "`ScaledQLConfig(td_weight=0, "
        "cql_alpha=0, bc_weight=0)`", "ValueError at construction.",
        "ScaledQLConfig.td_weight/cql_alpha/bc_weight: at least one loss weight must be positive",
        _BAD),
    Row("flag_out_of_range", BAD, "a flag's value out of range, e.g. `--steps 0`",
        "`scaled-ql pretrain --steps 0` (every validated flag of every subcommand)",
        _CLI_ERR + " naming the flag as typed (the API's error names the config field: "
        "`PretrainConfig.steps must be >= 1`); nothing is created.",
        "scaled-ql pretrain: error: --steps must be >= 1, got 0", _CLI),
    Row("learner_flag_out_of_range", BAD, "a learner flag out of range, e.g. `--batch-size 0`",
        "`scaled-ql pretrain --batch-size 0` (likewise the fine-tuning commands' learner "
        "flags, checked before the checkpoint is read)",
        _CLI_ERR + " naming the flag (the API's: `ScaledQLConfig.batch_size`).",
        "scaled-ql pretrain: error: --batch-size: must be >= 1, got 0", _CLI),
    Row("online_existing_run", BAD, "a run directory that holds checkpoints as `--out`",
        "`scaled-ql finetune-online --out RUN`", _CLI_ERR + "; nothing is overwritten, and "
        "no `--resume` is suggested (the command has none).",
        "scaled-ql finetune-online: error: {run_dir} already holds checkpoints: online runs "
        "cannot be resumed (their replay is not checkpointed): choose another --out", _CLI),
    Row("existing_dataset", BAD, "a dataset that exists already",
        "`scaled-ql collect` into a data_dir holding that game and run", _CLI_ERR + " "
        "(`scaled-ql collect: error: ` and this message) naming `--overwrite` (the API's: "
        "`overwrite=True`); the dataset is untouched.",
        "minatar/Breakout run 1: {path} already exists (pass --overwrite)", _CLI),
    Row("report_same_name_other_settings", BAD, "runs of one name but other settings, equal "
        "seeds (the default name `scaled_ql-<torso>` does not say `--cql-alpha`)",
        "`scaled-ql report RUN_A0 RUN_A1 RUN_B0 RUN_B1`",
        "One group per configuration (name and config.json less seed, paths and execution "
        "options), labelled by what differs, e.g. `scaled_ql-nature (cql_alpha=0.1)`; seeds of "
        "one configuration aggregate together; no 'was a run given twice?' error.", "",
        "tests/evaluation/test_report.py"),
    Row("truncated_evaluation", BAD, "an episode cap that ends games early, e.g. "
        "`--max-frames 300` on Pong", "`scaled-ql evaluate --max-frames N` (or a training "
        "command's `--eval-max-frames N`), then `scaled-ql report`",
        "Each cut-off episode is recorded as `truncated` in the results file; `evaluate` marks "
        "its games' rows with † and prints this line; the report marks the group's aggregate "
        "row and per-game scores with † and notes how many episodes at the final step were cut.",
        "† {cut} of {total} episodes cut at {frames} frames by the episode cap, before game "
        "over ({games}); their returns are those of unfinished games.",
        "tests/cli/test_evaluate_outputs.py", match="prefix"),
    Row("evaluate_existing_out", BAD, "`scaled-ql evaluate` of a checkpoint already evaluated "
        "(its `evaluate_step<N>.json` exists, or `--out` names an existing file)",
        "`scaled-ql evaluate --checkpoint RUN` twice", _CLI_ERR + "; the earlier file is "
        "untouched (`--overwrite` replaces it).",
        "scaled-ql evaluate: error: {out} exists (an earlier evaluation); pass --overwrite to "
        "replace it, or --out to write another file", "tests/cli/test_evaluate_outputs.py"),
    Row("checkpoint_folder_as_run", BAD, "one checkpoint's folder where a run directory is "
        "expected", "`scaled-ql evaluate --checkpoint RUN/checkpoints/12` (the library's "
        "`load_checkpoint` and `read_run_meta` alike)", "Accepted as that run at that step; "
        "with another `--checkpoint-step`, " + _CLI_ERR + ".",
        "scaled-ql evaluate: error: {path} is the checkpoint of step {step}, but "
        "--checkpoint-step {other} was given: pass the run directory {run_dir} with the step, "
        "or the checkpoint folder alone", "tests/cli/test_evaluate_outputs.py"),
)

# The last long sweep (`pytest tests/reliability --reliability-sweep 12`), for the doc.
MEASURED = (
    "Last sweep (`pytest tests/reliability --reliability-sweep 12`, 2 CPU cores): 12 of 12 "
    "single-process kills survived, at most 3 steps lost, 5 of the kills landed during a "
    "checkpoint write; `local_mp`: the learner killed (3 steps lost), the program resumed from "
    "step 80 as `local_mp`, then its evaluator killed (exit 1 naming it, checkpoints and "
    "recorded rounds kept).")

BY_ID = {row.id: row for row in ROWS}
assert len(BY_ID) == len(ROWS), "duplicate row ids"


def expect(row_id: str) -> Row:
    """The row `row_id` (a test that shows a behaviour row names it with this)."""
    return BY_ID[row_id]


def message(row_id: str, **fields) -> str:
    """Row `row_id`'s message with its placeholders filled in."""
    return BY_ID[row_id].message.format(**fields)


def check(row_id: str, text: str, **fields) -> None:
    """Asserts that `text` is what row `row_id` documents (exactly, or as its prefix)."""
    row = BY_ID[row_id]
    expected = message(row_id, **fields)
    if row.match == "prefix":
        assert text.startswith(expected), (
            f"{row_id}:\n  got      {text!r}\n  expected {expected!r}...")
    else:
        assert text == expected, f"{row_id}:\n  got      {text!r}\n  expected {expected!r}"


def _code(text: str) -> str:
    """`text` as a Markdown code span (doubled backticks when it contains one)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """docs/RELIABILITY.md."""
    lines = [
        "# Reliability: faults and bad input",
        "",
        "<!-- Generated by scripts/reliability_doc.py from tests/reliability/faults.py; "
        "tests/reliability/test_doc.py fails when they differ. Do not edit by hand. -->",
        "",
        "What happens when a run is killed, a node dies, a batch turns NaN, Reverb starves, or "
        "the input is wrong. Every row is asserted by the test named in it (`pytest "
        "tests/reliability`); messages are exact, `{...}` marks the parts that vary, and a "
        "message ending in `…` goes on (e.g. with the list of all games).",
        "",
        "## Guarantees",
        "",
        "- **Checkpoints are atomic.** Orbax writes `checkpoints/<step>.orbax-checkpoint-tmp-*` "
        "and renames it to `checkpoints/<step>/` when complete; the latest checkpoint is the "
        "newest complete folder, so it never points at a half-written one. The last "
        "`keep_checkpoints` (3) are kept. A killed process therefore loses at most "
        "`--checkpoint-every` steps (a power cut is not tested here: that also depends on the "
        "file system flushing its cache).",
        "- **What a checkpoint records:** the whole training state (online and target "
        "parameters, Adam state, step, RNG key, skipped-update count) as arrays, and JSON "
        "metadata: step, the learner config, the game suite (`atari` or `minatar`; absent in "
        "checkpoints written before suites existed, which are Atari), games and head sizes, the "
        "RNG key, and the data "
        "position where one exists: `extra.data_seed` and `extra.data_batches_read` (a resumed "
        "single-process run reseeds its shuffled stream with seed + step instead of replaying "
        "it; a Launchpad learner samples Reverb uniformly and has no stream position). No "
        "pickle anywhere.",
        "- **Resume** (`--resume`) restores the newest complete checkpoint, checks suite, games, "
        "head sizes and the run's configuration, drops `logs/learner.csv` rows after the "
        "checkpoint and says so on stderr. It refuses what would change the run's history: "
        "`--steps` below the newest checkpoint, another evaluation protocol, a folder without "
        "a run. An evaluation round already recorded is not played again; one interrupted by "
        "a signal is played again in full (rounds are recorded whole or not at all).",
        "- **Output folders:** a training command writes only into a new or empty folder or a "
        "run of its own kind; a fresh run that fails or is stopped before its first checkpoint "
        "leaves nothing behind.",
        "- **Nothing waits forever:** Reverb sampling has a timeout (`sampler_timeout_ms`), "
        "Launchpad programs are watched and stopped when any node dies (`launch_and_watch`), "
        "and the single-process loop stops cleanly on SIGINT/SIGTERM.",
        "",
        "## Measured (kill -9 tests)",
        "",
        "`tests/reliability/test_kill_resume.py` kills a single-process run at seeded random "
        "moments after a checkpoint appears (2 kills by default, N with `--reliability-sweep N`) "
        "and `test_launchpad_faults.py` kills the `local_mp` learner; each kill is followed by "
        "`--resume`. The tests assert that no kill loses more than `checkpoint_every` steps "
        "(3 single-process, 5 for the `local_mp` learner) and that every resumed run's first "
        "update is exactly one Adam step from the checkpoint it resumed. " + MEASURED,
        "",
    ]
    for kind, title in ((FAULT, "Faults"), (BAD, "Bad input")):
        lines += [f"## {title}", "", "| fault | where | what happens | message the user sees | "
                  "test |", "|---|---|---|---|---|"]
        for row in ROWS:
            if row.kind != kind:
                continue
            text = _code(row.message + ("…" if row.match == "prefix" else "")) if row.message \
                else "—"
            test = f"`{row.test.split('/')[-1]}`"
            lines.append(f"| {_cell(row.what)} | {_cell(row.where)} | {_cell(row.outcome)} | "
                         f"{_cell(text)} | {test} |")
        lines.append("")
    return "\n".join(lines)
