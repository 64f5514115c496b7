"""``AnomalyProcessor``: per-machine online anomaly detection over telemetry records.

>>> p = AnomalyProcessor(AnomalyConfig(warmup_s=10, warmup_events=10))
>>> rec = lambda i, v: {"event_id": f"id-{i}", "event_time": i * 1000, "line_id": "l", "machine_id": "m",
...                     "channels": [{"name": "t", "value": v, "unit": "degC"}]}
>>> sum(len(p.process_one(rec(i, 20.0 + 0.1 * (i % 3)))) for i in range(200))
0
>>> sorted({e.record["detector"] for i in range(200, 210) for e in p.process_one(rec(i, 90.0))})
['level-rise', 'multivariate-regime']
"""

from __future__ import annotations

import pickle
from typing import Any

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.machine import FORMAT_VERSION, MachineModel
from processors.base import Emit, Record
from twin.errors import ConfigError

TOPIC = "twin.anomalies"


class AnomalyProcessor:
    """Learns and scores telemetry per machine; emits ``Anomaly`` records to ``twin.anomalies``.

    Pure: no Kafka, no I/O, no wall clock. Each machine's state is independent, so a pipeline can
    partition by ``machine_id`` and snapshot/restore machines one by one.
    """

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()
        self._models: dict[str, MachineModel] = {}

    def _model(self, machine_id: str) -> MachineModel:
        model = self._models.get(machine_id)
        if model is None:
            model = self._models[machine_id] = MachineModel(self.config, machine_id)
        return model

    def process_one(self, telemetry: Record) -> list[Emit]:
        """Learn from and score one telemetry record (plain form)."""
        machine_id = str(telemetry["machine_id"])
        records = self._model(machine_id).process(telemetry)
        return [Emit(TOPIC, machine_id, r) for r in records]

    def observe_state(self, record: Record) -> None:
        """The machine's operating state changed (a ``machine_state`` record in plain form: event_time,
        machine_id, state, previous, reason). Later telemetry of that machine is learned and scored
        against what is normal in that state. Without state events a machine has one state."""
        self._model(str(record["machine_id"])).observe_state(record)

    def alarming(self, machine_id: str) -> list[str]:
        """Detectors with an open anomaly episode on ``machine_id`` (empty when all is normal)."""
        model = self._models.get(machine_id)
        return [] if model is None else model.alarming

    def machines(self) -> list[str]:
        return sorted(self._models)

    def snapshot(self, machine_id: str) -> bytes:
        """The machine's full detector state (pickle with a format version and the config hash)."""
        model = self._models.get(machine_id)
        if model is None:
            msg = f"no anomaly state for machine {machine_id!r}"
            raise KeyError(msg)
        payload: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "config": self.config.digest(),
            "model": model,
        }
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, machine_id: str, data: bytes) -> None:
        """Replace the machine's state with a ``snapshot``; refuses another format or config."""
        payload = pickle.loads(data)  # noqa: S301 - our own snapshots from our own state store
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            msg = f"anomaly snapshot format {found!r} is not {FORMAT_VERSION}; relearn instead"
            raise ConfigError(msg)
        if payload.get("config") != self.config.digest():
            msg = "anomaly snapshot was taken with other detector settings; relearn instead"
            raise ConfigError(msg)
        model = payload["model"]
        if not isinstance(model, MachineModel) or model.machine_id != machine_id:
            msg = f"anomaly snapshot is not the state of machine {machine_id!r}"
            raise ConfigError(msg)
        model.config = self.config
        self._models[machine_id] = model
