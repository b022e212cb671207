"""Task events through Redis: the publisher the replicas use, and the reader and fan-out ``flasher api`` uses.

See :mod:`flasher.events.stream` for the stream and its keys, :mod:`flasher.events.hub` for the fan-out.
"""

from flasher.events.stream import (
    DEFAULT_MAXLEN,
    EventCursor,
    EventKeys,
    EventPublisher,
    EventReader,
    Reset,
    StreamEntry,
)

__all__ = ["DEFAULT_MAXLEN", "EventCursor", "EventKeys", "EventPublisher", "EventReader", "Reset", "StreamEntry"]
