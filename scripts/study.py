"""The small-scale study of docs/RESULTS.md, end to end: data, training runs, reports, doc.

    .venv/bin/python scripts/study.py                 # `make study`: everything, ~2 h on 2 cores
    .venv/bin/python scripts/study.py --stage report  # rebuild reports + docs/RESULTS.md only

Stages (each skips work whose output already exists, so an interrupted study resumes):

1. data      `scaled-ql collect --policy online_c51`: one online C51 agent per game learns
             from its own replay for --env-steps steps while every step is logged as RLDS
             with checkpoint_id = the tenth of training it came from (DQN-Replay-like).
2. pretrain  on the sub-optimal split (checkpoint ids 0-1: the first 20% of training) of the
             pre-training games: Scaled QL at three widths of the Nature-CNN torso (with the
             recipe's spatial embedding, feature norm and per-game heads), C51 (CQL weight 0)
             and BC at the middle width, --seeds seeds each.
3. finetune  offline on the held-out game's data (pre-trained vs from scratch vs frozen
             torso) and online on a variant of a pre-training game (pre-trained vs scratch).
4. report    `scaled-ql report` per experiment, the data tables, and docs/RESULTS.md.

Every job is a `scaled-ql` command; they run --jobs at a time, each logging to its run
directory.  The commands are written into docs/RESULTS.md as run.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = str(ROOT / ".venv" / "bin" / "scaled-ql")

PRETRAIN_GAMES = ("Breakout", "Boxing", "RoadRunner", "Freeway")
HELD_OUT_GAME = "MsPacman"
SUBOPTIMAL = "0-1"  # checkpoint ids of the first 20% of each agent's training (10 in all)
# (label, width multiplier, shared feed-forward width) of the Scaled QL torso sizes.
SIZES = (("S", 0.5, 128), ("M", 1.0, 256), ("L", 2.0, 512))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "study_out"), help="data and run directories")
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="where RESULTS.md goes")
    parser.add_argument("--stage", default="all",
                        choices=("all", "data", "pretrain", "finetune", "report"))
    parser.add_argument("--env-steps", type=int, default=20_000,
                        help="online C51 steps per game (the logged dataset's size)")
    parser.add_argument("--steps", type=int, default=2_000, help="SGD steps per pre-training run")
    parser.add_argument("--finetune-steps", type=int, default=1_000)
    parser.add_argument("--online-env-steps", type=int, default=3_000)
    parser.add_argument("--variant", default="Freeway:1:0", help="GAME:MODE:DIFFICULTY")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--eval-max-frames", type=int, default=10_000)
    return parser.parse_args(argv)


# --- jobs ---------------------------------------------------------------------------------

def _common_train_flags(args) -> list[str]:
    return ["--batch-size", "32", "--learning-rate", "2.5e-4", "--target-update-period", "250",
            "--eval-episodes", str(args.eval_episodes),
            "--eval-max-frames", str(args.eval_max_frames), "--eval-workers", "1",
            "--no-progress"]


def pretrain_jobs(args, out: pathlib.Path) -> list[dict]:
    jobs = []
    configs = [(f"Scaled QL {label}", "Scaled QL", width, ff, []) for label, width, ff in SIZES]
    configs += [("C51 M", "C51", 1.0, 256, ["--cql-alpha", "0"]),
                ("BC M", "BC", 1.0, 256, ["--bc"])]
    for name, method, width, ff, extra in configs:
        for seed in range(args.seeds):
            run_dir = out / "runs" / "pretrain" / f"{name.replace(' ', '_')}_seed{seed}"
            command = [CLI, "pretrain", "--data", str(out / "data"),
                       "--games", ",".join(PRETRAIN_GAMES), "--checkpoints", SUBOPTIMAL,
                       "--steps", str(args.steps), "--eval-every", str(args.steps // 2),
                       "--checkpoint-every", str(args.steps // 2),
                       "--torso", "nature", "--width", str(width),
                       "--feed-forward-size", str(ff), "--num-groups", "8",
                       "--seed", str(seed), "--name", name, "--method", method,
                       "--out", str(run_dir), *extra, *_common_train_flags(args)]
            jobs.append(dict(name=f"pretrain {name} seed {seed}", run_dir=run_dir,
                             command=command, done=run_dir / "eval_results.json"))
    return jobs


def pretrained_run(out: pathlib.Path) -> pathlib.Path:
    return out / "runs" / "pretrain" / "Scaled_QL_M_seed0"


def finetune_jobs(args, out: pathlib.Path) -> list[dict]:
    jobs = []
    base = pretrained_run(out)
    for name, extra in (("pre-trained", []), ("from scratch", ["--from-scratch"]),
                        ("frozen torso", ["--freeze-torso"])):
        for seed in range(args.seeds):
            run_dir = out / "runs" / "finetune_offline" / f"{name.replace(' ', '_')}_seed{seed}"
            command = [CLI, "finetune-offline", "--checkpoint", str(base),
                       "--game", HELD_OUT_GAME, "--data", str(out / "data"),
                       "--steps", str(args.finetune_steps),
                       "--eval-every", str(args.finetune_steps // 2),
                       "--checkpoint-every", str(args.finetune_steps),
                       "--seed", str(seed), "--name", f"{HELD_OUT_GAME}: {name}",
                       "--out", str(run_dir), *extra, *_common_train_flags(args)]
            jobs.append(dict(name=f"finetune-offline {name} seed {seed}", run_dir=run_dir,
                             command=command, done=run_dir / "eval_results.json"))
    game, mode, difficulty = args.variant.split(":")
    for name, extra in (("pre-trained", []), ("from scratch", ["--from-scratch"])):
        for seed in range(args.seeds):
            run_dir = out / "runs" / "finetune_online" / f"{name.replace(' ', '_')}_seed{seed}"
            command = [CLI, "finetune-online", "--checkpoint", str(base), "--game", game,
                       "--mode", mode, "--difficulty", difficulty,
                       "--env-steps", str(args.online_env_steps), "--launch", "local_mt",
                       "--eval-every", "0", "--replay-min-size", "500",
                       "--eval-episodes", str(args.eval_episodes),
                       "--eval-max-frames", str(args.eval_max_frames), "--eval-workers", "1",
                       "--batch-size", "32", "--seed", str(seed),
                       "--name", f"{game} m{mode}d{difficulty}: {name}", "--out", str(run_dir),
                       *extra]
            jobs.append(dict(name=f"finetune-online {name} seed {seed}", run_dir=run_dir,
                             command=command, done=run_dir / "eval_results.json"))
    return jobs


def run_jobs(jobs: list[dict], num_parallel: int, log_path: pathlib.Path) -> list[dict]:
    """Runs the jobs whose output is missing, `num_parallel` at a time; returns failures."""
    from tqdm import tqdm

    todo = [j for j in jobs if not j["done"].exists()]
    failures = []

    def one(job):
        if job["run_dir"].exists():  # an interrupted earlier attempt: start it over
            shutil.rmtree(job["run_dir"])
        job["run_dir"].parent.mkdir(parents=True, exist_ok=True)
        log = job["run_dir"].parent / (job["run_dir"].name + ".log")
        start = time.time()
        with open(log, "w") as handle:
            code = subprocess.call(job["command"], stdout=handle, stderr=subprocess.STDOUT)
        return job, code, time.time() - start, log

    with open(log_path, "a") as record, tqdm(total=len(todo), unit="run", desc="study") as bar:
        with concurrent.futures.ThreadPoolExecutor(num_parallel) as pool:
            for job, code, seconds, log in pool.map(one, todo):
                record.write(json.dumps({"job": job["name"], "exit": code, "seconds": seconds,
                                         "command": job["command"]}) + "\n")
                record.flush()
                if code != 0 or not job["done"].exists():
                    failures.append(dict(job=job["name"], exit=code, log=str(log)))
                bar.update()
    return failures


# --- data -----------------------------------------------------------------------------------

def collect(args, out: pathlib.Path) -> None:
    games = (*PRETRAIN_GAMES, HELD_OUT_GAME)
    from scaled_ql.datasets.rlu_atari import find_datasets

    complete, _ = find_datasets(out / "data") if (out / "data").exists() else ([], [])
    have = {p.parent.name.rpartition("_run_")[0] for p in complete}
    missing = [g for g in games if g not in have]
    if not missing:
        return
    subprocess.check_call([CLI, "collect", "--games", ",".join(missing),
                           "--steps", str(args.env_steps), "--policy", "online_c51",
                           "--layout", "rlu_atari_checkpoints_ordered", "--workers",
                           str(args.jobs), "--seed", "11", "--out", str(out / "data")])


def data_table(out: pathlib.Path) -> dict:
    """game -> {checkpoint_id: (episodes, steps, mean return)} of the logged data."""
    from scaled_ql.datasets import inspect_run, open_run

    table = {}
    for game in (*PRETRAIN_GAMES, HELD_OUT_GAME):
        report = inspect_run(open_run(game, 1, data_dir=out / "data",
                                      layout="rlu_atari_checkpoints_ordered"),
                             decode_frames=False)
        table[game] = {int(c): dict(episodes=s.episodes, steps=s.steps, returns=list(s.returns))
                       for c, s in sorted(report.checkpoints.items())}
    return table


def top_action_share(out: pathlib.Path, game: str, first: int, last: int) -> tuple[int, float]:
    """The most frequent action of the logged steps with checkpoint ids first..last, and its
    share: offline learners trained on the split mostly see (and copy) that action."""
    import numpy as np

    from scaled_ql.datasets import open_run
    from scaled_ql.datasets.rlu_atari import EpisodeSelection

    run = open_run(game, 1, data_dir=out / "data", layout="rlu_atari_checkpoints_ordered")
    counts = np.zeros(32, np.int64)
    for episode in run.episodes(EpisodeSelection(checkpoints=(first, last)),
                                decode_frames=False):
        actions = np.asarray([int(s["action"]) for s in episode["steps"]])[:-1]  # last: no action
        counts += np.bincount(actions, minlength=32)[:32]
    return int(counts.argmax()), float(counts.max() / max(1, counts.sum()))


def split_return(per_checkpoint: dict, first: int, last: int) -> float:
    import numpy as np

    returns = [r for c, s in per_checkpoint.items() if first <= c <= last for r in s["returns"]]
    return float(np.mean(returns)) if returns else float("nan")


# --- report ---------------------------------------------------------------------------------

def _report(run_dirs: list[pathlib.Path], out_dir: pathlib.Path) -> dict | None:
    run_dirs = [d for d in run_dirs if (d / "eval_results.json").exists()]
    if not run_dirs:
        return None
    if out_dir.exists():
        shutil.rmtree(out_dir)
    subprocess.check_call([CLI, "report", "--out", str(out_dir), *map(str, run_dirs)],
                          stdout=subprocess.DEVNULL)
    return json.loads((out_dir / "summary.json").read_text())


def _iqm(summary: dict, label: str):
    for group in summary["groups"]:
        if group["label"] == label and "IQM" in group["aggregates"]:
            return group["aggregates"]["IQM"], group
    return None, None


def _fmt(interval: dict | None) -> str:
    if interval is None:
        return "n/a"
    return f"{interval['estimate']:.3f} [{interval['lower']:.3f}, {interval['upper']:.3f}]"


def _verdict(better: dict | None, worse_estimate: float | None) -> str:
    """'yes' when the CI's lower end clears the other number, 'no' when the estimate does not
    exceed it, 'inconclusive' in between."""
    if better is None or worse_estimate is None:
        return "not measured"
    if better["lower"] > worse_estimate:
        return "**reproduced**"
    if better["estimate"] <= worse_estimate:
        return "**not reproduced**"
    return "**inconclusive** (higher estimate, overlapping CI)"


def _plot_data(table: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scaled_ql.evaluation.scores import human_normalized

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for game, per in table.items():
        ids = [c for c in per if per[c]["returns"]]
        means = [human_normalized(game, split_return(per, c, c)) for c in ids]
        ax.plot(ids, means, marker="o", label=game)
    ax.axvspan(-0.4, 1.4, color="grey", alpha=0.15, label="sub-optimal split")
    ax.set_xlabel("checkpoint_id (tenth of the online agent's training)")
    ax.set_ylabel("human-normalized return of logged episodes")
    ax.set_title("The logged online C51 agents")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_results(args, out: pathlib.Path, docs: pathlib.Path) -> pathlib.Path:
    import numpy as np

    from scaled_ql.evaluation.scores import human_normalized

    results_dir = docs / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    table = data_table(out)
    _plot_data(table, results_dir / "data_checkpoints.png")
    runs = out / "runs"
    pre = _report(sorted((runs / "pretrain").glob("*_seed*/")), results_dir / "pretrain")
    off = _report(sorted((runs / "finetune_offline").glob("*_seed*/")),
                  results_dir / "finetune_offline")
    onl = _report(sorted((runs / "finetune_online").glob("*_seed*/")),
                  results_dir / "finetune_online")
    jobs_log = [json.loads(line) for line in (out / "jobs.jsonl").read_text().splitlines()] \
        if (out / "jobs.jsonl").exists() else []

    behaviour = {g: split_return(table[g], 0, 1) for g in PRETRAIN_GAMES}
    behaviour_norm = [human_normalized(g, r) for g, r in behaviour.items()]
    behaviour_iqm = float(np.mean(sorted(behaviour_norm)[1:-1])) if len(behaviour_norm) >= 4 \
        else float(np.mean(behaviour_norm))
    lines = [
        "# Results: a small-scale reproduction of the Scaled QL claims",
        "",
        f"Generated by `scripts/study.py` (`make study`) on {datetime.date.today()}, machine: "
        f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}, no accelerator "
        "(no GPU was lent to this task, so everything below is CPU-scale).  Every number is "
        "from the run directories under `study_out/`; the commands are at the end.",
        "",
        "## The data: online C51 agents, logged like the DQN Replay Dataset",
        "",
        f"Each game was played by its own online C51 agent (`scaled-ql collect --policy "
        f"online_c51`, CQL weight 0, Nature CNN, 3-step returns, one SGD step per 4 "
        f"environment steps after 1,600, epsilon 1 -> 0.05 over the first 10%) for "
        f"{args.env_steps:,} environment steps; every step was logged as RLDS in the "
        "`rlu_atari_checkpoints_ordered` layout with `checkpoint_id` = the tenth of training "
        "(0-9).  An episode carries the id it started in.  **Sub-optimal split** = ids 0-1 "
        "(the first 20% of training, as the paper's first 20% of DQN Replay checkpoints); "
        "**near-optimal** = all.  Sticky actions 0.25, the games' minimal action sets, "
        "the standard preprocessing (docs/ENVIRONMENTS.md).",
        "",
        "| game | episodes (all) | steps (all) | return, ids 0-1 | return, ids 8-9 | "
        "return, all | most frequent action in ids 0-1 (share) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for game, per in table.items():
        episodes = sum(s["episodes"] for s in per.values())
        steps = sum(s["steps"] for s in per.values())
        action, share = top_action_share(out, game, 0, 1)
        lines.append(f"| {game}{' (held out)' if game == HELD_OUT_GAME else ''} | {episodes} | "
                     f"{steps:,} | {split_return(per, 0, 1):.1f} | {split_return(per, 8, 9):.1f}"
                     f" | {split_return(per, 0, 9):.1f} | {action} ({share:.0%}) |")
    lines += ["", "![data](results/data_checkpoints.png)", ""]

    lines += ["## Claim 1: offline Q-learning beats the data and imitation (sub-optimal split)",
              ""]
    if pre:
        lines += [
            f"Pre-training on the sub-optimal split of {', '.join(PRETRAIN_GAMES)} "
            f"({args.steps:,} SGD steps, batch 32, {args.seeds} seeds; evaluation: "
            f"{args.eval_episodes} episodes per game, at most {args.eval_max_frames:,} frames, "
            "epsilon 0.001, sticky actions).  Human-normalized IQM over games x seeds with 95% "
            "stratified-bootstrap CIs (docs/EVALUATION.md).",
            "",
            "| method | params | IQM [95% CI] | median | mean | "
            + " | ".join(f"{g} return" for g in PRETRAIN_GAMES) + " |",
            "|---|---:|---:|---:|---:|" + "---:|" * len(PRETRAIN_GAMES),
            f"| behaviour policy (data, ids 0-1) | - | {behaviour_iqm:.3f} | - | - | "
            + " | ".join(f"{behaviour[g]:.1f}" for g in PRETRAIN_GAMES) + " |",
        ]
        for group in pre["groups"]:
            agg = group["aggregates"]
            lines.append(
                f"| {group['label']} | {group['num_params'] or '-'} | {_fmt(agg.get('IQM'))} | "
                f"{agg['Median']['estimate']:.3f} | {agg['Mean']['estimate']:.3f} | "
                + " | ".join(f"{group['game_returns'].get(g, float('nan')):.1f}"
                             for g in PRETRAIN_GAMES) + " |")
        sq, _ = _iqm(pre, "Scaled QL M")
        bc, _ = _iqm(pre, "BC M")
        c51, _ = _iqm(pre, "C51 M")
        lines += [
            "",
            f"- Scaled QL M beats the behaviour policy (IQM {behaviour_iqm:.3f}): "
            f"{_verdict(sq, behaviour_iqm)}.",
            f"- Scaled QL M beats BC M ({_fmt(bc)}): "
            f"{_verdict(sq, bc['estimate'] if bc else None)}.",
            f"- Scaled QL M beats C51 M without CQL ({_fmt(c51)}): "
            f"{_verdict(sq, c51['estimate'] if c51 else None)}.",
        ]
        for group in pre["groups"]:
            above = [g for g in PRETRAIN_GAMES
                     if group["game_returns"].get(g, float("-inf")) > behaviour[g]]
            lines.append(f"- {group['label']} returns more than the behaviour policy on "
                         f"{len(above)} of {len(PRETRAIN_GAMES)} games"
                         + (f" ({', '.join(above)})" if above else "") + ".")
        for pair in pre["probability_of_improvement"]:
            if pair["x"].startswith("Scaled QL M") or pair["y"].startswith("Scaled QL M"):
                lines.append(f"- P({pair['x']} > {pair['y']}) = {_fmt(pair)}")
        lines += ["", "![curves](results/pretrain/learning_curves_iqm.png)",
                  "![profiles](results/pretrain/performance_profiles.png)", ""]
        lines += ["## Claim 2: it improves with model size", ""]
        sizes = [(g["num_params"], g["aggregates"].get("IQM"), g["label"])
                 for g in pre["groups"] if g["method"] == "Scaled QL"]
        for params, iqm, label in sorted(sizes, key=lambda x: x[0] or 0):
            lines.append(f"- {label}: {params:,} parameters, IQM {_fmt(iqm)}")
        ordered = [iqm["estimate"] for _, iqm, _ in sorted(sizes, key=lambda x: x[0] or 0)
                   if iqm]
        monotone = len(ordered) >= 3 and all(a < b for a, b in zip(ordered, ordered[1:]))
        lines += ["", "Monotone improvement with size: "
                  + ("**reproduced** (estimates only; see the CIs)" if monotone
                     else "**not reproduced** at this scale") + ".", "",
                  "![scaling](results/pretrain/scaling.png)", ""]
    else:
        lines += ["(no pre-training run finished)", ""]

    lines += ["## Claim 3: the pre-trained network transfers", ""]
    for title, summary, folder, labels in (
            (f"Offline fine-tuning on the held-out game {HELD_OUT_GAME} "
             f"({args.finetune_steps:,} SGD steps on all of its logged data)", off,
             "finetune_offline",
             [f"{HELD_OUT_GAME}: {n}" for n in ("pre-trained", "from scratch", "frozen torso")]),
            (f"Online fine-tuning on the variant {args.variant} ({args.online_env_steps:,} "
             "environment steps)", onl, "finetune_online",
             [f"{args.variant.split(':')[0]} m{args.variant.split(':')[1]}"
              f"d{args.variant.split(':')[2]}: {n}" for n in ("pre-trained", "from scratch")])):
        lines += [f"### {title}", ""]
        if not summary:
            lines += ["(not run)", ""]
            continue
        lines += ["| run | IQM human-normalized [95% CI] | return |", "|---|---:|---:|"]
        for group in summary["groups"]:
            ret = next(iter(group["game_returns"].values()), float("nan"))
            lines.append(f"| {group['label']} | {_fmt(group['aggregates'].get('IQM'))} | "
                         f"{ret:.1f} |")
        pre_iqm, _ = _iqm(summary, labels[0])
        scratch, _ = _iqm(summary, labels[1])
        lines += ["", f"- pre-trained beats from scratch: "
                  f"{_verdict(pre_iqm, scratch['estimate'] if scratch else None)}.",
                  "", f"![curves](results/{folder}/learning_curves_games.png)", ""]

    lines += [
        "## Scale, and what this study cannot show",
        "",
        f"- Data: {args.env_steps:,} environment steps per game (the paper: 50M per game, 5 "
        f"runs); the sub-optimal split is about {args.env_steps // 5:,} steps per game.  "
        "An online agent that learns little "
        "in that budget makes data near the behaviour of an untrained network (see the data "
        "table: how much each agent improved from ids 0-1 to ids 8-9).",
        "- The sub-optimal split is dominated by one action per game (last column of the data "
        "table): the online agents' epsilon reached 0.05 within the first tenth, and an early "
        "greedy network repeats one action.  Offline learners on such data mostly learn to "
        "repeat it; runs whose returns are identical across sizes or initialisations above "
        "play the same (deterministic, seeded) episodes with the same actions.",
        "- Torso: the three sizes are the Nature CNN at widths 0.5 / 1 / 2 with the recipe's "
        "spatial embedding, feature normalization and per-game heads, not ResNets.  On this "
        "2-core CPU a ResNet-18 even at width 0.125 took about 0.6 s per SGD step at batch 32 "
        "(under load; Nature CNN width 1: about 0.1 s), which would not fit the two-hour budget; "
        "the GPU machine that would run the ResNet sizes was not lent to this task.",
        f"- Training: {args.steps:,} SGD steps at batch 32 per pre-training run, {args.seeds} "
        f"seeds; evaluation with {args.eval_episodes} episodes per game.  "
        "CIs are wide at this size; a verdict of 'reproduced' requires the "
        "lower end of the 95% CI to clear the comparison, 'not reproduced' that the estimate "
        "does not exceed it.  A CI of zero width means every seed scored the same (the same "
        "greedy actions on the same seeded episodes), not certainty: the Freeway-variant "
        "transfer result rests on one game and identical seeds.",
        "",
    ]
    last_attempt = {j["job"]: j for j in jobs_log}  # a failed job rerun later counts once
    failed = [j for j in last_attempt.values() if j["exit"] != 0]
    failed_note = "; failed: " + ", ".join(j["job"] for j in failed) if failed else ""
    total_s = sum(j["seconds"] for j in jobs_log)
    lines += [
        "## How to rerun",
        "",
        "    make study            # = .venv/bin/python scripts/study.py",
        "",
        f"{len(jobs_log)} training/evaluation jobs ran ({total_s / 3600:.2f} job-hours, "
        f"{args.jobs} at a time){failed_note}.  The exact commands:",
        "",
    ]
    seen = set()
    for job in jobs_log:
        if job["job"] in seen:
            continue
        seen.add(job["job"])
        lines.append("    " + " ".join(c if " " not in c else repr(c) for c in job["command"])
                     .replace(str(ROOT) + "/", ""))
    path = docs / "RESULTS.md"
    path.write_text("\n".join(lines) + "\n")
    (results_dir / "data.json").write_text(json.dumps(table))
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    if args.stage in ("all", "data"):
        collect(args, out)
    if args.stage in ("all", "pretrain"):
        failures += run_jobs(pretrain_jobs(args, out), args.jobs, out / "jobs.jsonl")
    if args.stage in ("all", "finetune"):
        if not (pretrained_run(out) / "eval_results.json").exists():
            print(f"error: finetuning needs {pretrained_run(out)}", file=sys.stderr)
            return 1
        failures += run_jobs(finetune_jobs(args, out), args.jobs, out / "jobs.jsonl")
    if args.stage in ("all", "report"):
        print(write_results(args, out, pathlib.Path(args.docs)))
    for failure in failures:
        print(f"failed: {failure['job']} (exit {failure['exit']}), log {failure['log']}",
              file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
