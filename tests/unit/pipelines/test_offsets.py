"""The worker's own offset book: order, re-deliveries, skips, and what may be committed."""

from __future__ import annotations

from pipelines.offsets import OffsetBook, Verdict

TP = ("factory.telemetry", 2)


def test_takes_in_order_and_commits_the_first_offset_not_done() -> None:
    book = OffsetBook()
    book.start(TP, 10)
    assert [book.check(TP, o) for o in (10, 11, 12, 13)] == [Verdict.TAKE] * 4
    # 11 and 13 are durable, 10 is still held back by the merge: nothing may be committed yet.
    book.done([(*TP, 11), (*TP, 13)])
    assert book.commits() == {}
    book.done([(*TP, 10)])
    assert book.commits() == {TP: 12}
    book.committed({TP: 12})
    assert book.commits() == {}  # unchanged since the last commit
    book.done([(*TP, 12)])
    assert book.commits() == {TP: 14}


def test_a_redelivery_is_a_duplicate_and_a_jump_is_reported_not_taken() -> None:
    book = OffsetBook()
    book.start(TP, 14)
    assert book.check(TP, 14) is Verdict.TAKE
    # Faust delivered a message fetched before a rebalance, then skipped to it: the ones between
    # must be read, not marked done (the stall and the loss we saw).
    assert book.check(TP, 1052) is Verdict.AHEAD
    assert book.expected(TP) == 15
    assert book.check(TP, 14) is Verdict.DUPLICATE
    assert book.check(TP, 15) is Verdict.TAKE
    book.done([(*TP, 14), (*TP, 15)])
    assert book.commits() == {TP: 16}


def test_offsets_gone_from_the_broker_are_skipped_and_committed_past() -> None:
    book = OffsetBook()
    book.start(TP, 5)
    book.skip_to(TP, 40)  # retention deleted 5-39 while the worker was down
    assert book.check(TP, 40) is Verdict.TAKE
    book.done([(*TP, 40)])
    assert book.commits() == {TP: 41}


def test_a_revoked_partition_is_forgotten_and_not_committed() -> None:
    book = OffsetBook()
    book.start(TP, 0)
    book.check(TP, 0)
    book.forget([TP])
    assert not book.knows(TP)
    book.done([(*TP, 0)])  # a late durable mark for a partition that is gone
    assert book.commits() == {}
    assert book.last_committed(TP) is None
