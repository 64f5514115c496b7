"""The re-planning service: answer every ``schedule.requests`` record with one ``schedule.plans``
record, keeping the request's correlation id.

For each request, in offset order:

1. decode it; an undecodable record goes to ``schedule.requests.dlq`` with the decoder's reason;
2. build the instance (``formats.from_request``; a machine down with no expected repair time is
   planned back after ``TWIN_SCHEDULER__UNKNOWN_REPAIR_S``); an invalid one (unknown machine,
   negative duration, a cycle in the precedences) goes to the DLQ with reason ``invalid-request``
   and the message saying what is wrong;
3. skip it if it was answered before (the plan id is derived from the request id, and the service
   reads back the plans topic when it starts), so a replayed or duplicated request never gives a
   second plan;
4. run the configured solvers within the deadline (``processors.scheduling.decide``) and publish the
   chosen plan with the comparison of all of them; when no solver has a plan (all failed, timed out
   or proved it infeasible) the request goes to the DLQ with reason ``no-plan`` and each solver's
   outcome;
5. commit the request's offset only once the plan or the dead letter is acknowledged by the broker.

Solvers are seeded (``TWIN_SCHEDULER__SEED``): a request replayed after a crash gets the same plan
id; its content is the same too unless a solver hit its time limit (CP-SAT's search then depends on
the machine's speed), which the plan's comparison shows as FEASIBLE with a gap.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

from processors.base import plain
from processors.scheduling.base import solver_names
from processors.scheduling.decide import Decision, DecisionConfig, decide, plan_id, plan_record
from processors.scheduling.formats import from_request
from processors.scheduling.model import InstanceError
from schemas import Codecs
from twin.clients import kafka_consumer, kafka_producer, produce_blocking, schema_registry
from twin.dlq import ERROR_REASON, DeadLetterQueue, dead_letter_headers
from twin.errors import DecodeError, DeliveryFailedError, RegistryUnavailableError, one_line
from twin.settings import Settings
from twin.topics import SCHEDULE_PLANS, SCHEDULE_REQUESTS, dlq_name

if TYPE_CHECKING:
    from confluent_kafka import Message

log = logging.getLogger(__name__)

SOURCE = "scheduler"

REQUESTS = Counter("twin_scheduler_requests_total", "Schedule requests handled", ["outcome"])
PLANS = Counter("twin_scheduler_plans_total", "Plans published, by the solver chosen", ["solver"])
SOLVE_SECONDS = Histogram(
    "twin_scheduler_solve_seconds",
    "Wall time of one solver on one request",
    ["solver"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
DECISION_SECONDS = Histogram(
    "twin_scheduler_decision_seconds",
    "Request consumed -> plan acknowledged by the broker",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
)
GAP = Gauge(
    "twin_scheduler_gap_ratio", "Relative gap of each solver's last plan to the best bound", ["solver"]
)
OUTCOMES = Counter("twin_scheduler_solver_outcomes_total", "Solver outcomes", ["solver", "status"])


@dataclass
class ServeStats:
    consumed: int = 0
    planned: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    """The last plan published (plain record), for the CLI's summary."""


def config_from(settings: Settings) -> DecisionConfig:
    cfg = settings.scheduler
    return DecisionConfig(
        solvers=tuple(cfg.solvers),
        deadline_s=cfg.deadline_s,
        choose=cfg.choose,
        seed=cfg.seed,
        options={"qaoa": cfg.qaoa_options(), "sa": {"max_qubits": cfg.qaoa_max_qubits}},
        evaluations=cfg.evaluations,
    )


class SchedulerService:
    """Consumes ``schedule.requests`` (with the scheduler's topic prefix) until stopped."""

    def __init__(
        self,
        settings: Settings,
        config: DecisionConfig | None = None,
        *,
        group_id: str | None = None,
        on_plan: Callable[[dict[str, Any], Decision], None] | None = None,
    ) -> None:
        cfg = settings.scheduler
        self.settings = settings
        self.config = config or config_from(settings)
        self.prefix = cfg.topic_prefix
        self.group_id = group_id or cfg.group_id
        self.requests_topic = self.prefix + SCHEDULE_REQUESTS
        self.plans_topic = self.prefix + SCHEDULE_PLANS
        self.stats = ServeStats()
        self.on_plan = on_plan
        self._registry = registry = schema_registry(settings)
        self._read = Codecs(registry, prefix=self.prefix, register=False, logical_types=False)
        self._write = Codecs(registry, prefix=self.prefix, logical_types=False)
        self._producer = kafka_producer(settings, **{"linger.ms": 0})
        self._dlq = DeadLetterQueue(self._producer)
        self.answered: set[str] = set()
        """Plan ids already on the plans topic (read back at start, then each one published)."""
        # Load every solver (qiskit, OR-Tools, dwave: seconds of imports) now, not on the first request.
        solver_names()

    def load_answered(self, timeout_s: float = 30.0) -> int:
        """Read the plans topic from the start to its end, remembering every plan id."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        consumer = kafka_consumer(self.settings, f"{self.group_id}-readback", **{"enable.auto.commit": False})
        try:
            meta = consumer.list_topics(self.plans_topic, timeout=10)
            topic = meta.topics.get(self.plans_topic)
            if topic is None or topic.error is not None:
                return 0
            ends: dict[int, int] = {}
            for p in topic.partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(self.plans_topic, p), timeout=10)
                if high > 0:
                    ends[p] = high
            if not ends:
                return 0
            consumer.assign([TopicPartition(self.plans_topic, p, OFFSET_BEGINNING) for p in ends])
            deadline = time.monotonic() + timeout_s
            codec = self._read(self.plans_topic)
            while ends and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error() is not None:
                    continue
                part = msg.partition() or 0
                with contextlib.suppress(DecodeError):  # a plan we cannot read is not ours to skip
                    self.answered.add(str(codec.decode(msg.value())["plan_id"]))
                if (msg.offset() or 0) + 1 >= ends.get(part, 0):
                    ends.pop(part, None)
            return len(self.answered)
        finally:
            consumer.close()

    def run(self, stop: threading.Event, *, max_requests: int | None = None) -> ServeStats:
        self.load_answered()
        consumer = kafka_consumer(
            self.settings,
            self.group_id,
            **{"enable.auto.commit": False, "auto.offset.reset": "earliest"},
        )
        consumer.subscribe([self.requests_topic])
        try:
            while not stop.is_set():
                if max_requests is not None and self.stats.consumed >= max_requests:
                    break
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error() is not None:
                    log.warning("consumer: %s", msg.error())
                    continue
                self.handle(msg)
                consumer.commit(message=msg, asynchronous=False)
        finally:
            consumer.close()
            self.close()
        return self.stats

    def close(self) -> None:
        self._producer.flush(30)
        self._registry.close()

    def handle(self, msg: Message) -> None:
        """Answer one request message (see the module docstring); returns when it is durable."""
        began = time.perf_counter()
        self.stats.consumed += 1
        try:
            request = plain(self._read(msg.topic() or self.requests_topic).decode(msg.value()))
        except RegistryUnavailableError:
            raise
        except DecodeError as exc:
            self._dead_letter(msg, exc, exc.reason)
            return
        pid = plan_id(str(request["request_id"]))
        if pid in self.answered:
            self.stats.duplicates += 1
            REQUESTS.labels("duplicate").inc()
            log.info("request %s was answered before (plan %s): skipped", request["request_id"], pid)
            return
        try:
            instance = from_request(request, self.settings.scheduler.unknown_repair_s)
        except InstanceError as exc:
            self._dead_letter(msg, exc, "invalid-request")
            return
        decision = decide(instance, self.config)
        for r in decision.results:
            SOLVE_SECONDS.labels(r.solver).observe(r.wall_s)
            OUTCOMES.labels(r.solver, r.status.value).inc()
            gap = r.gap_to(decision.bound)
            if gap is not None:
                GAP.labels(r.solver).set(gap)
        if decision.chosen is None:
            summary = "; ".join(
                f"{r.solver} {r.status.value}{': ' + r.note if r.note else ''}" for r in decision.results
            )
            self._dead_letter(msg, RuntimeError(f"no solver produced a plan ({summary})"), "no-plan")
            return
        record = plan_record(request, instance, decision, self.config.choose, SOURCE)
        self._publish(record)
        self.answered.add(pid)
        self.stats.planned += 1
        self.stats.last = record
        PLANS.labels(record["solver"]).inc()
        REQUESTS.labels("planned").inc()
        DECISION_SECONDS.observe(time.perf_counter() - began)
        if self.on_plan is not None:
            self.on_plan(record, decision)

    def _publish(self, record: dict[str, Any]) -> None:
        value = self._write(self.plans_topic).encode(record)
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        produce_blocking(
            self._producer, self.plans_topic, value, str(record["line_id"]), on_delivery=delivered
        )
        left = self._producer.flush(30)
        if left or errors:
            raise DeliveryFailedError(f"plan {record['plan_id']} not acknowledged: {errors or 'timeout'}")

    def _dead_letter(self, msg: Message, error: BaseException, reason: str) -> None:
        headers = dead_letter_headers(
            msg.topic() or self.requests_topic, msg.partition() or 0, msg.offset() or 0, error
        )
        headers = [(k, reason.encode()) if k == ERROR_REASON else (k, v) for k, v in headers]
        self._dlq.send_raw(msg.topic() or self.requests_topic, msg.key(), msg.value(), headers)
        left = self._producer.flush(30)
        if left:
            raise DeliveryFailedError(f"dead letter to {dlq_name(self.requests_topic)} not acknowledged")
        self.stats.dead_lettered += 1
        REQUESTS.labels(reason).inc()
        log.warning("request dead-lettered (%s): %s", reason, one_line(error))
