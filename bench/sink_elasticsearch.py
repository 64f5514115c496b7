"""Elasticsearch sink throughput: our sink next to a bare ``helpers.bulk``, alternating in one run.

(a) ours: ElasticsearchSink.add + flush over pre-decoded records (alarm, anomaly and machine-state
    events in wire form): document building, daily index naming, the current-alarm update, bulk
    chunks, per-item classification
(b) bare: elasticsearch.helpers.bulk of pre-built actions: the same documents, index names, ids,
    versions and chunk size (500 actions), default settings otherwise

Both write to the same indices (each round rewrites the same ids, as a redelivery would). We report
wall docs/s, client CPU-seconds (time.process_time of this process; the server is not counted),
docs per client CPU-second and the ratio (a)/(b). Needs the local Elasticsearch (`twin infra up`).

    .venv/bin/python bench/sink_elasticsearch.py --docs 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from elasticsearch import helpers
from sink_report import Run, measure, print_table, summary

from sinks.base import SinkRecord
from sinks.elasticsearch import ElasticsearchSink, templates
from sinks.elasticsearch.sink import CHUNK_DOCS
from twin.errors import BackpressureError
from twin.settings import Settings
from twin.topics import ALARMS, ANOMALIES, STATE

DAY_MS = 86_400_000


T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z

# One event of each kind as the sink runner hands them over (wire form: epoch ms, uuid strings).
BASE: dict[str, dict[str, Any]] = {
    ALARMS: {
        "source": "processor:alarms",
        "correlation_id": "3f1c2a4e-0000-5000-8000-000000000001",
        "line_id": "line-1",
        "alarm_type": "LowPressure",
        "rule_id": "pressure-low",
        "severity": "MAJOR",
        "start_time": T0,
        "end_time": None,
        "ack_time": None,
        "acked_by": None,
        "clear_time": None,
        "cleared_by": None,
        "value": 41.5,
        "message": "hydraulic pressure low",
        "details": {"signal": "pressure_bar", "threshold": "45"},
    },
    ANOMALIES: {
        "source": "processor:anomaly",
        "correlation_id": "3f1c2a4e-0000-5000-8000-000000000002",
        "line_id": "line-1",
        "score": 3.25,
        "threshold": 2.5,
        "detector": "hst-multivariate",
        "model_version": "hst-1",
        "contributing": [
            {"name": "vibration_rms", "value": 7.1, "unit": "mm/s", "score": 2.0},
            {"name": "temperature", "value": None, "unit": "", "score": 1.25},
        ],
        "observed_event_id": "3f1c2a4e-0000-5000-8000-000000000003",
    },
    STATE: {
        "source": "sim:line-1",
        "correlation_id": "3f1c2a4e-0000-5000-8000-000000000004",
        "line_id": "line-1",
        "previous": "RUNNING",
        "state": "DOWN",
        "reason": "wire feed jam",
    },
}


def records(count: int, start_ms: int) -> list[SinkRecord]:
    """Alarm, anomaly and state events in turn, spread over two days (two daily indices per kind)."""
    topics = list(BASE)
    statuses = ("ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK")
    out: list[SinkRecord] = []
    for i in range(count):
        topic = topics[i % 3]
        value = dict(BASE[topic])
        value["event_id"] = str(uuid.UUID(int=i + 1))
        value["event_time"] = start_ms + i * (2 * DAY_MS // count)
        value["machine_id"] = f"m-{i % 40}"
        if topic == ALARMS:
            value["alarm_id"] = str(uuid.UUID(int=(i // 12) + 1))  # 4 lifecycle events per alarm
            value["status"] = statuses[(i // 3) % 4]
        out.append(SinkRecord(topic, i % 6, i, value["machine_id"].encode(), value))
    return out


def bare_actions(sink: ElasticsearchSink, recs: list[SinkRecord]) -> list[dict[str, Any]]:
    """The same bulk lines the sink sends, as helpers.bulk actions."""
    actions: list[dict[str, Any]] = []
    for r in recs:
        ops = sink._entry(r).ops
        for action, source in zip(ops[::2], ops[1::2], strict=True):
            meta = dict(action["index"])
            actions.append({"_op_type": "index", **meta, "_source": source})
    return actions


def run(settings: Settings, *, docs: int, rounds: int) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    scoped = settings.model_copy(deep=True)
    scoped.elasticsearch.retention_days = 3650
    sink = ElasticsearchSink(scoped, index_prefix=prefix)
    client = sink._client
    sink.setup()
    recs = records(docs, T0)
    actions = bare_actions(sink, recs)

    def ours() -> int:
        for r in recs:
            sink.add(r)
        while True:
            try:
                result = sink.flush()
            except BackpressureError:
                time.sleep(0.2)
                continue
            assert not result.rejected, result.rejected[0].reason
            return len(actions)

    def bare() -> int:
        # A rewrite makes earlier lifecycle states stale in the current-alarms index: a 409 there
        # is the expected no-op for both paths, so it is counted as handled, as the sink does.
        ok, errors = helpers.bulk(client, actions, chunk_size=CHUNK_DOCS, raise_on_error=False)
        assert isinstance(errors, list)
        assert all(next(iter(e.values()))["status"] == 409 for e in errors), errors[:1]
        return int(ok) + len(errors)

    results: dict[str, list[Run]] = {"ours": [], "bare": []}
    try:
        ours()  # warm up: indices created, mappings and JIT-less caches settled
        for _ in range(rounds):
            for name, fn in (("ours", ours), ("bare", bare)):
                results[name].append(measure(fn))
        client.indices.refresh(index=f"{prefix}-*")
        stored = int(client.count(index=f"{prefix}-*")["count"])
    finally:
        for index in client.indices.get_alias(index=f"{prefix}-*").body:
            client.indices.delete(index=index)
        for name in templates(prefix):
            client.indices.delete_index_template(name=name)
        sink.close()

    ours_s, bare_s = summary(results["ours"]), summary(results["bare"])
    return {
        "records": docs,
        "documents": len(actions),
        "rounds": rounds,
        "stored": stored,
        "ours": ours_s,
        "bare": bare_s,
        "ratio_wall": ours_s["per_s"] / bare_s["per_s"],
        "ratio_cpu": ours_s["per_cpu_s"] / bare_s["per_cpu_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=20_000, help="records per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = run(Settings(), docs=args.docs, rounds=args.rounds)
    print(
        f"{out['records']:,} records -> {out['documents']:,} documents per run "
        f"(alarms also update the current-alarms index), {out['rounds']} rounds, chunks of {CHUNK_DOCS}"
    )
    print_table(
        "docs",
        [("(a) ElasticsearchSink add+flush", out["ours"]), ("(b) bare helpers.bulk, pre-built", out["bare"])],
    )
    print(f"\nratio (a)/(b): wall {out['ratio_wall']:.2f}, CPU {out['ratio_cpu']:.2f}")
    print(
        f"documents stored: {out['stored']:,} (expected {out['documents'] - out['records'] // 3 + out['records'] // 12:,})"
    )


if __name__ == "__main__":
    main()
