"""Launchpad programs: the distributed versions of the runners, built from the same builder.

    program = make_program(config, num_feeders=2, num_evaluators=2)   # an lp.Program
    exit_code = launch(config, launch_type="local_mp")                 # run it, never hang

Modules: `pretrain` (the program and its launcher), `nodes` and `learner_node` (the nodes),
`supervision` (failure records, a launch that watches its nodes, `stop_aware` calls between
nodes, and `bound_counter_calls` for programs built by Acme's layouts).
"""

from scaled_ql.launchpad_programs.nodes import ProgramOptions
from scaled_ql.launchpad_programs.pretrain import launch
from scaled_ql.launchpad_programs.pretrain import make_program
from scaled_ql.launchpad_programs.supervision import EXIT_INTERRUPTED
from scaled_ql.launchpad_programs.supervision import EXIT_NODE_FAILED
from scaled_ql.launchpad_programs.supervision import EXIT_OK
from scaled_ql.launchpad_programs.supervision import EXIT_TIMEOUT
from scaled_ql.launchpad_programs.supervision import bound_counter_calls

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NODE_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "ProgramOptions",
    "bound_counter_calls",
    "launch",
    "make_program",
]
