"""Pickles domain events with Python Melange 7.2.0's own PickleSerializer, for Rust to read.

Prints one JSON object per event: {"content", "manifest", "serializer_id"}, exactly what
Python Melange's publishers put on the wire. Run by tests/it/pickle.rs with
$MELANGE_TEST_PYTHON (see scripts/test).
"""

import datetime
import json
import os
import sys

import pytz

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from melange.serializers.pickle import PickleSerializer  # noqa: E402

from pickle_events import Line, OrderCancelled, OrderCreated  # noqa: E402

serializer = PickleSerializer()
events = [
    OrderCreated(
        order_id=7,
        lines=[Line("sku-1", 2), Line("sku-2", 70000)],
        occurred_on=datetime.datetime(2026, 11, 28, 11, 40, 15, 771213, tzinfo=pytz.utc),
        metadata={"source": "python"},
        correlation_id="c-7",
    ),
    OrderCancelled(
        order_id=8,
        reason="out of stock",
        occurred_on=datetime.datetime(
            2026, 11, 28, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
        ),
    ),
]
for event in events:
    print(
        json.dumps(
            {
                "content": serializer.serialize(event),
                "manifest": serializer.manifest(event),
                "serializer_id": serializer.identifier(),
            }
        )
    )
