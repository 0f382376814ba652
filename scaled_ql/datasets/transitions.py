"""RLDS episodes -> `scaled_ql.types.Transition`s: frame stacking, n-step returns, clipping.

Conventions (docs/DATA.md has the long form):

- RLDS alignment: step t holds o_t, the action a_t taken at o_t and the reward r_t that follows
  a_t.  An episode of T steps yields the T-1 transitions starting at t = 0 .. T-2; the last step
  only contributes its observation (as a next observation) and its `is_terminal` flag.
- Frame stack at step t: frames t-3 .. t, oldest first, newest last.  Frames before the episode
  start are zeros (Dopamine's replay buffer pads the same way), so a stack never mixes two
  episodes.
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
      stack_size: frames per observation (4 in DQN / the paper).
      clip_rewards: clip each raw reward to [-1, 1] before summing (the paper does).
    """

    n_step: int = 1
    discount: float = 0.99
    stack_size: int = types.STACK_SIZE
    clip_rewards: bool = True

    def __post_init__(self):
        if self.n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {self.n_step}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if self.stack_size < 1:
            raise ValueError(f"stack_size must be >= 1, got {self.stack_size}")


def transition_spec(stack_size: int = types.STACK_SIZE) -> types.Transition:
    """The `tf.TensorSpec` of one unbatched Transition (the pipeline's and Reverb's signature)."""
    import tensorflow as tf

    observation = tf.TensorSpec((*types.FRAME_SHAPE, stack_size), tf.uint8)
    return types.Transition(
        observation=observation,
        action=tf.TensorSpec((), tf.int32),
        reward=tf.TensorSpec((), tf.float32),
        discount=tf.TensorSpec((), tf.float32),
        next_observation=observation,
        game_id=tf.TensorSpec((), tf.int32),
    )


def stack_steps(steps, chunk_size: int = 1024) -> dict:
    """An RLDS steps dataset as one dict of tensors [T, ...] (one episode in memory).

    Concatenates chunks of `chunk_size` steps: batching by the episode's cardinality trips
    tf.data's graph rewriter in TF 2.8, and one huge batch size pre-allocates its buffer.
    """
    import tensorflow as tf

    initial = {
        name: tf.zeros([0, *spec.shape], spec.dtype) for name, spec in steps.element_spec.items()
    }
    return steps.batch(chunk_size).reduce(
        initial, lambda stacked, chunk: {k: tf.concat([stacked[k], chunk[k]], 0) for k in stacked}
    )


def _episode_tensors(episode):
    """Frames uint8 [T, 84, 84] and the fields the transitions need, [T] each."""
    steps = stack_steps(episode["steps"])
    return {
        "frame": steps["observation"][..., 0],  # [T, 84, 84]
        "action": steps["action"],
        "reward": steps["reward"],
        "is_terminal": steps["is_terminal"],
    }


def episode_transitions(
    episode, config: TransitionConfig, *, game_id: int, num_actions: int, game: str = ""
):
    """The transitions of one RLDS episode as a `tf.data.Dataset` of `Transition`s."""
    import tensorflow as tf

    gamma = config.discount
    steps = _episode_tensors(episode)
    frames = steps["frame"]  # [T, 84, 84]
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

    # Frames before the episode start are zeros: stack at t = padded_frames[t : t + stack].
    pad = config.stack_size - 1
    obs_shape = (*types.FRAME_SHAPE, config.stack_size)
    padded_frames = tf.concat([tf.zeros([pad, *types.FRAME_SHAPE], tf.uint8), frames], axis=0)

    def stack(index):
        window = padded_frames[index : index + config.stack_size]  # [stack, 84, 84]
        return tf.ensure_shape(tf.transpose(window, [1, 2, 0]), obs_shape)  # [84, 84, stack]

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
    """All transitions of a stream of one game's episodes, `episode_cycle` episodes interleaved."""
    import tensorflow as tf

    from scaled_ql.environments.games import get_game

    num_actions = get_game(game).num_actions
    return episodes.interleave(
        lambda ep: episode_transitions(
            ep, config, game_id=game_id, num_actions=num_actions, game=game
        ),
        cycle_length=episode_cycle,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
