"""Finding processes a test started, to prove none is left behind.

Each integration test runs its command with a fresh SCALED_QL_TEST_TOKEN in the environment;
every process it starts (Launchpad nodes, evaluator workers) inherits the variable.
"""

import psutil

TOKEN_VARIABLE = "SCALED_QL_TEST_TOKEN"


def processes_with_token(token: str) -> list[psutil.Process]:
    """Live processes whose environment carries `token`."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TOKEN_VARIABLE) == token:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
