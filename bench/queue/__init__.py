"""Queue benchmark: enqueue-claim-ack cycles per second beside Redis' raw round-trip rate (``run``)."""
