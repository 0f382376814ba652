"""Runners: the single-process training loops behind `scaled-ql pretrain` and friends.

They build everything through `ScaledQLBuilder`, like the Launchpad programs in
`scaled_ql.launchpad_programs`, so one process and a distributed program train the same agent.
"""

from scaled_ql.runners.pretrain import PretrainConfig, PretrainSummary, run_pretrain

__all__ = ["PretrainConfig", "PretrainSummary", "run_pretrain"]
