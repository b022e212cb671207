"""The task poll pacing (flasher.bmc.taskmonitor.PollPacer): soon at first, doubling while nothing moves, timed
for the task's end once its percentage moves, never further apart than bmc.poll_interval."""

from __future__ import annotations

from flasher.bmc.models import TaskProgress
from flasher.bmc.taskmonitor import PollPacer


def _reading(percent: int | None, state: str = "Running") -> TaskProgress:
    return TaskProgress(state, percent, None, (), False, False, False)


def test_waits_double_while_the_task_shows_nothing_new_up_to_the_poll_interval() -> None:
    pacer = PollPacer(8.0)
    waits = [pacer.next_wait(_reading(None), t) for t in range(6)]
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_a_moving_percentage_times_the_next_poll_for_the_tasks_end() -> None:
    pacer = PollPacer(10.0)
    assert pacer.next_wait(_reading(0), 0.0) == 2.5
    # 20 % in 2.5 s: 8 % a second, 80 % left: the end is due in 10 s, the longest wait.
    assert pacer.next_wait(_reading(20), 2.5) == 10.0
    # 90 % at 11.25 s: the end is due in 1.25 s, sooner than the first wait: the first wait.
    assert pacer.next_wait(_reading(90), 11.25) == 2.5


def test_a_change_of_state_starts_the_waits_again() -> None:
    pacer = PollPacer(4.0)
    assert [pacer.next_wait(_reading(None, "New"), t) for t in (0, 1, 3)] == [1.0, 2.0, 4.0]
    assert pacer.next_wait(_reading(None, "Running"), 7) == 1.0


def test_polls_of_a_long_task_are_never_more_than_a_few_beyond_one_per_interval() -> None:
    pacer, now, polls = PollPacer(5.0), 0.0, 0
    while now < 300:  # a 5-minute install that reports no percentage
        now += pacer.next_wait(_reading(None), now)
        polls += 1
    assert polls <= 300 / 5 + 3
