"""OIDC bearer tokens: a JWT signed by the configured issuer, mapped to a person by email.

The keys come from the issuer's JWKS, by URL (fetched and cached by PyJWT) or from a file
for deployments that cannot reach the issuer at run time. Only asymmetric algorithms are
accepted, so a token signed with the public key as an HMAC secret is refused.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import jwt

from service.settings import Settings

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class OidcIdentity:
    email: str
    expires_at: datetime


class InvalidOidcToken(ValueError):
    """The JWT is not one the configured issuer signed for us, or it has expired."""


class OidcVerifier:
    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer:
            raise ValueError("OIDC is not configured (FAIRDRAFT_OIDC_ISSUER)")
        if not (settings.oidc_jwks_url or settings.oidc_jwks_file):
            raise ValueError("set FAIRDRAFT_OIDC_JWKS_URL or FAIRDRAFT_OIDC_JWKS_FILE")
        self.settings = settings

    @cached_property
    def _url_client(self) -> jwt.PyJWKClient | None:
        url = self.settings.oidc_jwks_url
        return jwt.PyJWKClient(url, cache_keys=True) if url else None

    @cached_property
    def _file_keys(self) -> jwt.PyJWKSet | None:
        path = self.settings.oidc_jwks_file
        return jwt.PyJWKSet.from_dict(json.loads(path.read_text())) if path else None

    def _key(self, token: str) -> Any:
        if self._file_keys is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = [k for k in self._file_keys.keys if kid is None or k.key_id == kid]
            if not keys:
                raise InvalidOidcToken("no key of the issuer matches the token's kid")
            return keys[0].key
        assert self._url_client is not None
        return self._url_client.get_signing_key_from_jwt(token).key

    def identity(self, token: str) -> "OidcIdentity":
        """The verified email claim and the token's expiry; raises InvalidOidcToken for
        anything else, including an email the issuer says is not verified."""
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=ALGORITHMS,
                issuer=self.settings.oidc_issuer,
                audience=self.settings.oidc_audience,
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": bool(self.settings.oidc_audience),
                },
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidOidcToken(str(exc)) from None
        email = claims.get(self.settings.oidc_email_claim)
        if not isinstance(email, str) or not email:
            raise InvalidOidcToken(f"the token has no {self.settings.oidc_email_claim!r} claim")
        if claims.get("email_verified") is False:
            raise InvalidOidcToken("the issuer says the email is not verified")
        return OidcIdentity(email.lower(), datetime.fromtimestamp(int(claims["exp"]), UTC))


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2
