"""A scripted Breakout player that reads the console's RAM: a behaviour policy for offline
learning from pixels on a real ALE game.

The DQN Replay Dataset cannot be downloaded here, and an online agent that learns on 2 CPU
cores in a few hours plays Breakout barely better than chance.  A player that knows where the
ball and the paddle are makes DQN-Replay-like data instead: competent, and made sub-optimal
with epsilon noise (with probability `epsilon` a uniformly random action of the minimal set).
The offline learner still sees only the 84x84x4 frames; the RAM is the behaviour policy's
privilege, as the DQN agents' own networks were the data's.

RAM addresses: AtariARI (Anand et al., 2019, "Unsupervised State Representation Learning in
Atari", `ram_annotations.py`) annotates Breakout's ball_x = 99, ball_y = 101 and player_x = 72.
The screen geometry the controller needs was measured on the ROM that ale-py ships (the tests
check it on every run):

* paddle: its left screen column is `ram[72] - 47`, 16 pixels wide (8 after the ball has
  reached the top wall), top row 189; `ram[72]` runs from 55 (left wall) to 191 (right wall);
* ball: its left screen column is `ram[99] - 49`, 2 pixels wide; its top row is
  `ram[101] + 9`, so it reaches the paddle's top row at ball_y = 180; `ram[101] == 0` means
  no ball in play (at the start and after a lost life), and FIRE serves a new one;
* the ball bounces off the side walls at about ball_x = 56 and 200;
* per agent step (4 frames) the paddle moves up to ~23 units and keeps drifting ~10 after the
  button is released; reversing takes a step.

The controller: FIRE when no ball is in play; otherwise aim the paddle's centre at where the
falling ball will cross the paddle row (straight-line extrapolation of its last move, folded at
the side walls), or at the ball itself while it rises; move only when the paddle, projected
half a step along its own drift, is more than `DEADBAND` units off (finer steering makes it
oscillate).  Measured returns are in docs/PIXELS.md.
"""

import numpy as np

# AtariARI's Breakout annotations (RAM indices), checked on the ROM by the tests.
PADDLE_X = 72
BALL_X = 99
BALL_Y = 101

# Geometry in RAM units, measured on the ROM (see the module docstring).
PADDLE_CENTRE_OFFSET = 9  # paddle_x == ball_x - 9 puts the paddle's centre under the ball's.
PADDLE_ROW_Y = 180  # ball_y where the ball reaches the paddle's top row.
WALL_LEFT_X, WALL_RIGHT_X = 56, 200  # ball_x where it bounces off the side walls.
DEADBAND = 8  # |target - paddle| the paddle tolerates (its half width is 8).
DRIFT = 0.5  # steps of the paddle's current velocity added to its position.

ACTIONS = ("NOOP", "FIRE", "RIGHT", "LEFT")  # what the player presses (ALE action names).


class ScriptedPolicyError(RuntimeError):
    """The scripted policy was used without (or with the wrong) environment."""


def landing_x(x: float, y: float, vx: float, vy: float, *, y_hit: float = PADDLE_ROW_Y,
              x_min: float = WALL_LEFT_X, x_max: float = WALL_RIGHT_X) -> float:
    """Where a ball at (x, y) moving (vx, vy) per step (vy > 0: falling) crosses row `y_hit`.

    A straight line folded at the side walls: the unfolded position mod 2*(x_max - x_min) is
    mirrored back into [x_min, x_max].  Scalar RAM units.
    """
    if vy <= 0:
        raise ValueError(f"the ball must be falling (vy > 0), got vy={vy}")
    unfolded = x + vx * (y_hit - y) / vy
    span = x_max - x_min
    u = (unfolded - x_min) % (2 * span)
    return x_min + (u if u <= span else 2 * span - u)


class BreakoutPlayer:
    """The scripted controller: RAM in, ALE action name out; remembers the last RAM reading
    (for the ball's and the paddle's velocities)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forgets the previous reading (a new episode starts)."""
        self._ball = None  # (x, y) at the previous call, ball in play
        self._paddle = None  # paddle x at the previous call

    def act(self, ram: np.ndarray) -> str:
        """The action (one of ACTIONS) for RAM `ram` (uint8 [128])."""
        paddle, ball_x, ball_y = int(ram[PADDLE_X]), int(ram[BALL_X]), int(ram[BALL_Y])
        drift = 0 if self._paddle is None else paddle - self._paddle
        self._paddle = paddle
        previous, self._ball = self._ball, ((ball_x, ball_y) if ball_y else None)
        if not ball_y:
            return "FIRE"  # no ball in play: serve
        target = ball_x
        if previous is not None:
            vx, vy = ball_x - previous[0], ball_y - previous[1]
            if vy > 0 and ball_y < PADDLE_ROW_Y:
                target = landing_x(ball_x, ball_y, vx, vy)
        error = target - PADDLE_CENTRE_OFFSET - (paddle + DRIFT * drift)
        if abs(error) <= DEADBAND:
            return "NOOP"
        return "RIGHT" if error > 0 else "LEFT"


# game name (catalogue) -> player class
PLAYERS = {"Breakout": BreakoutPlayer}


class ScriptedRamPolicy:
    """Epsilon-noisy scripted player of a real ALE game, reading its RAM; `checkpoint_id` 0.

    The collector's policy seam (scaled_ql.datasets.collect): build with
    `ScriptedRamPolicy(num_actions, seed, epsilon=...)`, then `attach(env)` with the
    `AtariEnvironment` it will play (the collector does this once), then call it with
    observations; the observation itself is ignored, the RAM is read from `env.ale`.
    Actions index the environment's minimal action set.  With `epsilon=1` every action is
    uniformly random.
    """

    checkpoint_id = 0

    def __init__(self, num_actions: int, seed: int, *, epsilon: float = 0.0):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.num_actions = int(num_actions)
        self.epsilon = float(epsilon)
        self._rng = np.random.default_rng(seed)
        self._ale = None
        self._player = None
        self._indices = None  # ALE action name -> index into the minimal set

    def attach(self, env) -> None:
        """Reads the game from `env` (an AtariEnvironment of a game in PLAYERS)."""
        ale = getattr(env, "ale", None)
        if ale is None or not hasattr(env, "ale_actions"):
            raise ScriptedPolicyError(
                f"scripted_ram reads the Atari RAM: {env.game.name} is not an ALE game")
        if env.game.name not in PLAYERS:
            raise ScriptedPolicyError(
                f"no scripted player for {env.game.name}; known: {sorted(PLAYERS)}")
        indices = {action.name: i for i, action in enumerate(env.ale_actions)}
        missing = [name for name in ACTIONS if name not in indices]
        if missing or len(indices) != self.num_actions:
            raise ScriptedPolicyError(
                f"{env.game.name}: the action set {sorted(indices)} does not fit the player "
                f"(needs {ACTIONS}, {self.num_actions} actions)")
        self._ale = ale
        self._player = PLAYERS[env.game.name]()
        self._indices = indices

    def __call__(self, observation: np.ndarray) -> int:
        del observation
        if self._player is None:
            raise ScriptedPolicyError("scripted_ram reads the game's RAM: call attach(env) first")
        # The player sees every step (its velocity estimates), also when noise overrides it.
        action = self._indices[self._player.act(self._ale.getRAM())]
        if self._rng.random() < self.epsilon:
            action = int(self._rng.integers(self.num_actions))
        return action

    def observe(self, action: int, timestep) -> None:
        """Forgets the ball's and the paddle's last positions when an episode ends."""
        del action
        if timestep.last() and self._player is not None:
            self._player.reset()


def play_episodes(game: str, *, epsilon: float, num_episodes: int, seed: int = 0,
                  sticky_action_prob: float = 0.25,
                  max_episode_frames: int = 108_000) -> list[tuple[float, int]]:
    """Plays `num_episodes` episodes of `game` with `ScriptedRamPolicy(epsilon)`; returns each
    episode's (return, agent steps).  Episode k runs on a fresh environment seeded `seed + k`
    (the sticky actions), the policy's noise on `seed + k + 1`, as the collector seeds them."""
    from scaled_ql.environments.suites import make_environment

    results = []
    for k in range(num_episodes):
        env = make_environment(game, sticky_action_prob=sticky_action_prob,
                               max_episode_frames=max_episode_frames, seed=seed + k)
        policy = ScriptedRamPolicy(env.num_actions, seed + k + 1, epsilon=epsilon)
        policy.attach(env)
        timestep = env.reset()
        total, steps = 0.0, 0
        while not timestep.last():
            action = policy(timestep.observation)
            timestep = env.step(action)
            policy.observe(action, timestep)
            total += float(timestep.reward)
            steps += 1
        env.close()
        results.append((total, steps))
    return results
