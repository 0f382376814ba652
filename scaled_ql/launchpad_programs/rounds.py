"""The learner's book of evaluation rounds, shared by every program's learner node.

A round is a snapshot of the learner's parameters (plus whatever the program records with
it, such as the environment steps of an online run) taken at a step where the single-process
runner would evaluate.  Evaluator groups fetch the rounds in order and append their episodes
to `eval_results.json`; two rules keep that file right (`append_evaluation` drops rounds later
than the one being appended, so out-of-order appends would lose results):

  - a group appends round `s` only after every group has appended the round before `s`
    (`may_record`);
  - a snapshot is dropped once every group fetched it, and the learner waits while more than
    `max_pending_rounds` snapshots are unfetched (`waiting`), so training overlaps evaluation
    by a bounded number of rounds.

The round published by `finish` is the final one: `status()['finished']` turns true once every
group recorded it, which is what the program's limiter waits for.
"""

import threading
from collections.abc import Callable
from typing import Any


class EvaluationRounds:
    """Rounds published by a learner for `num_groups` evaluator groups (0: no evaluation).

    Thread-safe: the learner publishes from its training thread while Courier serves the
    evaluators' and the limiter's calls from its own threads.
    """

    def __init__(self, num_groups: int):
        if num_groups < 0:
            raise ValueError(f"num_groups must be >= 0, got {num_groups}")
        self._num_groups = num_groups
        self._lock = threading.Lock()
        self._snapshots: dict[int, Any] = {}  # step -> payload, until every group fetched it
        self._fetched: dict[int, set[int]] = {}
        self._steps: list[int] = []  # every round published by this launch, in order
        self._recorded = [-1] * num_groups  # last round step each group appended
        self._final_step: int | None = None

    def publish(self, step: int, payload: Callable[[], Any], final: bool = False) -> None:
        """Publishes the round at `step` (once per step) with `payload()` (called under the
        lock, so the snapshot is the parameters of that step); `final` marks the last one."""
        with self._lock:
            if self._num_groups and step not in self._steps:
                self._snapshots[step] = payload()
                self._fetched[step] = set()
                self._steps.append(step)
            if final:
                self._final_step = step

    def waiting(self) -> int:
        """Snapshots that some group has not fetched yet."""
        with self._lock:
            return len(self._snapshots)

    def next_round(self, group: int, after_step: int) -> tuple[int, Any, bool] | None:
        """The first round after `after_step` as (step, payload, is_final), or None if none yet.

        The snapshot is dropped once every group has fetched it.
        """
        with self._lock:
            steps = [s for s in self._steps if s > after_step]
            if not steps:
                return None
            step = steps[0]
            if step not in self._snapshots:
                raise RuntimeError(f"evaluator group {group} asked for round {step} after "
                                   "every group fetched it (two evaluators for one group?)")
            payload = self._snapshots[step]
            self._fetched[step].add(group)
            if len(self._fetched[step]) == self._num_groups:
                del self._snapshots[step], self._fetched[step]
            return step, payload, step == self._final_step

    def may_record(self, group: int, step: int) -> bool:
        """Whether every group has appended the round before `step` (so appending keeps order)."""
        del group
        with self._lock:
            earlier = [s for s in self._steps if s < step]
            return not earlier or min(self._recorded) >= earlier[-1]

    def recorded(self, group: int, step: int) -> None:
        """`group` appended the round at `step` to the results file."""
        with self._lock:
            self._recorded[group] = max(self._recorded[group], step)

    def status(self, step: int) -> dict:
        """The learner's `step`, the final step (None while training) and whether the run's
        work is complete (the final round recorded by every group, or no evaluation)."""
        with self._lock:
            final = self._final_step
            finished = final is not None and (not self._num_groups
                                              or min(self._recorded) >= final)
            return {"step": int(step), "final_step": final, "finished": bool(finished)}
