"""Steps on the XR gateway: start ``twin gateway --dev``, show what it serves, keep serving."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from typing import Any

from cli.demo.children import Child
from cli.demo.run import DemoRun, started
from cli.infra import console
from twin.errors import InfraError, one_line
from twin.topics import TWIN_STATE

_OPERATOR_URL = re.compile(r"WebXR view \(operator\): (http://\S+)/#token=(\S+)")


@dataclass
class DemoGateway:
    child: Child
    base: str  # http://host:port
    token: str  # a dev operator token

    @property
    def url(self) -> str:
        return f"{self.base}/#token={self.token}"

    def get(self, path: str) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.get(f"{self.base}{path}", headers=headers, timeout=10).json()


def start_gateway(run: DemoRun, limit_s: float = 90) -> None:
    """``twin gateway --dev`` reading history from Cassandra, on the chosen port or a free one."""
    port = _port(run, run.options.gateway_port)
    args = ["gateway", "--dev", "--port", str(port), "--history", "cassandra", "--no-create-topics",
            "--log-level", "WARNING"]  # fmt: skip
    # A fresh log: the operator URL is read back from it.
    child = run.children.start("twin gateway", args, "demo-gateway.log", fresh_log=True)
    gateway = run.gateway = _ready(child, limit_s)
    console.print(f"twin gateway --dev (pid {child.pid}); open the live view while the line runs:")
    console.print(f"  {gateway.url}", soft_wrap=True, highlight=False)
    console.print(f"  operator token: {gateway.token}", soft_wrap=True, highlight=False)


def _port(run: DemoRun, wanted: int | None) -> int:
    """``wanted``, else the configured port if free, else any free one."""
    from xr_gateway.server import bind

    host = run.settings.gateway.host
    try:
        sock = bind(host, wanted if wanted is not None else run.settings.gateway.port)
    except OSError:
        if wanted is not None:
            raise
        sock = bind(host, 0)
    with sock:
        return int(sock.getsockname()[1])


def _ready(child: Child, limit_s: float) -> DemoGateway:
    """The gateway once it printed its operator URL and answers ``/ready``."""
    import httpx

    last = "it printed no operator URL yet"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        child.check()
        found = _OPERATOR_URL.search(child.log.read_text("utf-8", "replace"))
        if found:
            try:
                status = httpx.get(f"{found.group(1)}/ready", timeout=5).status_code
            except httpx.TransportError as exc:
                last = one_line(exc)
            else:
                if status == 200:
                    return DemoGateway(child, found.group(1), found.group(2))
                last = f"/ready answered {status}"
        time.sleep(0.3)
    msg = f"twin gateway was not ready within {limit_s:g}s ({last}); see {child.log}"
    raise InfraError(msg)


def report_gateway(run: DemoRun) -> None:
    """What the gateway shows now: proof that the live view has this run's twin."""
    gateway = started(run.gateway, "the gateway")
    layout = gateway.get("/api/layout")
    machines = gateway.get("/api/machines")
    alarms = gateway.get("/api/alarms?open_only=true")
    ours = [s["id"] for line in layout["lines"] for s in line["stations"]]
    live = {m["machine_id"]: m["state"] for m in machines}
    states = ", ".join(f"{m} {live[m]}" for m in ours if m in live)
    others = len(set(live) - set(ours))
    more = f"; {others} other machines in {TWIN_STATE} (earlier runs)" if others else ""
    console.print(
        f"gateway: {sum(m in live for m in ours)} of {len(ours)} layout machines live ({states}){more}; "
        f"{len(alarms)} open alarms in history"
    )


def serve_live_view(run: DemoRun) -> None:
    """Keep the gateway serving until Ctrl-C (or until it exits)."""
    gateway = started(run.gateway, "the gateway")
    console.print(f"\nThe gateway keeps serving the live view at {gateway.url}", soft_wrap=True)
    console.print("Ctrl-C stops it.", highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        gateway.child.proc.wait()
