"""Python Melange 7.2.0 on a local SQS + SNS server, driven by tests/it/python_interop.rs.

Run with $MELANGE_TEST_PYTHON (see scripts/test):

    sqs_interop.py ENDPOINT publish-queue QUEUE JSON...      QueuePublisher, JSON serializer
    sqs_interop.py ENDPOINT publish-topic TOPIC JSON...      TopicPublisher, JSON serializer
    sqs_interop.py ENDPOINT init-queue QUEUE TOPIC DLQ       MessagingBackendFactory.init_queue
    sqs_interop.py ENDPOINT consume QUEUE COUNT TIMEOUT      MessageDispatcher.consume_loop

ENDPOINT is `http://host:port`. `consume` prints one JSON line per message a consumer
received (the deserialized dict), and stops after COUNT messages or TIMEOUT seconds.
"""

import json
import signal
import sys
from urllib.parse import urlparse

from melange.backends.factory import MessagingBackendFactory
from melange.backends.sqs.localsqs import LocalSQSBackend
from melange.consumers import Consumer
from melange.message_dispatcher import MessageDispatcher
from melange.publishers import QueuePublisher, TopicPublisher
from melange.serializers.registry import SerializerRegistry, default_settings


class Stop(Exception):
    pass


def backend_for(endpoint):
    url = urlparse(endpoint)
    host = f"{url.scheme}://{url.hostname}"
    return LocalSQSBackend(
        host=host,
        port=url.port,
        sns_host=host,
        sns_port=url.port,
        wait_time_seconds=1,
        visibility_timeout=30,
    )


def main(argv):
    endpoint, command, *args = argv
    backend = backend_for(endpoint)
    registry = SerializerRegistry(default_settings)
    if command == "publish-queue":
        queue, *payloads = args
        publisher = QueuePublisher(registry, backend)
        for payload in payloads:
            publisher.publish(queue, json.loads(payload))
    elif command == "publish-topic":
        topic, *payloads = args
        publisher = TopicPublisher(registry, backend)
        for payload in payloads:
            publisher.publish(topic, json.loads(payload))
    elif command == "init-queue":
        queue, topic, dlq = args
        MessagingBackendFactory(backend).init_queue(queue, [topic], dlq_name=dlq)
    elif command == "consume":
        queue, count, timeout = args[0], int(args[1]), int(args[2])
        received = []

        def on_message(message):
            received.append(message)
            print(json.dumps(message), flush=True)

        def after_consume():
            if len(received) >= count:
                raise Stop()

        def on_timeout(signum, frame):
            raise Stop()

        signal.signal(signal.SIGALRM, on_timeout)
        signal.alarm(timeout)
        dispatcher = MessageDispatcher(registry, backend=backend)
        dispatcher.attach_consumer(Consumer(on_message=on_message))
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
