"""Offline Scaled QL from pixels on a real ALE game, with data from a scripted RAM player.

    .venv/bin/python scripts/study_pixels.py                       # everything, default sizes
    .venv/bin/python scripts/study_pixels.py --stage report --doc docs/PIXELS.md

Stages (each skips what its output already holds, so an interrupted study resumes):

1. behaviour  returns of the scripted player (`scaled_ql.agents.scripted`) for --epsilons,
              --behaviour-episodes episodes each (sticky actions 0.25): how good the data's
              policy is, and how much noise costs.                     -> OUT/behaviour.json
2. data       `scaled-ql collect --policy scripted_ram --epsilon E`: --data-steps steps of
              the game, logged as RLDS (one train split).              -> OUT/data/
3. pretrain   `scaled-ql pretrain --games GAME` from the 84x84x4 frames: the Nature CNN torso
              with the recipe's spatial embedding, GroupNorm, feature normalization and C51 +
              CQL, --steps SGD steps, --seeds seeds, evaluated on the real game.
                                                                       -> OUT/runs/seed<k>/
4. report     `scaled-ql report` over the seeds, and a summary comparing the learned policy's
              return with the data's (mean episode return of the dataset).
                                                         -> OUT/report/, OUT/summary.md

Every command is printed before it runs; each run logs to OUT/runs/seed<k>.log.
"""

import argparse
import concurrent.futures
import json
import pathlib
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "scaled_ql.cli"]
DOC_BEGIN = "<!-- study_pixels results: begin (written by scripts/study_pixels.py) -->"
DOC_END = "<!-- study_pixels results: end -->"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "study_out" / "pixels"))
    parser.add_argument("--stage", default="all",
                        choices=("all", "behaviour", "data", "pretrain", "report"))
    parser.add_argument("--game", default="Breakout", help="a game with a scripted player")
    parser.add_argument("--epsilon", type=float, default=0.5, help="the data's noise")
    parser.add_argument("--data-steps", type=int, default=100_000, help="logged env steps")
    parser.add_argument("--data-seed", type=int, default=17)
    parser.add_argument("--epsilons", default="0,0.1,0.25,0.5,1",
                        help="stage behaviour: the epsilons to measure")
    parser.add_argument("--behaviour-episodes", type=int, default=10)
    parser.add_argument("--behaviour-max-frames", type=int, default=20_000,
                        help="stage behaviour: episode cap in emulator frames")
    parser.add_argument("--steps", type=int, default=20_000, help="SGD steps per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="pre-training runs in parallel")
    parser.add_argument("--evals", type=int, default=4,
                        help="evaluation rounds per run (every --steps/--evals SGD steps)")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--eval-max-frames", type=int, default=18_000)
    parser.add_argument("--width", type=float, default=1.0, help="Nature CNN width multiplier")
    parser.add_argument("--feed-forward-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2.5e-4)
    parser.add_argument("--target-update-period", type=int, default=1_000)
    parser.add_argument("--cql-alpha", type=float, default=0.1)
    parser.add_argument("--shuffle-buffer", type=int, default=10_000)
    parser.add_argument("--doc", default=None,
                        help="also write the summary into this markdown file, between the "
                             "study_pixels markers")
    return parser.parse_args(argv)


def _show(command: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in command).replace(sys.executable, ".venv/bin/python")


# --- stages ------------------------------------------------------------------------------------

def behaviour(args, out: pathlib.Path) -> dict:
    """Returns of the scripted player per epsilon (measured once; OUT/behaviour.json)."""
    path = out / "behaviour.json"
    settings = dict(game=args.game, epsilons=args.epsilons, episodes=args.behaviour_episodes,
                    max_episode_frames=args.behaviour_max_frames, sticky_action_prob=0.25)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["settings"] == settings:
            return saved
    from scaled_ql.agents.scripted import play_episodes

    print(f"[behaviour] scripted {args.game} player, epsilons {args.epsilons}, "
          f"{args.behaviour_episodes} episodes each, cap {args.behaviour_max_frames} frames")
    rows = []
    for epsilon in (float(e) for e in args.epsilons.split(",")):
        start = time.time()
        played = play_episodes(args.game, epsilon=epsilon, seed=0,
                               num_episodes=args.behaviour_episodes,
                               max_episode_frames=args.behaviour_max_frames)
        rows.append(dict(epsilon=epsilon, returns=[r for r, _ in played],
                         steps=[s for _, s in played], seconds=time.time() - start))
        print(f"  epsilon {epsilon}: returns {rows[-1]['returns']}")
    result = dict(settings=settings, rows=rows)
    path.write_text(json.dumps(result, indent=1))
    return result


def data(args, out: pathlib.Path) -> pathlib.Path:
    from scaled_ql.datasets import rlds
    from scaled_ql.datasets.rlu_atari import find_datasets

    data_dir = out / "data"
    complete, unfinished = find_datasets(data_dir) if data_dir.exists() else ([], [])
    if complete:
        return data_dir
    command = [*CLI, "collect", "--games", args.game, "--policy", "scripted_ram",
               "--epsilon", str(args.epsilon), "--steps", str(args.data_steps),
               "--seed", str(args.data_seed), "--out", str(data_dir)]
    if unfinished or rlds.dataset_dir(data_dir, args.game, 1).exists():
        command.append("--overwrite")  # an interrupted earlier attempt
    print(f"[data] {_show(command)}", flush=True)
    subprocess.check_call(command)
    return data_dir


def pretrain_command(args, out: pathlib.Path, seed: int, resume: bool) -> list[str]:
    every = max(1, args.steps // max(1, args.evals))
    return [*CLI, "pretrain", "--data", str(out / "data"), "--games", args.game,
            "--steps", str(args.steps), "--eval-every", str(every),
            "--checkpoint-every", str(every),
            "--torso", "nature", "--width", str(args.width),
            "--feed-forward-size", str(args.feed_forward_size), "--num-groups", "8",
            "--cql-alpha", str(args.cql_alpha), "--batch-size", str(args.batch_size),
            "--learning-rate", str(args.learning_rate),
            "--target-update-period", str(args.target_update_period),
            "--shuffle-buffer", str(args.shuffle_buffer),
            "--eval-episodes", str(args.eval_episodes),
            "--eval-max-frames", str(args.eval_max_frames), "--eval-workers", "1",
            "--seed", str(seed), "--name", f"Scaled QL from pixels ({args.game})",
            "--method", "Scaled QL", "--no-progress", "--out", str(run_dir(out, seed)),
            *(["--resume"] if resume else [])]


def run_dir(out: pathlib.Path, seed: int) -> pathlib.Path:
    return out / "runs" / f"seed{seed}"


def finished(path: pathlib.Path, steps: int | None = None) -> bool:
    """Whether the run directory holds an evaluation of step `steps` (default: the final step
    of its own config.json)."""
    from scaled_ql.evaluation.results import read_results

    if not (path / "eval_results.json").exists():
        return False
    if steps is None:
        steps = json.loads((path / "config.json").read_text())["steps"]
    evaluations = read_results(path).evaluations
    return bool(evaluations) and max(e.step for e in evaluations) >= steps


def pretrain(args, out: pathlib.Path) -> list[str]:
    """Runs the seeds that have not finished (resuming interrupted ones); returns failures."""
    todo = [s for s in range(args.seeds) if not finished(run_dir(out, s), args.steps)]

    def one(seed):
        path = run_dir(out, seed)
        command = pretrain_command(args, out, seed, resume=(path / "checkpoints").exists())
        print(f"[pretrain seed {seed}] {_show(command)}", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.time()
        with open(path.parent / f"seed{seed}.log", "a") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        print(f"[pretrain seed {seed}] exit {code} after {time.time() - start:.0f} s", flush=True)
        with open(out / "jobs.jsonl", "a") as record:
            record.write(json.dumps(dict(seed=seed, exit=code, seconds=time.time() - start,
                                         command=command)) + "\n")
        return seed if code != 0 or not finished(path, args.steps) else None

    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        return [f"seed {s}" for s in pool.map(one, todo) if s is not None]


# --- report ------------------------------------------------------------------------------------

def data_returns(out: pathlib.Path, game: str) -> tuple[list[float], int]:
    """The returns of the dataset's complete episodes (not the one the step budget truncated)
    and its number of logged actions."""
    from scaled_ql.datasets import open_run

    returns, actions = [], 0
    for episode in open_run(game, 1, data_dir=out / "data").episodes(decode_frames=False):
        terminal = [bool(t) for t in episode["steps"].map(lambda step: step["is_terminal"])]
        actions += len(terminal) - 1  # the last step holds the final observation only
        if terminal[-1]:
            returns.append(float(episode["episode_return"]))
    return returns, actions


def report(args, out: pathlib.Path, behaviour_result: dict | None) -> str:
    import numpy as np

    from scaled_ql.datasets import rlds
    from scaled_ql.evaluation.results import read_results
    from scaled_ql.evaluation.scores import human_normalized

    sys.path.insert(0, str(ROOT / "scripts"))
    from study import _fmt, verdict  # the study's CI format and verdict rule

    runs = [run_dir(out, s) for s in range(args.seeds) if finished(run_dir(out, s))]
    complete, actions = data_returns(out, args.game)
    data_mean = float(np.mean(complete))
    provenance = json.loads((rlds.dataset_dir(out / "data", args.game, 1)
                             / rlds.PROVENANCE_FILE).read_text())
    lines = [f"Data: `scaled-ql collect --policy {provenance['policy']}` on {args.game}, "
             f"epsilon {provenance['policy_kwargs']['epsilon']:g}, sticky actions "
             f"{provenance['sticky_action_prob']:g}, "
             f"{actions:,} logged steps, {len(complete)} complete episodes, mean return "
             f"**{data_mean:.1f}** (min {min(complete):.0f}, max {max(complete):.0f}).", ""]
    if behaviour_result:
        lines += ["Scripted player, sticky actions 0.25, "
                  f"{behaviour_result['settings']['episodes']} episode(s) per epsilon (cap "
                  f"{behaviour_result['settings']['max_episode_frames']:,} frames):", "",
                  "| epsilon | mean return | returns |", "|---:|---:|---|"]
        for row in behaviour_result["rows"]:
            lines.append(f"| {row['epsilon']:g} | {np.mean(row['returns']):.1f} | "
                         f"{', '.join(f'{r:.0f}' for r in row['returns'])} |")
        lines.append("")
    if not runs:
        lines.append("(no pre-training run has finished)")
        return "\n".join(lines) + "\n"
    report_dir = out / "report"
    subprocess.check_call([*CLI, "report", "--out", str(report_dir), *map(str, runs)],
                          stdout=subprocess.DEVNULL)
    summary = json.loads((report_dir / "summary.json").read_text())
    group = summary["groups"][0]
    config = json.loads((runs[0] / "config.json").read_text())  # the seeds differ in seed only
    agent = config["agent"]
    lines += [f"Scaled QL from 84x84x4 frames ({config['steps']:,} SGD steps, batch "
              f"{agent['batch_size']}, learning rate {agent['learning_rate']:g}, target period "
              f"{agent['target_update_period']:,}, {agent['network']['torso']} torso width "
              f"{agent['network']['width_multiplier']:g}, CQL {agent['cql_alpha']:g}; "
              f"{group['num_params']:,} parameters), evaluated with {config['eval_episodes']} "
              f"episodes per round (cap {config['eval_max_episode_frames']:,} frames, sticky "
              f"actions {config['eval_sticky_action_prob']:g}, epsilon "
              f"{config['eval_epsilon']:g}):",
              "", "| seed | " + " | ".join(f"step {s:,}" for s in _steps(runs)) + " |",
              "|---:|" + "---:|" * len(_steps(runs))]
    finals = []
    for path in runs:
        results = read_results(path)
        means = {e.step: float(np.mean([x.episode_return for x in e.episodes]))
                 for e in results.evaluations}
        finals.append(means[max(means)])
        lines.append(f"| {results.run.seed} | "
                     + " | ".join(f"{means.get(s, float('nan')):.1f}" for s in _steps(runs))
                     + " |")
    seeds_above = sum(f > data_mean for f in finals)
    data_score = human_normalized(args.game, data_mean)
    iqm = group["aggregates"].get("IQM")
    lines += ["", f"Final return, mean over {len(finals)} seed(s): **{np.mean(finals):.1f}** "
              f"(seeds {', '.join(f'{f:.1f}' for f in finals)}) against the data's "
              f"**{data_mean:.1f}**; {seeds_above} of {len(finals)} seeds above the data.  "
              f"Human-normalized IQM over seeds: {_fmt(iqm)}, the data's "
              f"{data_score:.3f}.  " + verdict(
                  iqm, {"estimate": data_score, "lower": data_score, "upper": data_score},
                  other_is_data=True, claim="Scaled QL from pixels beats the data")[1] + ".",
              "", f"Report: `{report_dir}/report.md`."]
    return "\n".join(lines) + "\n"


def _steps(runs) -> list[int]:
    from scaled_ql.evaluation.results import read_results

    return sorted({e.step for path in runs for e in read_results(path).evaluations})


def write_doc(path: pathlib.Path, text: str) -> None:
    """Replaces the text between the study_pixels markers of `path` (appends them if absent)."""
    doc = path.read_text() if path.exists() else ""
    block = f"{DOC_BEGIN}\n\n{text}\n{DOC_END}"
    if DOC_BEGIN in doc and DOC_END in doc:
        head, _, rest = doc.partition(DOC_BEGIN)
        _, _, tail = rest.partition(DOC_END)
        doc = head + block + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    behaviour_result = None
    if args.stage in ("all", "behaviour"):
        behaviour_result = behaviour(args, out)
    elif (out / "behaviour.json").exists():
        behaviour_result = json.loads((out / "behaviour.json").read_text())
    if args.stage in ("all", "data"):
        data(args, out)
    failures = []
    if args.stage in ("all", "pretrain"):
        failures = pretrain(args, out)
    if args.stage in ("all", "report"):
        text = report(args, out, behaviour_result)
        (out / "summary.md").write_text(text)
        print(text)
        if args.doc:
            write_doc(pathlib.Path(args.doc), text)
    print(f"[study_pixels] {time.time() - start:.0f} s", file=sys.stderr)
    for failure in failures:
        print(f"failed: {failure} (log in {out / 'runs'})", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
