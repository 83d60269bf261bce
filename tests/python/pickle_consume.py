"""Dispatches what Rust pickled through Python Melange 7.2.0's own consumer machinery.

Reads JSON lines {"content", "manifest", "serializer_id"} from stdin, hands each to a
`MessageDispatcher` (the real deserialize-by-serializer-id and dispatch path of
`consume_loop`) whose consumer is a `SingleDispatchConsumer` with one typed handler per
class, and prints one JSON line per handler call describing what it received. Run by
tests/it/pickle.rs with $MELANGE_TEST_PYTHON (see scripts/test).
"""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from melange.backends.testing import InMemoryMessagingBackend  # noqa: E402
from melange.consumers import SingleDispatchConsumer, consumer  # noqa: E402
from melange.message_dispatcher import MessageDispatcher  # noqa: E402
from melange.models import Message  # noqa: E402
from melange.serializers.registry import SerializerRegistry, default_settings  # noqa: E402
from simple_cqrs.domain_event import DomainEvent  # noqa: E402

from pickle_events import Line, OrderCancelled, OrderCreated  # noqa: E402


def describe_datetime(value):
    return {
        "type": type(value).__name__,
        "iso": value.isoformat(),
        "utcoffset": None if value.utcoffset() is None else value.utcoffset().total_seconds(),
    }


class Handlers(SingleDispatchConsumer):
    @consumer
    def on_order_created(self, event: OrderCreated):
        assert isinstance(event, DomainEvent)
        assert all(isinstance(line, Line) for line in event.lines)
        print(
            json.dumps(
                {
                    "handler": "on_order_created",
                    "class": f"{type(event).__module__}.{type(event).__qualname__}",
                    "order_id": event.order_id,
                    "lines": [[line.sku, line.quantity] for line in event.lines],
                    "line_class": [type(line).__qualname__ for line in event.lines],
                    "occurred_on": describe_datetime(event.occurred_on),
                    "metadata": event.metadata,
                    "correlation_id": event.correlation_id,
                }
            ),
            flush=True,
        )

    @consumer
    def on_order_cancelled(self, event: OrderCancelled):
        print(
            json.dumps(
                {
                    "handler": "on_order_cancelled",
                    "class": f"{type(event).__module__}.{type(event).__qualname__}",
                    "order_id": event.order_id,
                    "reason": event.reason,
                    "occurred_on": describe_datetime(event.occurred_on),
                    "correlation_id": event.correlation_id,
                }
            ),
            flush=True,
        )


backend = InMemoryMessagingBackend()
dispatcher = MessageDispatcher(SerializerRegistry(default_settings), backend=backend)
dispatcher.attach_consumer(Handlers())
for number, line in enumerate(sys.stdin):
    wire = json.loads(line)
    message = Message(
        message_id=str(number),
        content=wire["content"],
        metadata=None,
        serializer_id=wire["serializer_id"],
        manifest=wire["manifest"],
    )
    dispatcher._dispatch_message(message)
