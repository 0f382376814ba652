"""Options of the reliability suite (the option itself is registered in tests/conftest.py,
so that it parses from the repository root as well).

`--reliability-sweep N` runs the long fault sweeps: N kill -9 points of a single-process run
(instead of the default 2) and the Launchpad faults that need a second `local_mp` launch
(evaluator killed, learner killed again after a `local_mp` resume).
"""

import pytest


@pytest.fixture(scope="session")
def reliability_sweep(request) -> int:
    """N from --reliability-sweep (0: the sweeps are skipped)."""
    return request.config.getoption("--reliability-sweep")
