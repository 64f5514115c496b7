"""Run a gateway for the tests in its own process, on a listening socket the test bound.

A separate process, not a thread of the test: test clients and the gateway would otherwise share
one GIL, and a client starved of it looks exactly like the slow client the gateway must drop.

    python -m tests.integration.xr_gateway.serve_gateway <fd> '<GatewaySettings JSON>'
"""

from __future__ import annotations

import json
import socket
import sys

from tests.integration.xr_gateway.gateway_helpers import SECRET
from twin.logs import configure_logging
from twin.settings import Settings
from xr_gateway.app import create_app
from xr_gateway.auth import TokenVerifier
from xr_gateway.server import serve
from xr_gateway.settings import GatewaySettings


def main() -> None:
    fd, options = int(sys.argv[1]), json.loads(sys.argv[2])
    gw = GatewaySettings(**{**options, "jwt_secret": SECRET})
    configure_logging("WARNING")
    sock = socket.socket(fileno=fd)
    serve(create_app(Settings(), gw, TokenVerifier.from_settings(gw)), gw, sock=sock)


if __name__ == "__main__":
    main()
