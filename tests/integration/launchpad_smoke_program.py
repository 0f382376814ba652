"""A real two-node Launchpad program: a Reverb node and a courier node that inserts and samples.

Run as a script (the integration test does): `python launchpad_smoke_program.py OUT_JSON`.
The producer writes what it sampled to OUT_JSON, then calls `lp.stop()`.
"""

import json
import os
import sys

import launchpad as lp
import numpy as np
import reverb

TABLE = "smoke"
NUM_ITEMS = 20


def make_tables() -> list[reverb.Table]:
    return [
        reverb.Table(
            name=TABLE,
            sampler=reverb.selectors.Uniform(),
            remover=reverb.selectors.Fifo(),
            max_size=1000,
            rate_limiter=reverb.rate_limiters.MinSize(1),
        )
    ]


class Producer:
    """Inserts NUM_ITEMS items into the replay node, samples them back, stops the program."""

    def __init__(self, replay: reverb.Client, out_path: str):
        self._replay = replay
        self._out_path = out_path

    def run(self) -> None:
        with self._replay.trajectory_writer(num_keep_alive_refs=1) as writer:
            for i in range(NUM_ITEMS):
                writer.append({"value": np.full((3,), i, np.int64)})
                writer.create_item(
                    TABLE, priority=1.0, trajectory={"value": writer.history["value"][-1]}
                )
            writer.flush()
        sampled = [
            int(np.asarray(sample.data[0]).ravel()[0])  # untyped client: flat column list
            for sample in self._replay.sample(TABLE, num_samples=50, emit_timesteps=False)
        ]
        info = self._replay.server_info()[TABLE]
        with open(self._out_path, "w") as f:
            json.dump({"sampled": sampled, "table_size": info.current_size, "pid": os.getpid()}, f)
        lp.stop()


def make_program(out_path: str) -> lp.Program:
    program = lp.Program("launchpad_smoke")
    with program.group("replay"):
        replay = program.add_node(lp.ReverbNode(make_tables))
    with program.group("producer"):
        program.add_node(lp.CourierNode(Producer, replay, out_path))
    return program


if __name__ == "__main__":
    launched = lp.launch(
        make_program(sys.argv[1]), launch_type="local_mp", terminal="current_terminal"
    )
    launched.wait()
