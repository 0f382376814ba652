"""GPU: offline Scaled QL on a real ALE game from 84x84x4 frames at several network sizes.

Claim 2 (scales with capacity) from real Atari pixels: the same data, the same SGD steps and the
same recipe (C51 + CQL, the spatial embedding, GroupNorm, feature normalization) with the
Nature CNN, ResNet-18, ResNet-34 and ResNet-50 torsos of `scaled_ql.networks`, one game's head,
each run evaluated on the real game; return against parameter count.

    .venv/bin/python scripts/gpu_pixels.py export             # here (TF): -> .gpu_data/
    python3 scripts/gpu_pixels.py train --budget-s 420 --out gpu_pixels.json   # on the GPU
    .venv/bin/python scripts/gpu_pixels.py report --results gpu_pixels.json   # here (docs/)

Stages:

1. export  reads the RLDS dataset through `scaled_ql.datasets` (default: the study's pixels
           data, study_out/pixels/data: 100,000 steps of Breakout by the scripted RAM player
           with epsilon 0.5) and writes what training needs as one compressed numpy file
           (`EpisodeArrays`: every step's frame as stored, actions, raw rewards, `is_terminal`,
           episode offsets and returns; about 8 MB for the 100,000 steps of Breakout, whose
           frames compress ~80x).                                   -> .gpu_data/<game>.npz
2. train   imports only the pure core (networks, the Scaled QL SGD step, the ALE environment
           and the batched evaluator: no TensorFlow, Reverb or Acme), so it runs on a GPU
           machine with the image's JAX.  `TransitionTable` builds, in numpy, exactly the
           transitions `scaled_ql.datasets.transitions` builds from the same episodes (4-frame
           stacks zero-padded at episode starts, n-step returns of clipped rewards, discount 0
           only at a terminal last step; tests/test_gpu_pixels.py checks the equality).  The
           frames live on the device; each jitted call draws `--chunk` batches of indices
           uniformly over all transitions (with replacement; the library's stream shuffles a
           10,000-transition buffer instead), gathers the stacks on the device and runs the
           library's SGD step (`make_sgd_step`) on each in a `lax.scan`.  Runs go round-robin
           over seeds (every size's seed 0, then seed 1, ...), so whatever the `--budget-s`
           allows is balanced; one compiled step per size serves all its seeds.  Each run ends
           with an evaluation on the real game with the library's protocol (sticky actions
           0.25, epsilon 0.001, `--eval-episodes` episodes of at most `--eval-max-frames`
           emulator frames, all episodes in one batch in this process with the policy jitted
           at a fixed batch size).  The JSON is rewritten after every run.
3. report  each train JSON -> a markdown section (one row per size: parameters, seeds, SGD
           steps, batch, wall time, mean return per seed, mean and 95% bootstrap CI over
           seeds, the data's mean episode return), written into --doc below its
           `GENERATED_MARKER` line, one plot of return against parameter count (the files
           with more than one size) and one of return against SGD steps (a line per size and
           recipe, for each size that one recipe trained at several step budgets; the
           recipes are told apart by `RECIPE_FIELDS`, the settings that differ between files:
           method (BC, or the CQL weight), n-step, target period, learning rate, batch).
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python3 scripts/gpu_pixels.py` from the repository root
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT / "study_out" / "pixels" / "data"
DEFAULT_EXPORT = ROOT / ".gpu_data"
DEFAULT_DOC = ROOT / "docs" / "PIXELS_GPU.md"
DEFAULT_PLOT = ROOT / "docs" / "results" / "pixels_gpu_scaling.png"
DEFAULT_STEPS_PLOT = ROOT / "docs" / "results" / "pixels_gpu_steps.png"
GENERATED_MARKER = "<!-- below: written by scripts/gpu_pixels.py report -->"
SIZES = ("nature", "resnet18", "resnet34", "resnet50")
# The networks of the sizes: the Nature CNN exactly as scripts/study_pixels.py trains it on CPU
# (8 GroupNorm groups: its layers have 32-64 channels); the ResNets at the library's defaults.
NETWORK_KWARGS = {
    "nature": dict(torso="nature", num_groups=8),
    "resnet18": dict(torso="resnet18"),
    "resnet34": dict(torso="resnet34"),
    "resnet50": dict(torso="resnet50"),
}


class ExportError(ValueError):
    """An exported data file is missing fields or inconsistent."""


# --- export ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class EpisodeArrays:
    """A game's episodes as flat arrays, steps of all episodes concatenated in file order.

    Attributes:
      frames: uint8 [N, H, W, C], each RLDS step's frame as stored (Atari [N, 84, 84, 1]).
      actions: int32 [N] (the last step of an episode holds a meaningless action).
      rewards: float32 [N], raw (unclipped) rewards.
      is_terminal: bool [N].
      starts: int64 [E + 1], the first step of each episode, then N.
      episode_returns: float32 [E], the RLDS `episode_return` of each episode.
      game: the game's catalogue name.
    """

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    is_terminal: np.ndarray
    starts: np.ndarray
    episode_returns: np.ndarray
    game: str

    def __post_init__(self):
        n = len(self.frames)
        for name in ("actions", "rewards", "is_terminal"):
            if len(getattr(self, name)) != n:
                raise ExportError(f"{name} has {len(getattr(self, name))} steps, frames {n}")
        if self.starts[0] != 0 or self.starts[-1] != n or np.any(np.diff(self.starts) < 1):
            raise ExportError(f"starts must rise from 0 to {n}, got {self.starts[:3]}...")
        if len(self.episode_returns) != len(self.starts) - 1:
            raise ExportError("one episode_return per episode")

    @property
    def num_episodes(self) -> int:
        return len(self.starts) - 1

    def complete_returns(self) -> np.ndarray:
        """The returns of the episodes that ended in a game over (not the truncated ones)."""
        return self.episode_returns[self.is_terminal[self.starts[1:] - 1]]

    def save(self, path: pathlib.Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        np.savez_compressed(path, **{**fields, "game": np.asarray(self.game)})

    @classmethod
    def load(cls, path: pathlib.Path) -> "EpisodeArrays":
        with np.load(path) as data:
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in data]
            if missing:
                raise ExportError(f"{path}: missing {missing}")
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)
                          if f.name != "game"}, game=str(data["game"]))


def read_episodes(data_dir, game: str, run: int = 1) -> EpisodeArrays:
    """Every episode of `game` run `run` in `data_dir`, read through `scaled_ql.datasets`."""
    from scaled_ql.datasets import open_run

    frames, actions, rewards, terminal, lengths, returns = [], [], [], [], [], []
    for episode in open_run(game, run, data_dir=str(data_dir)).episodes(steps_as_tensors=True):
        steps = {k: v.numpy() for k, v in episode["steps"].items()}
        frames.append(steps["observation"])
        actions.append(steps["action"].astype(np.int32))
        rewards.append(steps["reward"].astype(np.float32))
        terminal.append(steps["is_terminal"].astype(bool))
        lengths.append(len(steps["action"]))
        returns.append(float(episode["episode_return"]))
    return EpisodeArrays(
        frames=np.concatenate(frames), actions=np.concatenate(actions),
        rewards=np.concatenate(rewards), is_terminal=np.concatenate(terminal),
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        episode_returns=np.asarray(returns, np.float32), game=game)


def export(args) -> pathlib.Path:
    start = time.time()
    episodes = read_episodes(args.data, args.game, args.run)
    path = pathlib.Path(args.out) / f"{args.game}.npz"
    episodes.save(path)
    print(f"[export] {args.game}: {episodes.num_episodes} episodes, {len(episodes.frames):,} "
          f"steps -> {path} ({path.stat().st_size / 2**20:.1f} MiB, "
          f"{time.time() - start:.0f} s)")
    return path


# --- transitions -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TransitionTable:
    """Every transition of `EpisodeArrays` as indices into its frames, built as
    `scaled_ql.datasets.transitions.episode_transitions` builds them (see its docstring).

    Attributes:
      stack: int32 [M, S], the frames of each observation, oldest first; index N (one past the
        last frame) is the zero frame before an episode's start.
      next_stack: int32 [M, S], the same for the next observation (k steps later).
      action: int32 [M].
      reward: float32 [M], sum_{i<k} gamma^i clip(r_{t+i}).
      discount: float32 [M], 0 if the episode's terminal last step is reached, else gamma^k.
    """

    stack: np.ndarray
    next_stack: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray

    def __len__(self) -> int:
        return len(self.action)

    @classmethod
    def build(cls, episodes: EpisodeArrays, *, n_step: int = 1, discount: float = 0.99,
              stack_size: int = 4, clip_rewards: bool = True) -> "TransitionTable":
        """The transitions, episode by episode in order (t = 0 .. T-2 of each)."""
        zero = len(episodes.frames)
        parts = {name: [] for name in ("t", "next_t", "start", "reward", "discount")}
        for first, end in zip(episodes.starts[:-1], episodes.starts[1:]):
            num_steps = int(end - first)
            m = num_steps - 1
            if m < 1:
                continue
            rewards = episodes.rewards[first:first + m]
            if clip_rewards:
                rewards = np.clip(rewards, -1.0, 1.0)
            # float32 sums in the order of the library's (tf) loop, so the values are equal.
            padded = np.concatenate([rewards, np.zeros(n_step, np.float32)])
            returns = np.zeros(m, np.float32)
            for i in range(n_step):
                returns += np.float32(discount ** i) * padded[i:i + m]
            t = np.arange(m)
            k = np.minimum(n_step, num_steps - 1 - t)
            terminal = episodes.is_terminal[end - 1] & (t + k == num_steps - 1)
            parts["t"].append(first + t)
            parts["next_t"].append(first + t + k)
            parts["start"].append(np.full(m, first))
            parts["reward"].append(returns)
            parts["discount"].append(np.where(
                terminal, np.float32(0.0),
                np.power(np.float32(discount), k.astype(np.float32))).astype(np.float32))
        t, next_t, start = (np.concatenate(parts[n]) for n in ("t", "next_t", "start"))
        offsets = np.arange(-stack_size + 1, 1)  # [S]: oldest first

        def stack(index):
            frames = index[:, None] + offsets[None, :]  # [M, S]
            return np.where(frames >= start[:, None], frames, zero).astype(np.int32)

        return cls(stack=stack(t), next_stack=stack(next_t),
                   action=episodes.actions[t].astype(np.int32),
                   reward=np.concatenate(parts["reward"]),
                   discount=np.concatenate(parts["discount"]))


def padded_frames(frames: np.ndarray) -> np.ndarray:
    """[N, H, W, C] -> [N + 1, H, W, C] with a zero frame last (`TransitionTable`'s index N)."""
    return np.concatenate([frames, np.zeros_like(frames[:1])])


def gather(frames, table: TransitionTable, index, xp=np):
    """The `scaled_ql.types.Transition`s [B] at `index` [B] of `table`, observations
    [B, H, W, S*C] from `frames` ([N + 1, H, W, C], `padded_frames`); `xp` is numpy, or
    jax.numpy for arrays on a device (a TransitionTable of device arrays)."""
    from scaled_ql.types import Transition

    def observation(stack):
        window = frames[stack[index]]  # [B, S, H, W, C]
        batch, size, height, width, channels = window.shape
        return xp.reshape(xp.transpose(window, (0, 2, 3, 1, 4)),
                          (batch, height, width, size * channels))

    return Transition(observation=observation(table.stack), action=table.action[index],
                      reward=table.reward[index], discount=table.discount[index],
                      next_observation=observation(table.next_stack),
                      game_id=xp.zeros(index.shape, xp.int32))


# --- train -------------------------------------------------------------------------------------

def agent_config(args, size: str):
    """The learner's config of one size: study_pixels.py's recipe at this script's batch;
    with --bc the same network trained by behaviour cloning alone (as `scaled-ql pretrain
    --bc`: no TD, no CQL, cross-entropy of softmax(Q) on the data's actions)."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig

    losses = (dict(td_weight=0.0, cql_alpha=0.0, bc_weight=1.0) if args.bc else
              dict(cql_alpha=args.cql_alpha))
    return ScaledQLConfig(
        network=NetworkConfig(**NETWORK_KWARGS[size]), learning_rate=args.learning_rate,
        target_update_period=args.target_update_period, batch_size=args.batch_size,
        compute_dtype=args.dtype, **losses)


class SizeTrainer:
    """One size's networks, its jitted training chunk and its jitted evaluation policy,
    compiled once and shared by the size's seeds."""

    def __init__(self, args, size: str, game: str, device_data):
        import jax
        import jax.numpy as jnp

        from scaled_ql.agents.scaled_ql import make_sgd_step
        from scaled_ql.agents.scaled_ql.losses import masked_argmax
        from scaled_ql.environments.games import get_game
        from scaled_ql.networks import make_networks

        self.size, self.args, self.game = size, args, game
        self.config = agent_config(args, size)
        self.networks = make_networks(self.config.network, [get_game(game).num_actions])
        sgd_step = make_sgd_step(self.networks, self.config)
        batch_size, chunk = args.batch_size, args.chunk

        def train_chunk(state, key, frames, fields):
            table = TransitionTable(*fields)

            def body(state, key):
                index = jax.random.randint(key, (batch_size,), 0, table.action.shape[0])
                state, metrics = sgd_step(state, gather(frames, table, index, xp=jnp))
                return state, {k: metrics[k] for k in ("loss", "td_loss", "cql_loss",
                                                       "bc_loss", "mean_q", "grad_norm")
                               if k in metrics}  # terms with weight 0 are not computed

            state, metrics = jax.lax.scan(body, state, jax.random.split(key, chunk))
            return state, jax.tree_util.tree_map(jnp.mean, metrics)

        self._train_chunk = jax.jit(train_chunk, donate_argnums=0)
        self._device_data = device_data
        num_actions = get_game(game).num_actions
        networks, dtype, epsilon = self.networks, args.dtype, args.eval_epsilon

        def policy(params, key, observation):  # epsilon-greedy, as the library's evaluator
            output = networks.apply(params, observation, jnp.zeros(observation.shape[:1],
                                                                   jnp.int32), dtype)
            greedy = masked_argmax(output.q_values, output.action_mask).astype(jnp.int32)
            explore_key, action_key = jax.random.split(key)
            random_action = jax.random.randint(action_key, greedy.shape, 0, num_actions)
            explore = jax.random.uniform(explore_key, greedy.shape) < epsilon
            return jnp.where(explore, random_action, greedy)

        self._policy = jax.jit(policy)

    def run(self, seed: int) -> dict:
        """Trains seed `seed` for `--steps` SGD steps and evaluates it; one result row."""
        import jax

        from scaled_ql.agents.scaled_ql import init_training_state
        from scaled_ql.environments.vector import evaluate_policy

        args = self.args
        began = time.perf_counter()
        init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
        # Committed to the device like the chunk's outputs, so the second call reuses the
        # first one's compilation (jax 0.11.2 recompiles for uncommitted inputs otherwise).
        state = jax.device_put(init_training_state(self.networks, self.config, init_key),
                               jax.devices()[0])
        params = int(self.networks.parameter_counts(state.params)["total"])
        frames, fields = self._device_data
        chunks = max(1, args.steps // args.chunk)
        first = None
        history = []
        for i in range(chunks):
            state, metrics = self._train_chunk(state, jax.random.fold_in(data_key, i), frames,
                                               fields)
            if i == 0:
                jax.block_until_ready(state)
                first = time.perf_counter() - began  # compile (first seed of a size) + 1 chunk
            if i == chunks - 1 or (i + 1) % max(1, chunks // 4) == 0:
                history.append({"step": (i + 1) * args.chunk,
                                **{k: float(v) for k, v in metrics.items()}})
        jax.block_until_ready(state)
        train_s = time.perf_counter() - began
        loop_s = (train_s - first) / max(1, chunks - 1) / args.chunk if chunks > 1 else None

        eval_began = time.perf_counter()
        params_tree = state.params
        width = args.eval_episodes
        base_key = jax.random.PRNGKey(10_000 + seed)
        calls = [0]

        def act(observations: np.ndarray, game_ids: np.ndarray) -> np.ndarray:
            count = len(observations)
            batch = np.zeros((width, *observations.shape[1:]), np.uint8)  # one compiled shape
            batch[:count] = observations
            calls[0] += 1
            key = jax.random.fold_in(base_key, calls[0])
            return np.asarray(self._policy(params_tree, key, batch))[:count]

        episodes = evaluate_policy(
            act, [self.game], args.eval_episodes, seed=seed, sticky_action_prob=args.sticky,
            max_episode_frames=args.eval_max_frames, num_workers=0, envs_per_worker=width,
            progress=False)
        returns = [float(e.episode_return) for e in episodes]
        return {"size": self.size, "torso": self.config.network.torso, "seed": seed,
                "params": params, "sgd_steps": chunks * args.chunk,
                "batch_size": args.batch_size, "train_s": train_s, "first_chunk_s": first,
                "ms_per_step": None if loop_s is None else 1e3 * loop_s,
                "eval_s": time.perf_counter() - eval_began, "returns": returns,
                "episode_frames": [int(e.frames) for e in episodes],
                "truncated": [bool(e.truncated) for e in episodes],
                "mean_return": float(np.mean(returns)), "metrics": history,
                "skipped_updates": int(state.num_skipped_updates)}


def run_order(sizes, seeds) -> list[tuple[int, str]]:
    """(seed, size) round-robin over seeds: every size's seed 0, then every size's seed 1..."""
    return [(seed, size) for seed in range(seeds) for size in sizes]


def train(args) -> dict:
    import jax

    began = time.perf_counter()
    episodes = EpisodeArrays.load(pathlib.Path(args.data_file))
    table = TransitionTable.build(episodes, n_step=args.n_step, discount=args.discount)
    device = jax.devices()[0]
    frames = jax.device_put(padded_frames(episodes.frames), device)
    device_table = tuple(jax.device_put(getattr(table, f.name), device)
                         for f in dataclasses.fields(TransitionTable))  # TransitionTable(*...)
    complete = episodes.complete_returns()
    result = {
        "date": _now(), "command": "python3 scripts/gpu_pixels.py " + " ".join(args.argv),
        "device": f"{device.platform}: {device.device_kind}", "jax": jax.__version__,
        "settings": {k: getattr(args, k) for k in (
            "sizes", "seeds", "steps", "chunk", "batch_size", "learning_rate", "bc",
            "cql_alpha", "target_update_period", "n_step", "discount", "dtype", "eval_episodes",
            "eval_max_frames", "eval_epsilon", "sticky", "budget_s")},
        "data": {"file": str(args.data_file), "game": episodes.game,
                 "steps": int(len(episodes.frames)), "episodes": episodes.num_episodes,
                 "transitions": len(table), "complete_episodes": int(len(complete)),
                 "mean_complete_return": float(np.mean(complete)) if len(complete) else None},
        "load_s": time.perf_counter() - began, "runs": [], "not_run": []}
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write():
        result["seconds"] = time.perf_counter() - began
        out.write_text(json.dumps(result, indent=1) + "\n")

    write()
    print(f"[train] {result['device']}, jax {jax.__version__}: {len(table):,} transitions of "
          f"{episodes.game} on the device ({result['load_s']:.0f} s)", flush=True)
    trainers: dict[str, SizeTrainer] = {}
    last_s: dict[str, float] = {}
    for seed, size in run_order(args.sizes, args.seeds):
        elapsed = time.perf_counter() - began
        if args.budget_s is not None and elapsed + 1.1 * last_s.get(size, 0.0) > args.budget_s:
            result["not_run"].append({"size": size, "seed": seed,
                                      "reason": f"time budget {args.budget_s:.0f} s"})
            write()
            continue
        run_began = time.perf_counter()
        if size not in trainers:
            trainers[size] = SizeTrainer(args, size, episodes.game, (frames, device_table))
        row = trainers[size].run(seed)
        row["wall_s"] = time.perf_counter() - run_began
        last_s[size] = row["wall_s"]
        result["runs"].append(row)
        write()
        print(f"[train] {size:<9} seed {seed}: {row['params']:,} params, {row['sgd_steps']} "
              f"steps in {row['train_s']:.0f} s (first chunk {row['first_chunk_s']:.0f} s, "
              f"{row['ms_per_step'] or float('nan'):.1f} ms/step), loss "
              f"{row['metrics'][-1]['loss']:.3f}, eval {row['eval_s']:.0f} s: returns "
              f"{row['returns']} (mean {row['mean_return']:.1f})", flush=True)
    write()
    return result


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --- report ------------------------------------------------------------------------------------

def summarize(result: dict, reps: int = 2000) -> list[dict]:
    """One row per size (in the order run): parameters, seeds, steps, wall time, per-seed mean
    returns and their mean with a 95% bootstrap CI."""
    from scaled_ql.evaluation.stats import MEAN, aggregate_scores

    rows = []
    for size in dict.fromkeys(r["size"] for r in result["runs"]):
        runs = sorted((r for r in result["runs"] if r["size"] == size), key=lambda r: r["seed"])
        per_seed = np.asarray([r["mean_return"] for r in runs])
        interval = aggregate_scores(per_seed[:, None], reps=reps)[MEAN]
        rows.append({"size": size, "params": runs[0]["params"], "seeds": [r["seed"] for r in runs],
                     "sgd_steps": runs[0]["sgd_steps"], "batch_size": runs[0]["batch_size"],
                     "train_s": float(np.mean([r["train_s"] for r in runs])),
                     "ms_per_step": _mean_or_none([r["ms_per_step"] for r in runs]),
                     "per_seed": per_seed.tolist(), "mean": interval.estimate,
                     "lower": interval.lower, "upper": interval.upper})
    return rows


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def markdown(result: dict, rows: list[dict]) -> str:
    settings, data = result["settings"], result["data"]
    lines = [
        f"Run {result['date']} on {result.get('machine', result['device'])}, JAX "
        f"{result['jax']}: `{result['command']}`.", "",
        f"Data: {data['game']}, {data['steps']:,} RLDS steps ({data['transitions']:,} "
        f"transitions, {data['episodes']} episodes); the mean return of its "
        f"{data['complete_episodes']} complete episodes is **{data['mean_complete_return']:.1f}**.",
        "",
        f"Recipe: {method_name(settings)}, learning rate "
        f"{settings['learning_rate']:g}, target period {settings['target_update_period']:,}, "
        f"batch {settings['batch_size']}, {settings['n_step']}-step returns, discount "
        f"{settings['discount']:g}, {settings['dtype']}; every size trains "
        f"{settings['steps']:,} SGD steps on uniformly sampled transitions.  Evaluation: "
        f"{settings['eval_episodes']} episodes per run on the real game, sticky actions "
        f"{settings['sticky']:g}, epsilon {settings['eval_epsilon']:g}, at most "
        f"{settings['eval_max_frames']:,} emulator frames per episode.", "",
        "| size | params | seeds | SGD steps | batch | train s / run | ms / step | "
        "mean return per seed | mean [95% CI] | data |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for row in rows:
        ms = "n/a" if row["ms_per_step"] is None else f"{row['ms_per_step']:.1f}"
        lines.append(
            f"| {row['size']} | {row['params']:,} | {len(row['seeds'])} | {row['sgd_steps']:,} "
            f"| {row['batch_size']} | {row['train_s']:.0f} | {ms} | "
            f"{', '.join(f'{v:.1f}' for v in row['per_seed'])} | **{row['mean']:.1f}** "
            f"[{row['lower']:.1f}, {row['upper']:.1f}] | {data['mean_complete_return']:.1f} |")
    lines += ["", "Episode returns: " + "; ".join(
        f"{r['size']} seed {r['seed']}: {', '.join(f'{v:g}' for v in r['returns'])}"
        + (f" ({sum(r['truncated'])} of {len(r['returns'])} at the frame cap)"
           if "truncated" in r else "") for r in result["runs"]) + "."]
    skipped = result.get("not_run") or []
    if skipped:
        lines += ["", "Not run: " + "; ".join(f"{s['size']} seed {s['seed']} ({s['reason']})"
                                              for s in skipped) + "."]
    lines += ["", "Train s / run: the first seed of a size includes its compilation; ms / step "
              "is the steady-state SGD step (sampling and gathering on the device included). "
              "The CI is a percentile bootstrap over seeds (2,000 resamples): with one seed it "
              "is that seed's value, with two it spans them."]
    if result.get("notes"):
        lines += ["", *result["notes"]]
    return "\n".join(lines) + "\n"


def method_name(settings: dict) -> str:
    """"C51 + CQL 0.1", or "BC" for a --bc file (files from before --bc are C51 + CQL)."""
    return "BC" if settings.get("bc") else f"C51 + CQL {settings['cql_alpha']:g}"


# The settings that make two results files different recipes, and how a label names them
# (the method: "BC" or "CQL <weight>", from `method_name`).
RECIPE_FIELDS = {"method": "{}", "n_step": "{}-step", "target_update_period":
                 "target period {:,}", "learning_rate": "lr {:g}", "batch_size": "batch {}"}


def recipe_labels(settings: list[dict]) -> list[str]:
    """For each results file's settings, the `RECIPE_FIELDS` that differ between the files,
    as text ("CQL 1, target period 250"); "" where all files share the recipe."""
    recipes = [dict(s, method=method_name(s).removeprefix("C51 + ")) for s in settings]
    varying = [f for f in RECIPE_FIELDS if len({r[f] for r in recipes}) > 1]
    return [", ".join(RECIPE_FIELDS[f].format(r[f]) for f in varying) for r in recipes]


def steps_series(results: list[tuple[dict, list[dict]]]) -> dict[str, list[dict]]:
    """Series label -> its rows by SGD steps: one series per size and recipe (the settings of
    `RECIPE_FIELDS`), labelled by the size and what differs between the recipes.  Kept are
    the sizes that some recipe trained at two or more step budgets, with all their recipes (a
    recipe run at one budget is a lone point beside the line); a (series, budget) trained
    twice keeps its last file's row."""
    labels = recipe_labels([result["settings"] for result, _ in results])
    series: dict[tuple[str, str], dict[int, dict]] = {}
    for (_, rows), recipe in zip(results, labels):
        for row in rows:
            series.setdefault((row["size"], recipe), {})[row["sgd_steps"]] = row
    lines = {size for (size, _), budgets in series.items() if len(budgets) > 1}
    ordered = sorted((key for key in series if key[0] in lines),
                     key=lambda key: (key[0], -len(series[key])))
    return {", ".join(filter(None, key)): [series[key][steps] for steps in sorted(series[key])]
            for key in ordered}


def plot_steps(series: dict[str, list[dict]], data_return: float | None, game: str,
               path: pathlib.Path) -> None:
    """Mean return (95% CI over seeds) and each seed's return against SGD steps, one line per
    series of `steps_series`; the data's mean episode return as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lone_at: dict[int, int] = {}  # lone points at one budget sit side by side, 7% apart
    for label, rows in series.items():
        means = np.asarray([r["mean"] for r in rows])
        errors = np.abs(np.asarray([[r["lower"] for r in rows],
                                    [r["upper"] for r in rows]]) - means)
        steps = [r["sgd_steps"] for r in rows]
        if len(rows) == 1:
            lone_at[steps[0]] = lone_at.get(steps[0], 0) + 1
            steps = [steps[0] * 1.07 ** lone_at[steps[0]]]
        line = ax.errorbar(steps, means, yerr=errors, marker="o" if len(rows) > 1 else "D",
                           capsize=4, zorder=3, label=label)
        for x, row in zip(steps, rows):
            ax.scatter([x] * len(row["per_seed"]), row["per_seed"], s=12,
                       color=line[0].get_color(), alpha=0.4, zorder=2)
    if data_return is not None:
        ax.axhline(data_return, color="k", linestyle="--", label="data (mean episode return)")
    ax.set_xscale("log")
    ax.set_xlabel("SGD steps (one run per seed, evaluated at its end; lone points nudged "
                  "right)", fontsize=9)
    ax.set_ylabel(f"{game} return")
    ax.set_title(f"Offline Scaled QL from {game} pixels: return against training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_scaling(results: list[tuple[dict, list[dict]]], path: pathlib.Path) -> None:
    """Mean return (95% CI) and each seed's return against parameter count (log x), one
    series per result; the data's mean episode return as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for result, rows in results:
        settings = result["settings"]
        params = [r["params"] for r in rows]
        means = np.asarray([r["mean"] for r in rows])
        errors = np.abs(np.asarray([[r["lower"] for r in rows], [r["upper"] for r in rows]])
                        - means)
        line = ax.errorbar(params, means, yerr=errors, marker="o", capsize=4, zorder=3,
                           label=f"{settings['steps']:,} SGD steps, target period "
                                 f"{settings['target_update_period']:,}")
        for i, row in enumerate(rows):
            ax.scatter([row["params"]] * len(row["per_seed"]), row["per_seed"], s=12,
                       color=line[0].get_color(), alpha=0.4, zorder=2)
            ax.annotate(row["size"], (row["params"], row["mean"]), textcoords="offset points",
                        xytext=(-10, 7 if i % 2 == 0 else -13), fontsize=8)  # close sizes
    result = results[0][0]
    data_return = result["data"]["mean_complete_return"]
    if data_return is not None:
        ax.axhline(data_return, color="k", linestyle="--", label="data (mean episode return)")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"{result['data']['game']} return")
    ax.set_title(f"Offline Scaled QL from {result['data']['game']} pixels "
                 f"(batch {result['settings']['batch_size']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(args) -> str:
    """One markdown section per results file and one plot of them all; the text goes into
    `--doc` below `GENERATED_MARKER` (what is above it, written by hand, is kept)."""
    results = []
    for path in args.results:
        result = json.loads(pathlib.Path(path).read_text())
        if not result["runs"]:
            raise ValueError(f"{path}: no finished run")
        results.append((result, summarize(result)))
    doc = pathlib.Path(args.doc)

    def link(plot: pathlib.Path) -> str:
        try:
            return str(plot.resolve().relative_to(doc.resolve().parent))
        except ValueError:
            return str(plot)

    recipes = recipe_labels([result["settings"] for result, _ in results])
    sections = [f"### {result['settings']['steps']:,} SGD steps{', ' + recipe if recipe else ''} "
                f"(`{pathlib.Path(path).name}`)\n\n" + markdown(result, rows)
                for path, (result, rows), recipe in zip(args.results, results, recipes)]
    text = "\n".join(sections)
    several_sizes = [(result, rows) for result, rows in results if len(rows) > 1]
    if several_sizes:
        plot_scaling(several_sizes, pathlib.Path(args.plot))
        text += f"\n![return against parameters]({link(pathlib.Path(args.plot))})\n"
    series = steps_series(results)
    if series:
        first = results[0][0]
        plot_steps(series, first["data"]["mean_complete_return"], first["data"]["game"],
                   pathlib.Path(args.steps_plot))
        text += f"\n![return against SGD steps]({link(pathlib.Path(args.steps_plot))})\n"
    kept = doc.read_text().partition(GENERATED_MARKER)[0] if doc.exists() else ""
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(kept + GENERATED_MARKER + "\n\n" + text)
    print(text)
    return text


# --- command line ------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True)

    exp = stages.add_parser("export", help="RLDS -> compressed numpy (here, with TF)")
    exp.add_argument("--data", default=str(DEFAULT_DATA), help="TFDS data_dir of the dataset")
    exp.add_argument("--game", default="Breakout")
    exp.add_argument("--run", type=int, default=1)
    exp.add_argument("--out", default=str(DEFAULT_EXPORT))

    tr = stages.add_parser("train", help="train and evaluate every size (pure core; the GPU)")
    tr.add_argument("--data-file", default=str(DEFAULT_EXPORT / "Breakout.npz"))
    tr.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    tr.add_argument("--seeds", type=int, default=3, help="seeds per size, run round-robin")
    tr.add_argument("--steps", type=int, default=2_000, help="SGD steps per run")
    tr.add_argument("--chunk", type=int, default=100, help="SGD steps per jitted call")
    tr.add_argument("--batch-size", type=int, default=256)
    tr.add_argument("--learning-rate", type=float, default=2.5e-4)
    tr.add_argument("--cql-alpha", type=float, default=0.1)
    tr.add_argument("--bc", action="store_true",
                    help="behaviour cloning instead of Scaled QL (the same network)")
    tr.add_argument("--target-update-period", type=int, default=1_000)
    tr.add_argument("--n-step", type=int, default=1)
    tr.add_argument("--discount", type=float, default=0.99)
    tr.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    tr.add_argument("--eval-episodes", type=int, default=8)
    tr.add_argument("--eval-max-frames", type=int, default=18_000)
    tr.add_argument("--eval-epsilon", type=float, default=0.001)
    tr.add_argument("--sticky", type=float, default=0.25, help="sticky-action probability")
    tr.add_argument("--budget-s", type=float, default=None,
                    help="start no run that would end after this many seconds (estimated "
                         "from the size's last run)")
    tr.add_argument("--out", default="gpu_pixels.json")

    rep = stages.add_parser("report", help="JSON -> markdown and plot (here)")
    rep.add_argument("--results", nargs="+", required=True,
                     help="train JSON files, one section each")
    rep.add_argument("--doc", default=str(DEFAULT_DOC),
                     help="written below its GENERATED_MARKER line (text above it is kept)")
    rep.add_argument("--plot", default=str(DEFAULT_PLOT),
                     help="return against parameters (results files with several sizes)")
    rep.add_argument("--steps-plot", default=str(DEFAULT_STEPS_PLOT),
                     help="return against SGD steps (sizes trained at several step budgets)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.stage == "train" and (args.steps < 1 or args.chunk < 1 or args.seeds < 1):
        parser.error("--steps, --chunk and --seeds must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    {"export": export, "train": train, "report": report}[args.stage](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
