"""The actor node of online programs: plays a game with the builder's actor and writes into
Reverb with the builder's adder (everything it builds comes from `ScaledQLBuilder`'s
`make_environment`, `make_policy`, `make_actor` and `make_adder`, as in Acme's layouts)."""

import dataclasses
from collections.abc import Callable
from typing import Any

from scaled_ql.launchpad_programs import supervision


@dataclasses.dataclass(frozen=True)
class ActingSpec:
    """What the actor nodes of a program play (picklable values).

    Attributes:
      make_builder: `() -> ScaledQLBuilder` of the run (a `functools.partial` of a module-level
        function).
      game: the game played (one of the builder's games).
      environment: keyword arguments of `builder.make_environment` besides the game and seed
        (the variant: mode, difficulty; sticky actions, episode cap).
      env_steps: the run's budget of environment steps, over all actors (the counter's
        `actor_steps`).
      seed: the run's seed (actor i plays environment seed `seed * 1009 + i + 1`).
    """

    make_builder: Callable[[], Any]
    game: str
    environment: dict
    env_steps: int
    seed: int


class Actor:
    """Plays its game with the learner's current policy (the builder's actor, fetching
    variables from the learner), writing transitions into the game's online table through the
    builder's adder, and counting `actor_steps` until the run's budget is spent."""

    def __init__(self, spec: ActingSpec, replay, counter, learner, index: int,
                 status_dir: str | None, name: str):
        self._spec = spec
        self._address = replay.server_address
        # Calls to other nodes end when the program stops (`supervision.stop_aware`).
        self._counter = supervision.stop_aware(counter)
        self._learner = supervision.stop_aware(learner)
        self._index = index
        self._status_dir = status_dir
        self._name = name
        self._actor = None
        self._steps = self._episodes = 0
        self._total = 0

    def _setup(self) -> None:
        if self._actor is not None:
            return
        import jax
        import reverb

        spec = self._spec
        builder = spec.make_builder()
        networks = builder.make_networks()
        self._env = builder.make_environment(
            spec.game, seed=(spec.seed * 1009 + self._index + 1) % (2**31 - 1),
            **spec.environment)
        self._adder = builder.make_adder(reverb.Client(self._address),
                                         should_stop=self._should_stop)
        policy = builder.make_policy(networks, spec.game, evaluation=False)
        self._actor = builder.make_actor(jax.random.PRNGKey(spec.seed + 7 + self._index),
                                         policy, adder=self._adder,
                                         variable_source=self._learner)
        self._timestep = None

    def _should_stop(self) -> bool:
        return supervision.stop_requested() or self._budget_spent(
            int(self._counter.get_counts().get("actor_steps", 0)))

    def _budget_spent(self, total: int) -> bool:
        return total >= self._spec.env_steps

    def act(self, num_steps: int) -> dict:
        """Plays up to `num_steps` steps (fewer once the run's budget is spent), then makes sure
        their transitions reached the table; returns this actor's totals."""
        from scaled_ql.agents.scaled_ql.adder import AdderStopped

        with supervision.guarded(self._status_dir, self._name):
            self._setup()
            try:
                for _ in range(num_steps):
                    if self._budget_spent(self._total):
                        break
                    self._one_step()
                self._adder.flush()
            except AdderStopped:
                pass
            return {"steps": self._steps, "episodes": self._episodes,
                    "items": self._adder.items_written, "total_env_steps": self._total}

    def _one_step(self) -> None:
        actor = self._actor
        if self._timestep is None or self._timestep.last():
            self._timestep = self._env.reset()
            actor.observe_first(self._timestep)
        action = actor.select_action(self._timestep.observation)
        self._timestep = self._env.step(action)
        actor.observe(action, next_timestep=self._timestep)
        actor.update()
        self._steps += 1
        self._episodes += int(self._timestep.last())
        counts = self._counter.increment(actor_steps=1)
        self._total = int(counts.get("actor_steps", 0))

    def run(self) -> None:
        with supervision.guarded(self._status_dir, self._name):
            while not supervision.stop_requested() and not self._budget_spent(self._total):
                self.act(100)
        supervision.wait_or_stop(None)
