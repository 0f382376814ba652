"""The actors' variable client: Acme's contract, with a fetch that cannot hold a process open.

Acme 0.4.0's `acme.jax.variable_utils.VariableClient` fetches asynchronously on a
`concurrent.futures.ThreadPoolExecutor` worker.  Python's exit joins every such worker (daemon
or not), so when a learner stops while a fetch is in flight and the courier call never returns,
the actor's process stays alive after its work is done (seen in the test suite: every test
passed, then pytest waited at exit on a worker blocked in `get_variables`).  This client keeps
Acme's interface (`update(wait)`, `update_and_wait()`, `params`), which `GenericActor` uses,
and fetches on a daemon thread of its own, which an exiting interpreter does not wait for.

That thread is started once, at the first background fetch, and serves every later one: the
actor's loop starts no thread per fetch.  With a new thread per fetch, an actor hung once (the
test suite in two xdist workers, a Launchpad `test_mt` program): it waited for ever in
`Thread.start()`, which returns only when the new thread reports that it runs, and the new
thread was gone.  The likely cause: Acme stops its loops by raising `SystemExit`
asynchronously in a thread given by its id (`acme.utils.signals.runtime_terminator`), thread
ids are reused, and a thread stopped before it reports never does.  One long-lived thread
leaves that window once per client instead of once per fetch; a fetch thread that dies is
replaced at the next `update()`.
"""

from collections.abc import Sequence
import logging
import threading
import weakref

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
        self._wanted = threading.Event()  # a background fetch was asked for
        self._idle = threading.Event()  # no background fetch asked for or in flight
        self._idle.set()
        self._fetcher: threading.Thread | None = None

    def update(self, wait: bool = False) -> None:
        """Every `update_period`-th call, fetch: in the background, or here when `wait`."""
        self._calls = min(self._calls + 1, self._update_period)
        if self._calls < self._update_period:
            return
        if wait:
            self._calls = 0
            self.update_and_wait()
            return
        fetcher_alive = self._fetcher is not None and self._fetcher.is_alive()
        if fetcher_alive and not self._idle.is_set():
            return  # the previous request has not come back yet
        self._calls = 0
        self._idle.clear()
        self._wanted.set()
        if not fetcher_alive:
            self._fetcher = threading.Thread(target=_fetch_loop, args=(weakref.ref(self),),
                                             daemon=True, name="scaled-ql-variable-fetch")
            self._fetcher.start()

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


_POLL_S = 1.0  # how often an idle fetch thread checks whether its client still exists


def _fetch_loop(client_ref: "weakref.ref[VariableClient]") -> None:
    """A client's fetch thread: one fetch per request, until the client is garbage."""
    while (client := client_ref()) is not None:
        wanted = client._wanted
        del client  # wait without keeping the client alive
        if not wanted.wait(_POLL_S):
            continue
        client = client_ref()
        if client is None:
            return
        wanted.clear()
        try:
            client._fetch_in_background()
        finally:
            client._idle.set()
        del client
