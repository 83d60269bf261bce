"""Python Melange 7.2.0 peer for melange's benchmarks (run by bench/run in its venv).

    python_peer.py ENDPOINT consume QUEUE N    MessageDispatcher.consume_loop until N messages
    python_peer.py ENDPOINT publish QUEUE N    QueuePublisher.publish, N messages

Prints one JSON line (cpu_s: this process's CPU time during the measured part).
MessageDispatcher receives 10 per call and handles (and deletes) one message at a time (it
has no concurrency setting); QueuePublisher sends one message per call.
"""
import json
import sys
import time
from urllib.parse import urlparse

from melange.backends.sqs.localsqs import LocalSQSBackend
from melange.consumers import Consumer
from melange.message_dispatcher import MessageDispatcher
from melange.publishers import QueuePublisher
from melange.serializers.registry import SerializerRegistry, default_settings


class Stop(Exception):
    pass


def main(endpoint, command, queue, n):
    n = int(n)
    url = urlparse(endpoint)
    host = f"{url.scheme}://{url.hostname}"
    backend = LocalSQSBackend(host=host, port=url.port, sns_host=host, sns_port=url.port,
                              wait_time_seconds=1, visibility_timeout=30)
    backend.max_number_of_messages = 10
    registry = SerializerRegistry(default_settings)
    start, cpu_start = time.perf_counter(), time.process_time()
    if command == "consume":
        handled = [0]

        def on_message(message):
            handled[0] += 1

        def after_consume():
            if handled[0] >= n:
                raise Stop()

        dispatcher = MessageDispatcher(registry, backend=backend)
        dispatcher.attach_consumer(Consumer(on_message=on_message))
        try:
            dispatcher.consume_loop(queue, after_consume=after_consume)
        except Stop:
            pass
    elif command == "publish":
        publisher = QueuePublisher(registry, backend)
        for seq in range(n):
            publisher.publish(queue, {"seq": seq, "customer": "customer-42", "amount_cents": 1999})
    else:
        raise SystemExit(f"unknown command {command!r}")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"bench": f"{command}_python", "contender": "python", "messages": n,
                      "concurrency": 1, "seconds": seconds, "msgs_per_s": n / seconds,
                      "cpu_s": cpu}))


if __name__ == "__main__":
    main(*sys.argv[1:])
