"""JWT checks at the handshake, and the dev-mode tokens.

The algorithm is pinned by the settings (never taken from the token header), so ``alg: none`` and
HS/RS confusion are refused; ``exp``, ``aud``, ``iss`` and ``sub`` are required.

>>> v = TokenVerifier.from_secret("s" * 32)
>>> v.verify(v.mint("ada", Role.OPERATOR)).role
<Role.OPERATOR: 'operator'>
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from twin.errors import AuthError, ConfigError
from xr_gateway.settings import GatewaySettings

_HMAC = ("HS256", "HS384", "HS512")
_MIN_SECRET = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 3.2: at least the hash size


class Role(StrEnum):
    VIEWER = "viewer"  # subscribes
    OPERATOR = "operator"  # subscribes, acknowledges and clears alarms


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address; IPv6 with or without brackets) means this machine only.

    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0", "127.0.0.1.evil.example")]
    [True, True, True, False, False]
    """
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Principal:
    user: str
    role: Role
    expires_at: float  # epoch seconds

    @property
    def can_command(self) -> bool:
        return self.role is Role.OPERATOR


class TokenVerifier:
    def __init__(
        self,
        key: str | bytes,
        algorithm: str = "HS256",
        *,
        audience: str = "factory-twin-gateway",
        issuer: str = "factory-twin",
        leeway_s: float = 30.0,
        signing_key: str | bytes | None = None,
    ) -> None:
        if algorithm == "none" or not algorithm:
            msg = "the JWT algorithm 'none' is never allowed"
            raise ConfigError(msg)
        self.key = key
        self.algorithm = algorithm
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        # Only HMAC verifiers can mint (dev mode); an RS/ES verifier holds a public key only.
        self._signing_key = signing_key if signing_key is not None else (key if algorithm in _HMAC else None)

    @classmethod
    def from_secret(cls, secret: str, **kwargs: Any) -> TokenVerifier:
        return cls(secret, "HS256", **kwargs)

    @classmethod
    def from_settings(cls, gw: GatewaySettings) -> TokenVerifier:
        """The verifier the settings describe; ConfigError (one line) when they describe none."""
        common: dict[str, Any] = {
            "audience": gw.jwt_audience,
            "issuer": gw.jwt_issuer,
            "leeway_s": gw.jwt_leeway_s,
        }
        if gw.jwt_algorithm in _HMAC:
            if gw.jwt_secret is None:
                msg = (
                    "the gateway needs TWIN_GATEWAY__JWT_SECRET (or a public key for RS/ES tokens); "
                    "for a local try-out run `twin gateway --dev`"
                )
                raise ConfigError(msg)
            secret = gw.jwt_secret.get_secret_value()
            need = _MIN_SECRET[gw.jwt_algorithm]
            if len(secret.encode()) < need:
                msg = f"TWIN_GATEWAY__JWT_SECRET is shorter than {need} bytes for {gw.jwt_algorithm}"
                raise ConfigError(msg)
            return cls(secret, gw.jwt_algorithm, **common)
        if gw.jwt_public_key_file is None or not gw.jwt_public_key_file.is_file():
            msg = f"{gw.jwt_algorithm} tokens need TWIN_GATEWAY__JWT_PUBLIC_KEY_FILE (a PEM public key file)"
            raise ConfigError(msg)
        return cls(gw.jwt_public_key_file.read_text(), gw.jwt_algorithm, **common)

    @classmethod
    def for_dev(cls, gw: GatewaySettings) -> TokenVerifier:
        """A fresh random HMAC secret: tokens die with the process."""
        return cls(
            secrets.token_urlsafe(48),
            "HS256",
            audience=gw.jwt_audience,
            issuer=gw.jwt_issuer,
            leeway_s=gw.jwt_leeway_s,
        )

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("missing token")
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token has the wrong audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token has the wrong issuer") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AuthError(f"token algorithm not allowed (only {self.algorithm})") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        try:
            role = Role(str(claims.get("role", "")))
        except ValueError as exc:
            raise AuthError("token has no valid 'role' claim (viewer or operator)") from exc
        return Principal(user=str(claims["sub"]), role=role, expires_at=float(claims["exp"]))

    def mint(self, user: str, role: Role, ttl_s: float = 3600.0) -> str:
        if self._signing_key is None:
            msg = f"this verifier ({self.algorithm}, public key only) cannot sign tokens"
            raise ConfigError(msg)
        now = int(time.time())
        claims = {
            "sub": user,
            "role": role.value,
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "exp": now + int(ttl_s),
        }
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
