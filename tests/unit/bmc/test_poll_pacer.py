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
    # 20 % first read at 2.5 s: placed at 1.25 s, midway since the reading before; 16 % a second from the first
    # reading, 80 % left: the end is due at 6.25 s.
    assert pacer.next_wait(_reading(20), 2.5) == 3.75
    # 90 % read at 6.25 s, placed at 4.375 s: 70 % in 3.125 s since the first change, the end was due at 4.82 s:
    # past it, the first wait.
    assert pacer.next_wait(_reading(90), 6.25) == 2.5


def test_past_the_estimated_end_the_first_wait_comes_back_three_times_then_doubles() -> None:
    pacer = PollPacer(8.0)
    pacer.next_wait(_reading(0), 0.0)
    pacer.next_wait(_reading(50), 2.0)  # 50 % at 1 s: done at 2 s
    assert [pacer.next_wait(_reading(50), t) for t in (4.0, 6.0, 8.0, 10.0, 14.0, 22.0, 30.0)] == [
        2.0,
        2.0,
        2.0,
        4.0,
        8.0,
        8.0,
        8.0,
    ]  # a task that sits at 99 % is soon polled no faster than without an estimate


def test_a_percentage_that_starts_again_starts_the_estimate_again() -> None:
    pacer = PollPacer(4.0)
    for t, percent in ((0.0, 0), (1.0, 50), (2.0, 100)):
        pacer.next_wait(_reading(percent, "Downloading"), t)
    assert pacer.next_wait(_reading(5), 3.0) == 1.0  # a new phase: no pace yet


def _stepping(t: float, length: float, steps: int) -> TaskProgress | None:
    """A BMC's task of ``length`` s whose percentage moves in ``steps`` equal steps; ``None`` once ended."""
    if t >= length:
        return None
    return _reading(int(t / (length / steps)) * (100 // steps))


def test_a_stepping_task_is_seen_ending_soon_after_its_end_without_more_polls() -> None:
    """Whatever the phase of the polls against the BMC's steps, the end is seen within the poll interval, on
    average within a third of it, and at no more than a few polls beyond one per interval."""
    interval, length = 2.0, 20.0
    lags, polls = [], []
    for k in range(50):
        pacer, t, n = PollPacer(interval), 0.01 + k * 0.037, 0
        while (reading := _stepping(t, length, 10)) is not None:
            t += pacer.next_wait(reading, t) + 0.02  # each poll takes 20 ms
            n += 1
        lags.append(t - length)
        polls.append(n)
    assert max(lags) <= interval
    assert sum(lags) / len(lags) <= interval / 3
    assert max(polls) <= length / interval + 6


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


def test_a_task_stuck_past_its_estimated_end_is_polled_once_per_interval_for_as_long_as_it_takes() -> None:
    pacer = PollPacer(1.0)
    pacer.next_wait(_reading(0), 0.0)
    now = 0.5 + pacer.next_wait(_reading(99), 0.5)
    waits = []
    for _ in range(5000):  # over an hour at 99 %, a poll a second
        waits.append(pacer.next_wait(_reading(99), now))
        now += waits[-1]
    assert waits[:3] == [0.25, 0.25, 0.25] and set(waits[5:]) == {1.0}


def test_a_reading_without_a_percentage_keeps_the_pace() -> None:
    pacer = PollPacer(10.0)
    pacer.next_wait(_reading(0), 0.0)
    pacer.next_wait(_reading(20), 2.5)  # the end due at 6.25 s, as above
    pacer.next_wait(_reading(None, "Unknown"), 3.0)  # a task monitor's bare 202: no percentage
    # 30 % read at 4.0 s: placed midway since the last reading with a percentage (2.5 s), at 3.25 s; 10 % in 2 s
    # since the first change (1.25 s): 70 % left, the end is due at 17.25 s, the longest wait from 4.0 s.
    assert pacer.next_wait(_reading(30), 4.0) == 10.0
