"""Runners: the single-process training loops behind `scaled-ql pretrain` and friends.

They build everything through `ScaledQLBuilder`, like the Launchpad programs in
`scaled_ql.launchpad_programs`, so one process and a distributed program train the same agent.
The names below load their module (and Acme, TensorFlow) on first use, so importing a light
runner module such as `scaled_ql.runners.demo` for its config does not pay for the others.
"""

import importlib

_LAZY = {"PretrainConfig": "pretrain", "PretrainSummary": "summary", "run_pretrain": "pretrain"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"scaled_ql.runners.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'scaled_ql.runners' has no attribute {name!r}")
