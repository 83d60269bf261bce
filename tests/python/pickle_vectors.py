"""Writes the pickle vectors of the Rust unit tests (crates/melange-core/src/serializer/pickle/testdata/protocols.txt).

Standard library only. Run: python3 tests/python/pickle_vectors.py > crates/melange-core/src/serializer/pickle/testdata/protocols.txt
One line per protocol 2..5: "<protocol> <hex of pickle.dumps(Event(), protocol)>".
"""
import pickle, datetime, decimal, collections
class Inner:
    def __init__(self, x): self.x = x
class Slotted:
    __slots__ = ("a", "b")
    def __init__(self): self.a = 1; self.b = "two"
class Event:
    def __init__(self):
        self.when = datetime.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
        self.naive = datetime.datetime(1999, 12, 31, 23, 59, 59)
        self.utc = datetime.datetime(2021, 6, 7, 8, 9, 10, tzinfo=datetime.timezone.utc)
        self.day = datetime.date(2020, 2, 29)
        self.span = datetime.timedelta(days=1, seconds=2, microseconds=500000)
        self.tags = {"a"}
        self.frozen = frozenset([3])
        self.raw = b"\x00\xffab"
        self.pair = (1, "x")
        self.items = [Inner(1), Inner(-70000)]
        self.counts = {1: "one", 2: "two"}
        self.ratio = 0.25
        self.big = 2**70
        self.neg = -5
        self.price = decimal.Decimal("12.50")
        self.nothing = None
        self.flag = True
        self.ordered = collections.OrderedDict([("k", 1)])
        self.slotted = Slotted()
        self.text = "héllo" * 60
for proto in (2, 3, 4, 5):
    print(proto, pickle.dumps(Event(), protocol=proto).hex())
