"""RLDS episodes -> `scaled_ql.types.Transition`s: frame stacking, n-step returns, clipping.

Conventions (docs/DATA.md has the long form):

- RLDS alignment: step t holds o_t, the action a_t taken at o_t and the reward r_t that follows
  a_t.  An episode of T steps yields the T-1 transitions starting at t = 0 .. T-2; the last step
  only contributes its observation (as a next observation) and its `is_terminal` flag.
- Frames and stacks follow the game suite's `types.ObservationSpec`: each RLDS step holds one
  frame [H, W, C]; the observation at step t is frames t-S+1 .. t (S = `stack_size`, 4 for
  Atari, 1 for MinAtar) concatenated on the channel axis, oldest first: [H, W, S*C] with frame
  k in channels k*C .. (k+1)*C-1 (Atari: [84, 84, 4]; MinAtar: the frame itself, [10, 10, 10]).
  Frames before the episode start are zeros (Dopamine's replay buffer pads the same way), so a
  stack never mixes two episodes.
- n-step: k_t = min(n, T-1-t) steps are accumulated (fewer than n only at the end of an
  episode).  reward = sum_{i<k} gamma^i clip(r_{t+i}); next_observation is the stack at t+k;
  discount = 0 if t+k is the last step and that step `is_terminal` (game over), gamma^k
  otherwise (including truncated episodes, whose last state is bootstrapped from).
- Rewards are clipped to [-1, 1] before summing when `clip_rewards` is on (the default).
- Actions are indices into the game's minimal action set; one outside [0, num_actions) stops
  the stream with an error naming the game.

The per-episode work is vectorized over the episode (one decoded episode is in memory at a
time per interleaved reader); stacks are gathered lazily one transition at a time.
"""

import dataclasses

from scaled_ql import types


@dataclasses.dataclass(frozen=True)
class TransitionConfig:
    """How episodes become transitions.

    Attributes:
      n_step: number of rewards accumulated per transition (the paper uses 1).
      discount: gamma, the per-step discount used for n-step sums and the bootstrap multiplier.
      stack_size: frames per observation; None (default) is the game suite's
        (`ObservationSpec.stack_size`: 4 for Atari as in DQN / the paper, 1 for MinAtar).
      clip_rewards: clip each raw reward to [-1, 1] before summing (the paper does).
    """

    n_step: int = 1
    discount: float = 0.99
    stack_size: int | None = None
    clip_rewards: bool = True

    def __post_init__(self):
        if self.n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {self.n_step}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if self.stack_size is not None and self.stack_size < 1:
            raise ValueError(f"stack_size must be >= 1, got {self.stack_size}")

    def observation(self, suite_observation: types.ObservationSpec) -> types.ObservationSpec:
        """The observations these transitions have for frames of `suite_observation`."""
        if self.stack_size is None or self.stack_size == suite_observation.stack_size:
            return suite_observation
        return dataclasses.replace(suite_observation, stack_size=self.stack_size)


def transition_spec(
    observation: types.ObservationSpec = types.ATARI_OBSERVATION,
) -> types.Transition:
    """The `tf.TensorSpec` of one unbatched Transition with `observation.shape` observations
    (the pipeline's and Reverb's signature)."""
    import tensorflow as tf

    if not isinstance(observation, types.ObservationSpec):
        raise TypeError(
            f"transition_spec takes an ObservationSpec (e.g. suite_of(games).observation), "
            f"got {observation!r}"
        )
    observation = tf.TensorSpec(observation.shape, tf.uint8)
    return types.Transition(
        observation=observation,
        action=tf.TensorSpec((), tf.int32),
        reward=tf.TensorSpec((), tf.float32),
        discount=tf.TensorSpec((), tf.float32),
        next_observation=observation,
        game_id=tf.TensorSpec((), tf.int32),
    )


def stack_steps(steps, chunk_size: int = 1024) -> dict:
    """An RLDS steps dataset as one dict of tensors [T, ...] (one episode in memory); a dict
    (steps read with `steps_as_tensors`) is returned as it is.

    Concatenates chunks of `chunk_size` steps: batching by the episode's cardinality trips
    tf.data's graph rewriter in TF 2.8, and one huge batch size pre-allocates its buffer.
    """
    import tensorflow as tf

    if isinstance(steps, dict):
        return steps

    initial = {
        name: tf.zeros([0, *spec.shape], spec.dtype) for name, spec in steps.element_spec.items()
    }
    return steps.batch(chunk_size).reduce(
        initial, lambda stacked, chunk: {k: tf.concat([stacked[k], chunk[k]], 0) for k in stacked}
    )


def _default_observation(game: str) -> types.ObservationSpec:
    """The suite spec of `game` ("" for Atari, the spec of unnamed test episodes)."""
    if not game:
        return types.ATARI_OBSERVATION
    from scaled_ql.environments.suites import suite_of

    return suite_of(game).observation


def episode_transitions(
    episode,
    config: TransitionConfig,
    *,
    game_id: int,
    num_actions: int,
    game: str = "",
    observation: types.ObservationSpec | None = None,
):
    """The transitions of one RLDS episode as a `tf.data.Dataset` of `Transition`s.

    `observation` is the suite's spec of the stored frames (None: `game`'s suite, Atari when no
    game is named); `config.stack_size` may override its stack.  Frames of another shape are a
    ValueError naming the game.
    """
    import tensorflow as tf

    spec = config.observation(observation or _default_observation(game))
    steps = episode["steps"]
    if isinstance(steps, dict):  # read with steps_as_tensors: [T, H, W, C]
        stored = steps["observation"].shape[1:]
    else:
        stored = steps.element_spec["observation"].shape  # [H, W, C]
    if stored.rank is not None and not stored.is_compatible_with(spec.frame_shape):
        raise ValueError(
            f"{game or 'episode'}: RLDS frames are {stored.as_list()}, the {spec.name} suite's "
            f"frames are {list(spec.frame_shape)}"
        )
    gamma = config.discount
    steps = stack_steps(steps)
    frames = tf.ensure_shape(steps["observation"], [None, *spec.frame_shape])  # [T, H, W, C]
    num_steps = tf.shape(frames)[0]
    num_transitions = tf.maximum(num_steps - 1, 0)
    actions = tf.cast(steps["action"][:num_transitions], tf.int32)  # [T-1]
    tf.debugging.assert_non_negative(actions, message=f"{game}: negative action")
    tf.debugging.assert_less(
        actions,
        num_actions,
        message=f"{game}: action outside the minimal action set [0, {num_actions})",
    )
    rewards = steps["reward"][:num_transitions]  # [T-1]; the last step's reward is meaningless
    tf.debugging.assert_all_finite(rewards, message=f"{game}: non-finite reward")
    if config.clip_rewards:
        rewards = tf.clip_by_value(rewards, -1.0, 1.0)

    # n-step sums: pad with n zeros so that sums past the last step truncate.
    padded = tf.concat([rewards, tf.zeros([config.n_step], tf.float32)], axis=0)  # [T-1+n]
    returns = tf.zeros_like(rewards)
    for i in range(config.n_step):
        returns += (gamma**i) * padded[i : i + num_transitions]  # sum_i gamma^i r_{t+i}

    t = tf.range(num_transitions)
    k = tf.minimum(config.n_step, num_steps - 1 - t)  # steps accumulated, [T-1]
    next_t = t + k
    terminal = steps["is_terminal"][num_steps - 1] & tf.equal(next_t, num_steps - 1)
    discounts = tf.where(
        terminal, 0.0, tf.pow(tf.constant(gamma, tf.float32), tf.cast(k, tf.float32))
    )

    # Frames before the episode start are zeros: stack at t = padded_frames[t : t + S].
    num_stacked = spec.stack_size
    if num_stacked > 1:
        padded_frames = tf.concat(
            [tf.zeros([num_stacked - 1, *spec.frame_shape], tf.uint8), frames], axis=0
        )  # [S-1+T, H, W, C]

    def stack(index):
        if num_stacked == 1:
            return frames[index]  # [H, W, C]: the observation is the frame
        window = padded_frames[index : index + num_stacked]  # [S, H, W, C], oldest first
        # [H, W, S, C] -> [H, W, S*C]: channels k*C .. (k+1)*C-1 hold frame k.
        return tf.reshape(tf.transpose(window, [1, 2, 0, 3]), spec.shape)

    def make(t_, next_t_, action, reward, discount):
        return types.Transition(
            observation=stack(t_),
            action=action,
            reward=reward,
            discount=discount,
            next_observation=stack(next_t_),
            game_id=tf.constant(game_id, tf.int32),
        )

    scalars = (t, next_t, actions, returns, discounts)
    return tf.data.Dataset.from_tensor_slices(scalars).map(
        make, num_parallel_calls=tf.data.AUTOTUNE
    )


def game_transitions(
    episodes,
    config: TransitionConfig,
    *,
    game: str,
    game_id: int,
    episode_cycle: int = 4,
    deterministic: bool = False,
):
    """All transitions of a stream of one game's episodes, `episode_cycle` episodes interleaved;
    frames follow the game's suite (`suites.suite_of(game).observation`)."""
    import tensorflow as tf

    from scaled_ql.environments.games import get_game
    from scaled_ql.environments.suites import suite_of

    suite = suite_of(game)
    num_actions = get_game(game).num_actions
    return episodes.interleave(
        lambda ep: episode_transitions(
            ep,
            config,
            game_id=game_id,
            num_actions=num_actions,
            game=game,
            observation=suite.observation,
        ),
        cycle_length=episode_cycle,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
