"""REST endpoints (OpenAPI at ``/docs``): health, readiness, machines, recent alarms and KPIs, plans,
Prometheus ``/metrics``, and the dev-mode token endpoint.

``/health``, ``/ready`` and ``/metrics`` are open (probes and scrapers; keep the port internal or put
a proxy in front); everything under ``/api`` needs a viewer or operator token as a Bearer header.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from twin.errors import AuthError, HistoryUnavailableError
from xr_gateway.auth import Principal, Role, is_loopback
from xr_gateway.service import Gateway

_bearer = HTTPBearer(auto_error=False, description="a gateway JWT (viewer or operator)")

ops = APIRouter(tags=["operations"])
api = APIRouter(prefix="/api", tags=["twin"])
dev = APIRouter(prefix="/api/dev", tags=["dev mode"])


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(gateway_of)]


def principal(
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    try:
        return gateway.verifier.verify(credentials.credentials if credentials else None)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


Authorized = Annotated[Principal, Depends(principal)]


@ops.get("/health", summary="Liveness: the process answers")
def health() -> dict[str, str]:
    return {"status": "ok"}


@ops.get("/ready", summary="Readiness: twin.state read to its end and the Kafka feed running")
def ready(gateway: GatewayDep, response: Response) -> dict[str, Any]:
    ok = gateway.ready
    if not ok:
        response.status_code = 503
    feed = gateway.feed
    return {
        "ready": ok,
        "snapshot_loaded": gateway.hub.ready.is_set(),
        "feed_error": str(feed.error) if feed is not None and feed.error is not None else None,
        "machines": len(gateway.hub.states),
        "clients": len(gateway.hub.clients),
        "seq": gateway.hub.seq,
    }


@ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@api.get("/layout", summary="The factory layout the floor is drawn from (lines, stations, buffers)")
def layout(gateway: GatewayDep, _who: Authorized) -> dict[str, Any]:
    return gateway.layout


@api.get("/machines", summary="Every machine's current state (twin.state)")
def machines(gateway: GatewayDep, _who: Authorized, line_id: str | None = None) -> list[dict[str, Any]]:
    records = gateway.hub.records.values()
    return [r for r in records if line_id is None or r.get("line_id") == line_id]


@api.get("/machines/{machine_id}", summary="One machine's current state")
def machine(machine_id: str, gateway: GatewayDep, _who: Authorized) -> dict[str, Any]:
    record = gateway.hub.records.get(machine_id)
    if record is None:
        raise HTTPException(404, f"no state for machine {machine_id!r}")
    return record


@api.get("/alarms", summary="Recent alarm events, newest first")
def alarms(
    gateway: GatewayDep,
    _who: Authorized,
    machine_id: str | None = None,
    line_id: str | None = None,
    open_only: bool = Query(
        False, description="only alarms active now (ACTIVE_UNACK or ACTIVE_ACK), as in the snapshot"
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    try:
        return gateway.history.recent_alarms(
            machine_id=machine_id, line_id=line_id, open_only=open_only, limit=limit
        )
    except HistoryUnavailableError as exc:
        raise HTTPException(503, str(exc)) from exc


@api.get("/kpis", summary="Recent KPI windows, newest first")
def kpis(
    gateway: GatewayDep,
    _who: Authorized,
    line_id: str | None = None,
    scope_id: str | None = Query(None, description="machine_id, or line_id for line-level KPIs"),
    window_size_s: int | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    try:
        return gateway.history.recent_kpis(
            line_id=line_id, scope_id=scope_id, window_size_s=window_size_s, limit=limit
        )
    except HistoryUnavailableError as exc:
        raise HTTPException(503, str(exc)) from exc


@api.get(
    "/reports/{line_id}/periods",
    summary="A line's stored analytics periods (twin spark report), newest first",
)
def report_periods(
    line_id: str,
    gateway: GatewayDep,
    _who: Authorized,
    kind: str = Query("day", pattern="^(day|shift)$"),
    limit: int = Query(31, ge=1, le=366),
) -> list[dict[str, Any]]:
    try:
        return gateway.history.report_periods(line_id=line_id, kind=kind, limit=limit)
    except HistoryUnavailableError as exc:
        raise HTTPException(503, str(exc)) from exc


@api.get("/reports/{line_id}/{report}", summary="One analytics report of a line (default: its latest day)")
def report_rows(
    line_id: str,
    report: str,
    gateway: GatewayDep,
    _who: Authorized,
    period: str | None = Query(None, description="2026-12-08 or 2026-12-08/A; default: the latest complete"),
    kind: str = Query("day", pattern="^(day|shift)$", description="which latest period, without one"),
) -> dict[str, Any]:
    try:
        if period is None:
            latest = gateway.history.report_periods(line_id=line_id, kind=kind, limit=1)
            if not latest:
                raise HTTPException(
                    404, f"no complete {kind} report for line {line_id!r}: run `twin spark report`"
                )
            period = str(latest[0]["period"])
        rows = gateway.history.report(report=report, line_id=line_id, period=period)
    except HistoryUnavailableError as exc:
        raise HTTPException(503, str(exc)) from exc
    if not rows:
        raise HTTPException(404, f"no {report!r} rows for line {line_id!r} and period {period!r}")
    return {"report": report, "line_id": line_id, "period": period, "rows": rows}


@api.get("/plans", summary="The latest schedule plan of each line, with its Gantt rows and solver comparison")
def plans(gateway: GatewayDep, _who: Authorized, line_id: str | None = None) -> list[dict[str, Any]]:
    records = gateway.hub.plan_records
    chosen = [records[line_id]] if line_id is not None and line_id in records else []
    if line_id is None:
        chosen = [records[k] for k in sorted(records)]
    return [plan_view(r) for r in chosen]


@api.get("/plans/{correlation_id}", summary="The plan that answered one cause (alarm, breakdown)")
def plan_by_cause(gateway: GatewayDep, _who: Authorized, correlation_id: str) -> dict[str, Any]:
    record = gateway.hub.plans_by_correlation.get(correlation_id)
    if record is None:
        raise HTTPException(404, f"no plan with correlation id {correlation_id!r} (recent plans only)")
    return plan_view(record)


def plan_view(record: dict[str, Any]) -> dict[str, Any]:
    """A plan record plus ``gantt``: one bar per operation, seconds from the plan's first start."""
    assignments = record.get("assignments") or []
    origin = min((int(a["start_time"]) for a in assignments), default=int(record.get("event_time") or 0))
    gantt = [
        {
            "machine": a["machine_id"],
            "job": a["job_id"],
            "operation": a.get("operation_id") or "",
            "start_s": (int(a["start_time"]) - origin) / 1000,
            "end_s": (int(a["end_time"]) - origin) / 1000,
            "setup_s": float(a.get("setup_s") or 0.0),
        }
        for a in assignments
    ]
    return {**record, "gantt": gantt, "gantt_origin_ms": origin}


@dev.post("/token", summary="Dev mode only: a token for this machine's browser")
def dev_token(
    request: Request,
    gateway: GatewayDep,
    role: Role = Role.VIEWER,
    user: str = Query("dev", max_length=64),
) -> dict[str, Any]:
    """Only for a client on this machine that asked for this gateway by a loopback name, from no page
    or a page this gateway allows: a page elsewhere (DNS rebinding included) gets no token."""
    host = request.client.host if request.client else ""
    if not is_loopback(host):
        raise HTTPException(403, "dev tokens are only handed to loopback clients")
    server = request.scope.get("server")
    port = int(server[1]) if server and server[1] is not None else gateway.gw.port
    scheme = request.url.scheme
    if not _loopback_at(f"{scheme}://{request.headers.get('host', '')}", port):
        raise HTTPException(403, f"dev tokens are only handed out at a loopback Host with port {port}")
    origin = request.headers.get("origin")
    if origin is not None and not (gateway.origin_allowed(origin) or _loopback_at(origin, port)):
        raise HTTPException(403, f"dev tokens are not handed to pages of origin {origin!r}")
    ttl = gateway.gw.dev_token_ttl_s
    return {"token": gateway.verifier.mint(user, role, ttl), "role": role.value, "expires_in": ttl}


def _loopback_at(url: str, port: int) -> bool:
    """Whether ``url`` (an Origin, or scheme://Host) names a loopback host at ``port``."""
    parts = urlsplit(url)
    try:
        url_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return False
    return parts.scheme in _DEFAULT_PORTS and is_loopback(parts.hostname or "") and url_port == port


_DEFAULT_PORTS = {"http": 80, "https": 443}
