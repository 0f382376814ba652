"""A small real MinAtar dataset and the tiny network the MinAtar runner and program tests share.

The data is random-policy play collected by `scaled_ql.datasets.collect` (the code behind
`scaled-ql collect`), written as RLDS through TFDS, exactly as for Atari.
"""

PRETRAIN_GAMES = ("minatar/Breakout", "minatar/Asterix")  # 3 and 5 actions
HELD_OUT_GAME = "minatar/Seaquest"  # 6 actions, not pre-trained on

# The same tiny network as `tiny_minatar_agent`, as command-line flags: the MinAtar ResNet
# (no downsampling) at a quarter width (8 channels), one residual block.
TINY_MINATAR_FLAGS = ["--torso", "minatar_resnet", "--width", "0.25", "--num-blocks", "1",
                      "--num-groups", "4", "--feed-forward-size", "32", "--batch-size", "16"]


def collect_minatar(data_dir, games=(*PRETRAIN_GAMES, HELD_OUT_GAME), num_steps: int = 300,
                    seed: int = 0) -> str:
    """`num_steps` random-policy steps of each game into the TFDS data_dir `data_dir`."""
    from scaled_ql.datasets.collect import CollectConfig, collect_games

    collect_games([CollectConfig(game, num_steps=num_steps, seed=seed + i,
                                 max_episodes_per_shard=4)
                   for i, game in enumerate(games)], data_dir, show_progress=False)
    return str(data_dir)


def tiny_minatar_agent(**overrides):
    """The learner config of `TINY_MINATAR_FLAGS` (batch 16, target refresh every 10 steps)."""
    from scaled_ql.agents.scaled_ql import NetworkConfig, ScaledQLConfig

    network = NetworkConfig(torso="minatar_resnet", width_multiplier=0.25, num_blocks=1,
                            num_groups=4, feed_forward_size=32)
    return ScaledQLConfig(**{"network": network, "batch_size": 16, "target_update_period": 10,
                             **overrides})
