"""Tokens with ``read`` and ``write`` scopes, taken from every place InfluxDB clients put them.

``Authorization: Bearer <t>``, ``Authorization: Token <t>``, HTTP Basic with the token as the
password (any user name), or the v1 query parameter ``p=<t>`` (with or without ``u=``).
InfluxDB 1.8's compatibility form ``Authorization: Token user:password`` carries the token as
its password: the part after the first ``:`` is a token too (the whole value still counts, so
a token may contain ``:``). The user name is never a token. A request is let in when any of
the tokens it carries is good, so ``u=&p=`` works even beside a client's default Basic
header. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from sunarchive.model import ConfigError

SCOPES = ("read", "write")


@dataclass(frozen=True)
class TokenSet:
    """Tokens per scope; a write token may also read. Empty: no authentication."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    names: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.read or self.write)

    def allows(self, token: str | None, scope: str) -> bool:
        """Is ``token`` good for ``scope``? Always True when no tokens are configured."""
        if not self.enabled:
            return True
        if token is None:
            return False
        pool = self.write if scope == "write" else self.read + self.write
        return any(hmac.compare_digest(token.encode(), t.encode()) for t in pool)

    def allows_any(self, tokens: list[str], scope: str) -> bool:
        """Is any of ``tokens`` good for ``scope``? Always True when no tokens are set."""
        return not self.enabled or any(self.allows(t, scope) for t in tokens)


def load_tokens(read: list[str], write: list[str], path: Path | None) -> TokenSet:
    """Tokens from settings plus a file of ``read TOKEN`` / ``write TOKEN`` lines."""
    reads, writes = list(read), list(write)
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"http_tokens_file {path}: cannot read: {exc.strerror}") from None
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            scope, _, token = line.partition(" ")
            token = token.strip()
            if scope not in SCOPES or not token:
                raise ConfigError(f"{path}: line {number}: write 'read TOKEN' or 'write TOKEN'")
            (writes if scope == "write" else reads).append(token)
    return TokenSet(tuple(reads), tuple(writes))


def token_from(authorization: str | None, query_p: str | None) -> str | None:
    """The token a request carries, wherever the client put it."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme in ("bearer", "token"):
            return value.strip() or None
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2] or None
    return query_p or None


def token_candidates(authorization: str | None, query_p: str | None) -> list[str]:
    """Every token a request may carry: ``p=``, the header's token and, for
    ``Token``/``Bearer user:password`` (InfluxDB 1.8), its password part."""
    found = [query_p] if query_p else []
    header = token_from(authorization, None)
    if header is not None:
        found.append(header)
        scheme = (authorization or "").strip().partition(" ")[0].lower()
        password = header.partition(":")[2] if scheme in ("bearer", "token") else ""
        if password:
            found.append(password)
    return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tokens: TokenSet, insecure: bool) -> None:
    """Refuse a non-loopback bind without tokens unless explicitly insecure."""
    if is_loopback(host) or tokens.enabled or insecure:
        return
    raise ConfigError(f"refusing to serve on {host} without tokens: anyone who can reach it "
                      "could read and write. Set http_read_tokens/http_write_tokens (or "
                      "http_tokens_file), bind 127.0.0.1, or pass --insecure.")
