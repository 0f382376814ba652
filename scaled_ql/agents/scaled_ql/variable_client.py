"""The actors' variable client: Acme's contract, with a fetch that cannot hold a process open.

Acme 0.4.0's `acme.jax.variable_utils.VariableClient` fetches asynchronously on a
`concurrent.futures.ThreadPoolExecutor` worker.  Python's exit joins every such worker (daemon
or not), so when a learner stops while a fetch is in flight and the courier call never returns,
the actor's process stays alive after its work is done (seen in the test suite: every test
passed, then pytest waited at exit on a worker blocked in `get_variables`).  This client keeps
Acme's interface (`update(wait)`, `update_and_wait()`, `params`), which `GenericActor` uses,
and fetches on a daemon thread of its own, which an exiting interpreter does not wait for.
"""

from collections.abc import Sequence
import logging
import threading

from acme import core


class VariableClient:
    """Periodically pulls named variables from an Acme `VariableSource`.

    Like Acme's client: `update()` counts calls and, every `update_period`-th call, starts an
    asynchronous fetch unless one is still in flight; `update(wait=True)` and
    `update_and_wait()` fetch in the caller's thread (and raise what the source raises);
    `params` is the first key's variables when one key was asked for, else the list, fetched on
    first use.  An asynchronous fetch that fails is logged and leaves the last variables in
    place, as Acme's does.
    """

    def __init__(self, source: core.VariableSource, key: str | Sequence[str],
                 update_period: int = 1):
        if update_period < 1:
            raise ValueError(f"update_period must be >= 1, got {update_period}")
        self._source = source
        self._keys = [key] if isinstance(key, str) else list(key)
        self._update_period = update_period
        self._calls = 0
        self._params: list | None = None
        self._fetch: threading.Thread | None = None

    def update(self, wait: bool = False) -> None:
        """Every `update_period`-th call, fetch: in the background, or here when `wait`."""
        self._calls = min(self._calls + 1, self._update_period)
        if self._calls < self._update_period:
            return
        if wait:
            self._calls = 0
            self.update_and_wait()
            return
        if self._fetch is not None and self._fetch.is_alive():
            return  # the previous request has not come back yet
        self._calls = 0
        self._fetch = threading.Thread(target=self._fetch_in_background, daemon=True,
                                       name="scaled-ql-variable-fetch")
        self._fetch.start()

    def update_and_wait(self) -> None:
        """Fetch now, in this thread."""
        self._params = self._source.get_variables(self._keys)

    def _fetch_in_background(self) -> None:
        try:
            params = self._source.get_variables(self._keys)
        except Exception as error:  # the actor keeps acting with the variables it has
            logging.warning("variable fetch of %s failed; keeping the previous variables: %r",
                            self._keys, error)
            return
        self._params = params

    @property
    def params(self):
        if self._params is None:
            self.update_and_wait()
        return self._params[0] if len(self._params) == 1 else self._params

    @property
    def device(self) -> None:
        """Variables stay where the source puts them (Acme's client with `device=None`)."""
        return None
