"""Handshake tokens: pinned algorithm, required claims, roles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from twin.errors import AuthError, ConfigError
from xr_gateway.auth import Role, TokenVerifier
from xr_gateway.settings import GatewaySettings

SECRET = "x" * 40


def verifier() -> TokenVerifier:
    return TokenVerifier.from_secret(SECRET, audience="aud-1", issuer="iss-1", leeway_s=0)


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "ada",
        "role": "operator",
        "aud": "aud-1",
        "iss": "iss-1",
        "exp": now + 60,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, object], key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def hs256_with_key(payload: dict[str, object], key: bytes) -> str:
    """An HS256 JWT with ``key`` as the HMAC secret, built by hand: PyJWT refuses to sign with a PEM."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(payload).encode())
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


def test_a_hand_built_hs256_token_is_valid_for_its_key() -> None:
    """The forgery helper below is right: with a plain secret, the HS256 verifier accepts its token."""
    assert verifier().verify(hs256_with_key(claims(), SECRET.encode())).user == "ada"


def test_a_valid_token_gives_user_and_role() -> None:
    who = verifier().verify(sign(claims()))
    assert (who.user, who.role, who.can_command) == ("ada", Role.OPERATOR, True)


def test_a_viewer_cannot_command() -> None:
    assert not verifier().verify(sign(claims(role="viewer"))).can_command


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -10}, "expired"),  # seconds from now
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "evil"}, "issuer"),
        ({"exp": None}, "'exp'"),
        ({"sub": None}, "'sub'"),
        ({"role": "admin"}, "role"),
    ],
)
def test_bad_claims_are_refused(overrides: dict[str, object], reason: str) -> None:
    # Claims are made when the test runs, not at collection: a long session must not expire them.
    exp = overrides.get("exp")
    if isinstance(exp, int):
        overrides = {**overrides, "exp": int(time.time()) + exp}
    with pytest.raises(AuthError, match=reason):
        verifier().verify(sign(claims(**overrides)))


def test_alg_none_is_refused() -> None:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    with pytest.raises(AuthError, match="algorithm not allowed"):
        verifier().verify(unsigned)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(AuthError, match="invalid token"):
        verifier().verify(sign(claims(), key="y" * 40))


def test_a_token_with_another_algorithm_is_refused() -> None:
    with pytest.raises(AuthError, match="algorithm not allowed"):
        verifier().verify(sign(claims(), key=SECRET * 2, alg="HS512"))


@pytest.mark.parametrize("token", [None, "", "not-a-jwt"])
def test_missing_or_garbage_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(AuthError):
        verifier().verify(token)


def test_minted_tokens_verify() -> None:
    v = verifier()
    assert v.verify(v.mint("bob", Role.VIEWER, 60)).role is Role.VIEWER


def test_settings_without_a_secret_refuse_to_start() -> None:
    with pytest.raises(ConfigError, match="--dev"):
        TokenVerifier.from_settings(GatewaySettings())


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="32"):
        TokenVerifier.from_settings(GatewaySettings(jwt_secret="short"))


def test_rs256_with_a_public_key_file(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "pub.pem").write_bytes(pem)
    gw = GatewaySettings(jwt_algorithm="RS256", jwt_public_key_file=tmp_path / "pub.pem")
    v = TokenVerifier.from_settings(gw)
    token = jwt.encode(claims(aud=gw.jwt_audience, iss=gw.jwt_issuer), key, algorithm="RS256")
    assert v.verify(token).user == "ada"
    # HS/RS confusion: the attacker knows the public key and signs an HS256 token with its PEM text
    # as the HMAC secret; a verifier that took the algorithm from the token would accept it.
    forged = hs256_with_key(claims(aud=gw.jwt_audience, iss=gw.jwt_issuer), pem)
    with pytest.raises(AuthError, match=r"algorithm not allowed \(only RS256\)"):
        v.verify(forged)
    with pytest.raises(ConfigError, match="cannot sign"):
        v.mint("x", Role.VIEWER)
