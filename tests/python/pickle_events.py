"""Python classes of the Rust <-> Python pickle interop tests (tests/it/pickle.rs).

Rust writes instances of `pickle_events.OrderCreated`, `pickle_events.OrderCancelled` and
`pickle_events.Line`; pickle_consume.py imports this module to unpickle them, and
pickle_publish.py pickles them for Rust to read.
"""

from simple_cqrs.domain_event import DomainEvent


class Line:
    def __init__(self, sku, quantity):
        self.sku = sku
        self.quantity = quantity


class OrderCreated(DomainEvent):
    def __init__(self, order_id, lines=None, **kwargs):
        super().__init__(**kwargs)
        self.order_id = order_id
        self.lines = lines or []


class OrderCancelled(DomainEvent):
    def __init__(self, order_id, reason, **kwargs):
        super().__init__(**kwargs)
        self.order_id = order_id
        self.reason = reason
