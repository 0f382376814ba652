"""The data the command-line tests of `scaled-ql pretrain` share."""

import pytest

GAME = "minatar/Breakout"


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """minatar/Breakout, 200 random-policy steps, collected once per session for the tests of
    signals and --resume (they only read it)."""
    from tests.runners.minatar import collect_minatar

    return collect_minatar(tmp_path_factory.mktemp("minatar_breakout"), games=(GAME,),
                           num_steps=200)
