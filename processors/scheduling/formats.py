"""Instances from files, from the shipped benchmark set, and from ``schedule.requests`` records.

File formats:

- **our YAML/JSON** (``.yaml``, ``.yml``, ``.json``): see ``InstanceFile`` and docs/scheduling.md;
- **the standard job-shop text format** (OR-Library, JSPLIB): ``n m`` then one line per job of
  ``machine duration`` pairs, machines numbered from 0; ``#`` starts a comment;
- **Taillard's format**: ``n m`` then ``n`` lines of durations and ``n`` lines of machines numbered
  from 1 (the published ta01-ta80 files). Told apart from the standard format by its line count.

Machines of text instances are called ``M0``, ``M1``, ...; jobs ``J0``, ``J1``, ...

>>> inst = parse_jobshop("2 2\\n0 3 1 2\\n1 4 0 1\\n", "t")
>>> [(op.key, dict(op.durations)) for op in inst.operations]
[('J0/0', {'M0': 3.0}), ('J0/1', {'M1': 2.0}), ('J1/0', {'M1': 4.0}), ('J1/1', {'M0': 1.0})]
>>> builtin_instance("ft06").size, builtin_optimum("ft06")
('6x6', 55.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from processors.scheduling.model import Instance, InstanceError, Job, Objective, Operation
from twin.errors import ConfigError, validated

__all__ = [
    "builtin_instance",
    "builtin_names",
    "builtin_optimum",
    "from_request",
    "load_instance",
    "parse_jobshop",
]

SOURCE_NOTE = (
    "ft06, ft10, ft20 (Fisher & Thompson), la01-la40 (Lawrence) and ta01-ta10 (Taillard), as published "
    "in JSPLIB (github.com/tamy0612/JSPLIB), originally from OR-Library "
    "(people.brunel.ac.uk/~mastjjb/jeb/info.html)"
)


def parse_jobshop(text: str, name: str) -> Instance:
    """A job-shop instance in the standard or Taillard text format (see the module docstring)."""
    rows = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            rows.append(line.split())
    try:
        numbers = [[int(x) for x in row] for row in rows]
    except ValueError as exc:
        raise InstanceError(f"{name}: job-shop text holds integers only ({exc})") from None
    if not numbers or len(numbers[0]) != 2:
        raise InstanceError(f"{name}: the first line must be '<jobs> <machines>'")
    n, m = numbers[0]
    body = numbers[1:]
    routes: dict[str, list[dict[str, float]]] = {}
    if len(body) == n and all(len(r) == 2 * m for r in body):
        for j, row in enumerate(body):
            routes[f"J{j}"] = [{f"M{row[2 * k]}": float(row[2 * k + 1])} for k in range(m)]
    elif len(body) == 2 * n and all(len(r) == m for r in body):
        times, machines = body[:n], body[n:]
        for j in range(n):
            routes[f"J{j}"] = [{f"M{machines[j][k] - 1}": float(times[j][k])} for k in range(m)]
    else:
        raise InstanceError(
            f"{name}: expected {n} lines of {2 * m} numbers (standard format) or {2 * n} lines of {m} "
            f"(Taillard's), got {len(body)} lines"
        )
    used = sorted({k for r in routes.values() for step in r for k in step}, key=lambda s: int(s[1:]))
    if len(used) > m or any(not 0 <= int(k[1:]) < m for k in used):
        raise InstanceError(f"{name}: machine numbers must be 0..{m - 1} ({'1..' + str(m)} in Taillard's)")
    return Instance.build(name, routes, machines=tuple(f"M{i}" for i in range(m)))


OWN_INSTANCES = ("pm3x3", "pm4x3", "js3x2", "shop8")
"""Our own small instances (processors/scheduling/instances/*.yaml): parallel machines for QAOA, and
a flexible shop with families, setups and due dates."""


def builtin_names() -> list[str]:
    return [*OWN_INSTANCES, *sorted(_index())]


def builtin_instance(name: str) -> Instance:
    """A shipped benchmark instance (``ft06``, ``la01`` ... ``la40``, ``ta01`` ... ``ta10``)."""
    own = resources.files("processors.scheduling") / "instances" / f"{name}.yaml"
    if own.is_file():
        with resources.as_file(own) as path:
            return load_instance(path)
    if name not in _index():
        raise InstanceError(
            f"unknown instance {name!r}; shipped: {', '.join(OWN_INSTANCES)}, "
            "ft06, ft10, ft20, la01-la40, ta01-ta10"
        )
    text = (resources.files("processors.scheduling") / "instances" / f"{name}.txt").read_text()
    return parse_jobshop(text, name)


def builtin_optimum(name: str) -> float | None:
    """The published optimum makespan of a shipped instance (None where only bounds are known)."""
    entry = _index().get(name) or {}
    value = entry.get("optimum")
    return None if value is None else float(value)


def builtin_bounds(name: str) -> tuple[float, float] | None:
    entry = _index().get(name) or {}
    if entry.get("optimum") is not None:
        return float(entry["optimum"]), float(entry["optimum"])
    if "lower" in entry:
        return float(entry["lower"]), float(entry["upper"])
    return None


@cache
def _index() -> dict[str, dict[str, Any]]:
    data = (resources.files("processors.scheduling") / "instances" / "index.json").read_text()
    out: dict[str, dict[str, Any]] = json.loads(data)
    return out


# -- our file format ---------------------------------------------------------------------------------

Seconds = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OperationEntry(_Model):
    id: str | None = None
    machines: dict[str, Seconds] = Field(min_length=1)
    """Eligible machine -> processing seconds."""
    after: tuple[str, ...] = ()
    """Operations (``job/op``) of any job that must end first."""


class JobEntry(_Model):
    id: str
    operations: tuple[OperationEntry, ...] = Field(min_length=1)
    due: Seconds | None = None
    weight: Seconds = 1.0
    release: Seconds = 0.0
    family: str | None = None
    priority: int = 0


class InstanceFile(_Model):
    """An instance file: jobs of operations, machines' availability, family setups, objective."""

    name: str | None = None
    objective: Objective = Objective.MAKESPAN
    machines: tuple[str, ...] | None = None
    available_from: dict[str, Seconds] = Field(default_factory=dict)
    initial_family: dict[str, str] = Field(default_factory=dict)
    setups: dict[str, dict[str, Seconds]] = Field(default_factory=dict)
    """From family -> to family -> seconds."""
    jobs: tuple[JobEntry, ...] = Field(min_length=1)


def load_instance(path: Path) -> Instance:
    """An instance from our YAML/JSON format or a job-shop text file (by suffix; text otherwise)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        return parse_jobshop(text, path.stem)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML/JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an instance is a mapping with a 'jobs' list")
    spec = validated(InstanceFile, data, str(path), "scheduling instance")
    return from_file_spec(spec, spec.name or path.stem)


def from_file_spec(spec: InstanceFile, name: str) -> Instance:
    jobs = []
    for j in spec.jobs:
        ops = tuple(
            Operation(j.id, o.id or str(i), i, dict(o.machines), _qualify(j.id, o.after))
            for i, o in enumerate(j.operations)
        )
        jobs.append(Job(j.id, ops, j.due, j.weight, j.release, j.family, j.priority))
    # Machines in order of first appearance along the routes: charts then read in flow order.
    machines = spec.machines or tuple(
        dict.fromkeys(m for j in jobs for o in j.operations for m in o.durations)
    )
    setups = {(a, b): s for a, row in spec.setups.items() for b, s in row.items()}
    return Instance(
        name,
        tuple(jobs),
        tuple(machines),
        dict(spec.available_from),
        setups,
        dict(spec.initial_family),
        spec.objective,
    )


def _qualify(job_id: str, after: tuple[str, ...]) -> tuple[str, ...]:
    # 'cut' means an operation of the same job; 'j2/weld' one of another job.
    return tuple(a if "/" in a else f"{job_id}/{a}" for a in after)


# -- schedule.requests ------------------------------------------------------------------------------

UNKNOWN_REPAIR_S = 600.0
"""When a request's down machine has no expected repair time: assume it is back after this long."""


def from_request(record: Mapping[str, Any], unknown_repair_s: float = UNKNOWN_REPAIR_S) -> Instance:
    """The instance a ``schedule.requests`` record (plain wire form) asks to solve.

    Times become seconds from the request's ``event_time``. A job with ``operations`` is a chain of
    them; a job without is one operation that any machine of its ``processing_time_s`` can do. A
    machine that is down with no expected repair time (no repair of it or its line seen yet) is
    planned back after ``unknown_repair_s``: a planner's working assumption, which the next request
    (the machine back up, or down again) corrects.
    """
    origin = int(record["event_time"])
    name = f"request {record.get('request_id', '?')}"
    machines: list[str] = []
    available: dict[str, float] = {}
    initial: dict[str, str] = {}
    for m in record.get("machines") or []:
        mid = str(m["machine_id"])
        if mid in machines:
            raise InstanceError(f"{name}: machine {mid!r} listed twice")
        machines.append(mid)
        if m.get("family"):
            initial[mid] = str(m["family"])
        if not m.get("available", True):
            if m.get("available_from") is None:
                available[mid] = unknown_repair_s
            else:
                available[mid] = max(0.0, (int(m["available_from"]) - origin) / 1000)
    jobs = []
    for j in record.get("jobs") or []:
        jid = str(j["job_id"])
        entries = j.get("operations") or [
            {"operation_id": "0", "processing_time_s": j.get("processing_time_s") or {}, "after": []}
        ]
        ops = []
        for i, o in enumerate(entries):
            durations = {str(k): float(v) for k, v in (o.get("processing_time_s") or {}).items()}
            for mid in durations:
                if mid not in machines:
                    raise InstanceError(f"{name}: job {jid!r} names unknown machine {mid!r}")
            op_id = str(o.get("operation_id") or i)
            ops.append(Operation(jid, op_id, i, durations, _qualify(jid, tuple(o.get("after") or ()))))
        due = j.get("due_time")
        jobs.append(
            Job(
                jid,
                tuple(ops),
                due_s=None if due is None else (int(due) - origin) / 1000,
                weight=float(j.get("weight", 1.0)),
                family=j.get("family"),
                priority=int(j.get("priority") or 0),
            )
        )
    setups = {
        (str(s["from_family"]), str(s["to_family"])): float(s["setup_s"]) for s in record.get("setups") or []
    }
    objective = str(record.get("objective") or Objective.MAKESPAN.value)
    try:
        obj = Objective(objective)
    except ValueError:
        raise InstanceError(
            f"{name}: unknown objective {objective!r}; use makespan or weighted_tardiness"
        ) from None
    horizon = record.get("horizon_s")
    return Instance(
        name,
        tuple(jobs),
        tuple(machines),
        available,
        setups,
        initial,
        obj,
        origin,
        None if horizon is None or not math.isfinite(float(horizon)) else float(horizon),
    )
