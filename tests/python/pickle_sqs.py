"""Pickled domain events between Python Melange 7.2.0 and Rust through a local SQS server.

Run by tests/it/pickle.rs with $MELANGE_TEST_PYTHON (see scripts/test):

    pickle_sqs.py ENDPOINT publish QUEUE ORDER_ID     QueuePublisher with the pickle serializer
    pickle_sqs.py ENDPOINT consume QUEUE COUNT TIMEOUT
        MessageDispatcher + SingleDispatchConsumer; prints one JSON line per handler call
"""

import datetime
import json
import os
import signal
import sys
from urllib.parse import urlparse

import pytz

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from melange.backends.sqs.localsqs import LocalSQSBackend  # noqa: E402
from melange.consumers import SingleDispatchConsumer, consumer  # noqa: E402
from melange.message_dispatcher import MessageDispatcher  # noqa: E402
from melange.publishers import QueuePublisher  # noqa: E402
from melange.serializers.registry import SerializerRegistry, default_settings  # noqa: E402

from pickle_events import Line, OrderCreated  # noqa: E402


class Stop(Exception):
    pass


class Handlers(SingleDispatchConsumer):
    def __init__(self):
        super().__init__()
        self.count = 0

    @consumer
    def on_order_created(self, event: OrderCreated):
        self.count += 1
        print(
            json.dumps(
                {
                    "handler": "on_order_created",
                    "class": f"{type(event).__module__}.{type(event).__qualname__}",
                    "order_id": event.order_id,
                    "lines": [[line.sku, line.quantity] for line in event.lines],
                    "occurred_on": event.occurred_on.isoformat(),
                }
            ),
            flush=True,
        )


def backend_for(endpoint):
    url = urlparse(endpoint)
    host = f"{url.scheme}://{url.hostname}"
    return LocalSQSBackend(
        host=host, port=url.port, sns_host=host, sns_port=url.port, wait_time_seconds=1
    )


def main(argv):
    endpoint, command, queue, *args = argv
    backend = backend_for(endpoint)
    # Python Melange's defaults: pickle for everything but dicts.
    registry = SerializerRegistry(default_settings)
    if command == "publish":
        event = OrderCreated(
            order_id=int(args[0]),
            lines=[Line("sku-9", 3)],
            occurred_on=datetime.datetime(2026, 11, 28, 9, 30, tzinfo=pytz.utc),
        )
        QueuePublisher(registry, backend).publish(queue, event)
    elif command == "consume":
        count, timeout = int(args[0]), int(args[1])
        handlers = Handlers()

        def after_consume():
            if handlers.count >= count:
                raise Stop()

        def on_timeout(signum, frame):
            raise Stop()

        signal.signal(signal.SIGALRM, on_timeout)
        signal.alarm(timeout)
        dispatcher = MessageDispatcher(registry, backend=backend)
        dispatcher.attach_consumer(handlers)
        try:
            dispatcher.consume_loop(queue, after_consume=after_consume)
        except Stop:
            pass
        finally:
            signal.alarm(0)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
