"""The ``flasher_tasks`` series after a poll (``flasher.service.poller.task_series``): each status from the freshest
complete listing that covers it, whichever replica made it."""

from __future__ import annotations

from collections import Counter

from flasher.queue.pollshare import ADMITTED, FULL
from flasher.service.poller import PollReport, task_series

INSTALL, CONTROL = "install", "server_control"


def report(seen: dict[tuple[str, str], int], *, full: bool = False, admitted: bool = True) -> PollReport:
    return PollReport(seen=Counter(seen), full=full, admitted=admitted)


def test_a_full_poll_replaces_every_series() -> None:
    previous = {(INSTALL, "success"): 7, (INSTALL, "queued"): 3}
    after = task_series(previous, report({(INSTALL, "failed"): 1, (INSTALL, ""): 2}, full=True), {})
    assert after == {(INSTALL, "failed"): 1, (INSTALL, "new"): 2}


def test_a_failed_listing_keeps_what_was_shown() -> None:
    failed = PollReport(listing_failed=True, seen=Counter({(INSTALL, ""): 1}))
    assert task_series({(INSTALL, "queued"): 3}, failed, {}) is None


def test_a_poll_of_new_requests_keeps_the_statuses_it_did_not_list() -> None:
    previous = {(INSTALL, "success"): 7, (INSTALL, "queued"): 3, (INSTALL, "new"): 4}
    after = task_series(previous, report({(INSTALL, "requested"): 1}, admitted=False), {FULL: None, ADMITTED: None})
    assert after is not None
    assert after[(INSTALL, "success")] == 7 and after[(INSTALL, "queued")] == 3  # nothing fresher covers them
    assert after[(INSTALL, "new")] == 0 and after[(INSTALL, "requested")] == 1  # covered by this poll
    assert after[(CONTROL, "new")] == 0


def test_the_full_turn_holders_counts_replace_the_ended_statuses_and_keep_the_admitted_ones() -> None:
    """Counts of the full turn without the admitted turn's (its holder's counts unreadable): ``queued`` and
    ``active`` keep what they showed rather than vanish."""
    previous = {(INSTALL, "success"): 7, (INSTALL, "cancelled"): 1, (INSTALL, "queued"): 3, (INSTALL, "active"): 2}
    full = {(INSTALL, "success"): 9, (INSTALL, "queued"): 99}
    after = task_series(previous, report({}, admitted=False), {FULL: full, ADMITTED: None})
    assert after is not None
    assert after[(INSTALL, "success")] == 9 and (INSTALL, "cancelled") not in after
    assert after[(INSTALL, "queued")] == 3 and after[(INSTALL, "active")] == 2  # not the full listing's older 99


def test_the_admitted_turn_holders_counts_set_queued_and_active_for_every_kind() -> None:
    previous = {(INSTALL, "queued"): 3, (CONTROL, "active"): 1}
    admitted = {(INSTALL, "active"): 2, (INSTALL, ""): 5}
    after = task_series(previous, report({}, admitted=False), {FULL: None, ADMITTED: admitted})
    assert after is not None
    assert after[(INSTALL, "active")] == 2
    assert after[(INSTALL, "queued")] == 0 and after[(CONTROL, "active")] == 0  # none left: 0, not the old count
    assert after[(INSTALL, "new")] == 0  # new requests come from this poll's own listing, not the holder's


def test_the_admitted_turn_holder_counts_its_own_listing() -> None:
    after = task_series({(INSTALL, "active"): 4}, report({(INSTALL, "queued"): 1}), {FULL: None, ADMITTED: None})
    assert after is not None
    assert after[(INSTALL, "queued")] == 1 and after[(INSTALL, "active")] == 0


def test_both_holders_counts_with_this_polls_new_requests() -> None:
    previous = {(INSTALL, "success"): 1, (INSTALL, "queued"): 2, (INSTALL, "new"): 3}
    full = {(INSTALL, "success"): 4, (INSTALL, "failed"): 1}
    admitted = {(INSTALL, "queued"): 5}
    after = task_series(previous, report({(INSTALL, ""): 6}, admitted=False), {FULL: full, ADMITTED: admitted})
    assert after is not None
    assert {key: n for key, n in after.items() if n} == {
        (INSTALL, "success"): 4,
        (INSTALL, "failed"): 1,
        (INSTALL, "queued"): 5,
        (INSTALL, "new"): 6,
    }
