"""EvaluationRounds: the learner's round book shared by the pretraining and online programs."""

import threading

import pytest

from scaled_ql.launchpad_programs.rounds import EvaluationRounds


def test_rounds_are_fetched_in_order_and_dropped_once_every_group_has_them():
    rounds = EvaluationRounds(num_groups=2)
    calls = []
    rounds.publish(10, lambda: calls.append(10) or "params@10")
    rounds.publish(10, lambda: calls.append("again") or "other")  # once per step
    rounds.publish(20, lambda: "params@20")
    assert calls == [10] and rounds.waiting() == 2
    assert rounds.next_round(0, -1) == (10, "params@10", False)
    assert rounds.next_round(0, 10) == (20, "params@20", False)
    assert rounds.next_round(0, 20) is None
    assert rounds.waiting() == 2  # group 1 has fetched neither
    assert rounds.next_round(1, -1) == (10, "params@10", False)
    assert rounds.waiting() == 1
    with pytest.raises(RuntimeError, match="round 10 after every group fetched it"):
        rounds.next_round(1, -1)


def test_a_group_records_a_round_only_after_every_group_recorded_the_one_before():
    rounds = EvaluationRounds(num_groups=2)
    for step in (4, 8):
        rounds.publish(step, lambda: None)
    assert rounds.may_record(0, 4) and rounds.may_record(1, 4)  # nothing before it
    rounds.recorded(0, 4)
    assert not rounds.may_record(0, 8)  # group 1 has not recorded step 4 yet
    rounds.recorded(1, 4)
    assert rounds.may_record(0, 8)


def test_finished_once_the_final_round_is_recorded_by_every_group():
    rounds = EvaluationRounds(num_groups=2)
    rounds.publish(5, lambda: "p5")
    assert rounds.status(7) == {"step": 7, "final_step": None, "finished": False}
    rounds.publish(9, lambda: "p9", final=True)
    assert rounds.next_round(0, 5) == (9, "p9", True)
    rounds.recorded(0, 9)
    assert not rounds.status(9)["finished"]
    rounds.recorded(1, 5)
    assert not rounds.status(9)["finished"]
    rounds.recorded(1, 9)
    assert rounds.status(9) == {"step": 9, "final_step": 9, "finished": True}


def test_a_step_published_before_can_still_become_the_final_round():
    rounds = EvaluationRounds(num_groups=1)
    rounds.publish(3, lambda: "p3")
    rounds.publish(3, lambda: "ignored", final=True)
    assert rounds.next_round(0, -1) == (3, "p3", True)


def test_without_evaluators_nothing_is_kept_and_the_final_step_finishes():
    rounds = EvaluationRounds(num_groups=0)
    rounds.publish(1, lambda: pytest.fail("no snapshot is taken without evaluators"))
    assert rounds.waiting() == 0 and rounds.next_round(0, -1) is None
    rounds.publish(2, lambda: None, final=True)
    assert rounds.status(2) == {"step": 2, "final_step": 2, "finished": True}
    with pytest.raises(ValueError, match="num_groups"):
        EvaluationRounds(-1)


def test_publishing_and_fetching_from_threads_loses_no_round():
    rounds = EvaluationRounds(num_groups=1)
    seen = []

    def evaluator():
        after = -1
        while after < 199:
            reply = rounds.next_round(0, after)
            if reply is not None:
                after = reply[0]
                seen.append(reply[1])

    thread = threading.Thread(target=evaluator)
    thread.start()
    for step in range(200):
        rounds.publish(step, lambda step=step: step)
    thread.join(timeout=30)
    assert not thread.is_alive() and seen == list(range(200)) and rounds.waiting() == 0
