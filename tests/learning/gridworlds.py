"""Procedurally generated image MDPs for the offline learning test ("It learns").

Each game is a deterministic grid world drawn from an ASCII layout and rendered as 84x84 uint8
frames; an observation stacks the last 4 frames (oldest first, the first frame repeated at the
start of an episode), exactly like the Atari observations of `scaled_ql.types`.

Every layout has a *near* goal `n` (reward 0.5) and a *far* goal `F` (reward 1.0); reaching
either ends the episode, and so does the horizon (return 0).  With discount 0.9 the far goal
is worth more from every start cell, so the optimal undiscounted return is 1.0.  The behaviour
policy heads for the near goal in most episodes: imitation learns to go there (return 0.5),
while offline Q-learning can stitch the far-goal episodes into the optimal policy.
"""

import collections
import dataclasses

import numpy as np

from scaled_ql.types import Transition

FRAME = 84
NEAR_REWARD, FAR_REWARD = 0.5, 1.0
_PIXELS = {"#": 60, "n": 130, "F": 200}
_AGENT_PIXEL = 255
_MOVES = {
    "left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0), "noop": (0, 0),
    "up_left": (-1, -1), "up_right": (-1, 1), "down_left": (1, -1), "down_right": (1, 1),
}


@dataclasses.dataclass(frozen=True)
class GridGame:
    """A grid world: '#' wall, 'S' start cell, 'n' near goal, 'F' far goal, '.' floor."""

    name: str
    layout: tuple[str, ...]
    actions: tuple[str, ...]
    horizon: int

    @property
    def num_actions(self) -> int:
        return len(self.actions)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.layout), len(self.layout[0])

    def cells(self, symbol: str) -> list[tuple[int, int]]:
        return [(r, c) for r, row in enumerate(self.layout) for c, ch in enumerate(row)
                if ch == symbol]

    def step(self, cell: tuple[int, int], action: int) -> tuple[tuple[int, int], float, bool]:
        """Deterministic move; walls and borders block.  Returns (cell, reward, terminal)."""
        dr, dc = _MOVES[self.actions[action]]
        r, c = cell[0] + dr, cell[1] + dc
        h, w = self.shape
        if 0 <= r < h and 0 <= c < w and self.layout[r][c] != "#":
            cell = (r, c)
        symbol = self.layout[cell[0]][cell[1]]
        reward = {"n": NEAR_REWARD, "F": FAR_REWARD}.get(symbol, 0.0)
        return cell, reward, symbol in "nF"

    def distances_to(self, goal: tuple[int, int]) -> dict[tuple[int, int], int]:
        """Shortest number of moves from every reachable cell to `goal` (BFS, reverse moves)."""
        dist = {goal: 0}
        queue = collections.deque([goal])
        cells = [(r, c) for r in range(self.shape[0]) for c in range(self.shape[1])
                 if self.layout[r][c] != "#"]
        while queue:
            target = queue.popleft()
            for cell in cells:
                if cell in dist or self.layout[cell[0]][cell[1]] in "nF":
                    continue
                if any(self.step(cell, a)[0] == target for a in range(self.num_actions)):
                    dist[cell] = dist[target] + 1
                    queue.append(cell)
        return dist

    def frame(self, cell: tuple[int, int]) -> np.ndarray:
        """uint8 [84, 84]: the layout with the agent at `cell`."""
        h, w = self.shape
        size = FRAME // max(h, w)
        image = np.zeros((FRAME, FRAME), np.uint8)
        for r, row in enumerate(self.layout):
            for c, ch in enumerate(row):
                value = _AGENT_PIXEL if (r, c) == cell else _PIXELS.get(ch, 0)
                image[r * size:(r + 1) * size, c * size:(c + 1) * size] = value
        return image


GAMES = (
    GridGame("corridor", ("n..S..S...F",), ("left", "right", "noop"), horizon=14),
    GridGame("room", (".....", ".n...", "..S..", ".S...", "....F"),
             ("up", "down", "left", "right"), horizon=12),
    GridGame("king", ("......", ".n#...", "..#...", ".S#..F", "......", "S....."),
             tuple(_MOVES)[:4] + ("up_left", "up_right", "down_left", "down_right"), horizon=12),
)


class OfflineDataset:
    """Transitions of all games as cell indices; observations are rendered when sampled."""

    def __init__(self, games, game_ids, obs_cells, actions, rewards, discounts, next_obs_cells):
        self.games = games
        self.game_id = np.asarray(game_ids, np.int32)
        self.obs_cells = np.asarray(obs_cells, np.int32)  # [T, 4] flat cell indices
        self.action = np.asarray(actions, np.int32)
        self.reward = np.asarray(rewards, np.float32)
        self.discount = np.asarray(discounts, np.float32)
        self.next_obs_cells = np.asarray(next_obs_cells, np.int32)
        width = max(g.shape[1] for g in games)
        self._width = width
        # frames[g, r * width + c] is game g's frame with the agent at (r, c).
        height = max(g.shape[0] for g in games)
        self.frames = np.zeros((len(games), height * width, FRAME, FRAME), np.uint8)
        for g, game in enumerate(games):
            for r in range(game.shape[0]):
                for c in range(game.shape[1]):
                    self.frames[g, r * width + c] = game.frame((r, c))

    def __len__(self) -> int:
        return len(self.action)

    def cell_index(self, cell: tuple[int, int]) -> int:
        return cell[0] * self._width + cell[1]

    def render(self, game_id: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """uint8 [..., 84, 84, 4] from game ids [...] and stacked cell indices [..., 4]."""
        frames = self.frames[game_id[..., None], cells]  # [..., 4, 84, 84]
        return np.moveaxis(frames, -3, -1)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Transition:
        i = rng.integers(0, len(self), size=shape)
        return Transition(
            observation=self.render(self.game_id[i], self.obs_cells[i]),
            action=self.action[i],
            reward=self.reward[i],
            discount=self.discount[i],
            next_observation=self.render(self.game_id[i], self.next_obs_cells[i]),
            game_id=self.game_id[i],
        )


def behaviour_action(game, cell, target_dist, epsilon, rng) -> int:
    """epsilon-random, otherwise a shortest-path move towards the episode's target goal."""
    if rng.random() < epsilon:
        return int(rng.integers(game.num_actions))
    here = target_dist.get(cell, np.inf)
    best = [a for a in range(game.num_actions)
            if target_dist.get(game.step(cell, a)[0], np.inf) < here]
    return int(rng.choice(best)) if best else int(rng.integers(game.num_actions))


def collect(games, episodes_per_game: int, p_far: float, epsilon: float, discount: float,
            seed: int) -> tuple[OfflineDataset, float]:
    """Logs the behaviour policy; returns the dataset and the behaviour's mean return."""
    rng = np.random.default_rng(seed)
    rows = collections.defaultdict(list)
    returns = []
    dataset = OfflineDataset(games, [], np.zeros((0, 4)), [], [], [], np.zeros((0, 4)))
    for g, game in enumerate(games):
        near_dist = game.distances_to(game.cells("n")[0])
        far_dist = game.distances_to(game.cells("F")[0])
        starts = game.cells("S")
        for _ in range(episodes_per_game):
            target = far_dist if rng.random() < p_far else near_dist
            cell = starts[rng.integers(len(starts))]
            history = [dataset.cell_index(cell)] * 4
            episode_return = 0.0
            for t in range(game.horizon):
                action = behaviour_action(game, cell, target, epsilon, rng)
                cell, reward, terminal = game.step(cell, action)
                next_history = history[1:] + [dataset.cell_index(cell)]
                truncated = t == game.horizon - 1
                rows["game_ids"].append(g)
                rows["obs_cells"].append(history)
                rows["actions"].append(action)
                rows["rewards"].append(reward)
                rows["discounts"].append(0.0 if terminal else discount)
                rows["next_obs_cells"].append(next_history)
                history = next_history
                episode_return += reward
                if terminal or truncated:
                    break
            returns.append(episode_return)
    return OfflineDataset(games, **rows), float(np.mean(returns))


def evaluate(games, dataset: OfflineDataset, greedy_actions) -> list[float]:
    """Mean return of a deterministic policy per game over its start cells.

    `greedy_actions(observation uint8 [B, 84, 84, 4], game_id int32 [B]) -> actions [B]` is
    called once per time step for all (game, start) pairs at once.
    """
    episodes = [(g, start) for g, game in enumerate(games) for start in game.cells("S")]
    game_id = np.asarray([g for g, _ in episodes], np.int32)
    cells = [start for _, start in episodes]
    history = np.asarray([[dataset.cell_index(c)] * 4 for c in cells], np.int32)
    done = np.zeros(len(episodes), bool)
    returns = np.zeros(len(episodes))
    for t in range(max(game.horizon for game in games)):
        actions = np.asarray(greedy_actions(dataset.render(game_id, history), game_id))
        for i, (g, _) in enumerate(episodes):
            if done[i] or t >= games[g].horizon:
                continue
            cells[i], reward, terminal = games[g].step(cells[i], int(actions[i]))
            returns[i] += reward
            done[i] = terminal
            history[i] = np.append(history[i, 1:], dataset.cell_index(cells[i]))
    return [float(np.mean(returns[game_id == g])) for g in range(len(games))]
