"""Check one build of twin._avroenc under the interpreter running this script (``make native-matrix``).

    python3.12 native/roundtrip.py --native-build build/native/py3.12

Loads ``BUILD/twin/_avroenc*.so`` through ``twin.codec`` (the same plan builder the product uses),
then, for every schema in ``schemas/avro/`` and one schema using every Avro type, encodes seeded
random records (logical types given both as Python objects and in wire form) and requires the
bytes fastavro writes, a record fastavro reads back whole, clear errors for invalid records, and
encoders that can be made and dropped many times. Needs only the standard library and the pinned
fastavro, so a throwaway virtual environment per interpreter is enough.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import importlib
import io
import json
import random
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORDS_PER_SCHEMA = 400
MAX_DEPTH = 3  # recursive schemas: deeper than this, unions pick null and arrays stay empty

EVERYTHING: dict[str, Any] = {
    "type": "record",
    "name": "check.Everything",
    "fields": [
        {"name": "n", "type": "null"},
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "by", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "fx", "type": {"type": "fixed", "name": "check.Four", "size": 4}},
        {"name": "e", "type": {"type": "enum", "name": "check.Colour", "symbols": ["RED", "GREEN", "BLUE"]}},
        {
            "name": "arr",
            "type": {"type": "array", "items": {"type": "map", "values": ["null", "long", "string"]}},
        },
        {"name": "m", "type": {"type": "map", "values": "check.Colour"}},
        {"name": "u", "type": ["null", "int", "string", {"type": "fixed", "name": "check.Three", "size": 3}]},
        {"name": "fd", "type": ["float", "double"]},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "opt_ts", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "note", "type": "string", "default": "none"},
        {
            "name": "next",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "check.Node",
                    "fields": [
                        {"name": "x", "type": "long"},
                        {"name": "next", "type": ["null", "check.Node"]},
                    ],
                },
            ],
        },
    ],
}


class Generator:
    """Valid values for a fastavro-parsed schema, as a user would build them."""

    def __init__(self, seed: int, parsed: dict[str, Any]) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test data, reproducible by seed
        # every named type, wherever it is defined (a branch not taken may define one used later)
        self.named: dict[str, Any] = dict(parsed.get("__named_schemas", {}))

    def value(self, schema: Any, depth: int = 0) -> Any:  # noqa: PLR0911, PLR0912 - one case per Avro type
        rng = self.rng
        if isinstance(schema, str):
            return self.value(self.named[schema], depth) if schema in self.named else self.primitive(schema)
        if isinstance(schema, list):
            if depth > MAX_DEPTH and "null" in schema:
                return None
            return self.value(rng.choice(schema), depth)
        kind, logical = schema["type"], schema.get("logicalType")
        if logical == "uuid":
            value = uuid.UUID(int=rng.getrandbits(128), version=4)
            return value if rng.random() < 0.5 else str(value)
        if logical == "timestamp-millis":
            millis = rng.randrange(0, 253_402_300_799_999)
            moment = dt.datetime.fromtimestamp(millis // 1000, tz=dt.UTC)
            return millis if rng.random() < 0.5 else moment.replace(microsecond=millis % 1000 * 1000)
        if logical == "date":
            return dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(-5000, 5000))
        if logical == "decimal":
            return decimal.Decimal(rng.randrange(-(10**8), 10**8)).scaleb(-schema["scale"])
        if isinstance(kind, (dict, list)):
            return self.value(kind, depth)
        if kind == "record":
            return {f["name"]: self.value(f["type"], depth + 1) for f in schema["fields"]}
        if kind == "enum":
            return rng.choice(schema["symbols"])
        if kind == "fixed":
            return rng.randbytes(schema["size"])
        if kind == "array":
            size = 0 if depth > MAX_DEPTH else rng.randrange(5)
            return [self.value(schema["items"], depth + 1) for _ in range(size)]
        if kind == "map":
            size = 0 if depth > MAX_DEPTH else rng.randrange(4)
            return {self.text(): self.value(schema["values"], depth + 1) for _ in range(size)}
        return self.primitive(kind)

    def text(self) -> str:
        alphabet = "abcxyz é€😀\u0000"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randrange(12)))

    def primitive(self, kind: str) -> Any:
        rng = self.rng
        makers: dict[str, Callable[[], Any]] = {
            "null": lambda: None,
            "boolean": lambda: rng.random() < 0.5,
            "int": lambda: rng.randrange(-(2**31), 2**31),
            "long": lambda: rng.randrange(-(2**63), 2**63),
            "float": lambda: rng.choice([0.0, -1.5, 3.25, 1e30, rng.uniform(-1e6, 1e6)]),
            "double": lambda: rng.choice([0.0, -1e300, 5e-324, rng.uniform(-1e9, 1e9)]),
            "string": self.text,
            "bytes": lambda: rng.randbytes(rng.randrange(20)),
        }
        return makers[kind]()


def load_codec(build: Path) -> Any:
    sys.path.insert(0, str(ROOT))
    twin = importlib.import_module("twin")
    twin.__path__.insert(0, str(build / "twin"))
    codec = importlib.import_module("twin.codec")
    loaded = Path(sys.modules["twin._avroenc"].__file__ or "").resolve() if codec.NATIVE_AVAILABLE else None
    if loaded is None or loaded.parent != (build / "twin").resolve():
        msg = f"twin.codec does not use the build in {build}: {codec.NATIVE_UNAVAILABLE or loaded}"
        raise SystemExit(msg)
    print(f"python {sys.version.split()[0]}: {loaded}")
    return codec


def check_schema(codec: Any, fastavro: Any, name: str, schema: Any, seed: int) -> int:
    parsed = fastavro.parse_schema(schema)
    encoder = codec.native_encoder(parsed, b"\x00\x00\x00\x00\x01")
    if encoder is None:
        raise SystemExit(f"{name}: the schema did not compile")
    generator = Generator(seed, parsed)
    for index in range(RECORDS_PER_SCHEMA):
        record = generator.value(parsed)
        ours = encoder.encode(record)
        buf = io.BytesIO()
        buf.write(b"\x00\x00\x00\x00\x01")
        fastavro.schemaless_writer(buf, parsed, record)
        if ours != buf.getvalue():
            raise SystemExit(f"{name}: record {index} encodes differently from fastavro: {record!r}")
        body = io.BytesIO(ours[5:])
        fastavro.schemaless_reader(body, parsed, None)
        if body.tell() != len(ours) - 5:
            raise SystemExit(f"{name}: record {index} has trailing bytes")
    for field in parsed["fields"]:  # an object() fits no Avro type
        try:
            encoder.encode({**generator.value(parsed), field["name"]: object()})
        except TypeError as exc:
            if field["name"] not in str(exc):
                raise SystemExit(
                    f"{name}: the error does not name the field {field['name']!r}: {exc}"
                ) from exc
        else:
            raise SystemExit(f"{name}: an object() in {field['name']!r} was accepted")
    for _ in range(200):  # construction and teardown, for the allocator to trip over
        codec.native_encoder(parsed, b"")
    return RECORDS_PER_SCHEMA


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--native-build", type=Path, required=True)
    args = parser.parse_args()
    codec = load_codec(args.native_build.resolve())
    fastavro = importlib.import_module("fastavro")
    schemas = {"everything": EVERYTHING}
    for path in sorted((ROOT / "schemas" / "avro").glob("*.avsc")):
        schemas[path.stem] = json.loads(path.read_text())
    total = sum(
        check_schema(codec, fastavro, name, s, seed) for seed, (name, s) in enumerate(schemas.items())
    )
    version = sys.version.split()[0]
    print(f"python {version}: {total:,} records in {len(schemas)} schemas encode as fastavro does")
    return 0


if __name__ == "__main__":
    sys.exit(main())
