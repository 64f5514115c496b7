"""Cassandra sink throughput: our sink next to a bare driver loop, alternating in one run.

(a) ours: ``CassandraSink.add`` + ``flush`` over decoded telemetry records (SinkRecord in plain wire
    form, as the runner hands them over): mapping, prepared statements, bounded concurrency, error
    classification, the machines_by_line bookkeeping: the sink's whole path to durable rows.
(b) bare: ``execute_concurrent_with_args`` of the same prepared telemetry insert over pre-built
    parameter tuples, same concurrency (``TWIN_CASSANDRA__MAX_IN_FLIGHT``).

Records are the simulator's own telemetry (default line, seed 1), each round writes fresh event ids
into a throwaway keyspace (dropped at the end). We report wall rows/s, client CPU-seconds
(``time.process_time``: the driver's event-loop thread included) and rows per client CPU-second, and
the ratio (a)/(b). Needs the local stack (`twin infra up`).

    .venv/bin/python bench/sink_cassandra.py --rows 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from sink_report import Run, measure, print_table, summary

from producers.records import EventMapper
from sim import Simulator, load_factory
from sinks.base import SinkRecord
from sinks.cassandra import CassandraSink, Migrator
from sinks.cassandra.connection import connect
from sinks.cassandra.rows import STATEMENTS, telemetry
from sinks.cassandra.schema import replication
from twin.settings import Settings
from twin.topics import TELEMETRY

START_MS = 1_764_000_000_000


def sim_telemetry(count: int) -> list[dict[str, Any]]:
    """Simulator telemetry in the sink's input form (timestamps int ms, uuids str)."""
    from processors.base import plain

    simulator = Simulator(load_factory(), seed=1, start_time_ms=START_MS)
    mapper = EventMapper(1)
    out: list[dict[str, Any]] = []
    horizon = START_MS
    while len(out) < count:
        horizon += 3_600_000
        for event in simulator.run(until_ms=horizon):
            o = mapper.map(event)
            if o.topic == TELEMETRY:
                out.append(plain(o.record))
    return out[:count]


def fresh(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same readings with new event ids, so every round writes new rows (not overwrites)."""
    return [{**v, "event_id": str(uuid.uuid4())} for v in values]


def run(settings: Settings, *, rows: int, rounds: int, batch: int | None = None) -> dict[str, Any]:
    """Alternate (a) and (b) ``rounds`` times over ``rows`` readings; medians and the ratio."""
    from cassandra.concurrent import execute_concurrent_with_args

    keyspace = f"bench_{uuid.uuid4().hex[:8]}"
    batch = batch or settings.sinks.batch_max
    concurrency = settings.cassandra.max_in_flight
    cluster, session = connect(settings)
    try:
        Migrator(session, keyspace).migrate(replication_options=replication(1), ttl_s={})
        sink = CassandraSink(settings, keyspace=keyspace)
        sink.setup()
        insert = session.prepare(STATEMENTS["telemetry"].format(ks=keyspace))
        base = sim_telemetry(rows)
        results: dict[str, list[Run]] = {"ours": [], "bare": []}
        for _ in range(rounds):
            ours_in = [SinkRecord(TELEMETRY, 0, i, None, v) for i, v in enumerate(fresh(base))]
            # (b) gets its parameters ready-made: the mapping is part of what (a) pays for.
            bare_in = [telemetry(v)[0][1] for v in fresh(base)]

            def ours(records: list[SinkRecord] = ours_in) -> int:
                written = 0
                for start in range(0, len(records), batch):
                    for r in records[start : start + batch]:
                        sink.add(r)
                    written += sink.flush().written
                return written

            def bare(params: list[tuple[Any, ...]] = bare_in) -> int:
                ok = 0
                for start in range(0, len(params), batch):
                    chunk = params[start : start + batch]
                    res = execute_concurrent_with_args(session, insert, chunk, concurrency=concurrency)
                    ok += sum(1 for success, _ in res if success)
                return ok

            results["ours"].append(measure(ours))
            results["bare"].append(measure(bare))
        sink.close()
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        cluster.shutdown()

    ours_s, bare_s = summary(results["ours"]), summary(results["bare"])
    return {
        "rows": rows,
        "rounds": rounds,
        "batch": batch,
        "concurrency": concurrency,
        "ours": ours_s,
        "bare": bare_s,
        "ratio_wall": ours_s["per_s"] / bare_s["per_s"],
        "ratio_cpu": ours_s["per_cpu_s"] / bare_s["per_cpu_s"] if bare_s["per_cpu_s"] else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch", type=int, default=None, help="records per flush (default: TWIN_SINKS__BATCH_MAX)"
    )
    args = parser.parse_args()
    out = run(Settings(), rows=args.rows, rounds=args.rounds, batch=args.batch)
    print(
        f"{out['rows']:,} telemetry readings per run, {out['rounds']} rounds, "
        f"{out['batch']} per flush, {out['concurrency']} in flight"
    )
    print_table(
        "rows",
        [
            ("(a) CassandraSink add+flush", out["ours"]),
            ("(b) bare execute_concurrent_with_args", out["bare"]),
        ],
    )
    print(f"ratio (a)/(b): wall {out['ratio_wall']:.2f}x, per CPU-second {out['ratio_cpu']:.2f}x")


if __name__ == "__main__":
    main()
