"""Access tokens: random, shown once, stored hashed, checked in constant time, revocable.

A token reads `<id>.<secret>`: the id finds the row, the secret's SHA-256 is compared with
`hmac.compare_digest`. Events record the id (never the secret) as their actor.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hub.log.sqlite import connect, open_database
from hub.roles import ROLES, SITE_BOUND

PAGE_FOR_ROLE = {
    "admin": "/moderator",
    "moderator": "/moderator",
    "chair": "/",
    "viewer": "/projector",
    "technician": "/technician",
    "registrar": "/registrar",
    "agency": "/agency",
}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection or request is: the token's id, role and binding."""

    token_id: str
    role: str
    site: str | None = None
    agency: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    identity: Identity
    token: str

    def link(self, base_url: str) -> str:
        """The page link for this token; the token rides in the fragment, never in a request line."""
        return f"{base_url.rstrip('/')}{PAGE_FOR_ROLE[self.identity.role]}#token={self.token}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Token rows in the event database; each call uses its own short connection (CLI and hub alike)."""

    def __init__(self, path: str | Path, event_id: str | None = None) -> None:
        self.path = Path(path)
        open_database(self.path, event_id).close()

    def _conn(self) -> sqlite3.Connection:
        return connect(self.path)

    def issue(self, role: str, site: str | None = None, agency: str | None = None,
              label: str | None = None) -> IssuedToken:
        return self.issue_many([(role, site, agency, label)])[0]

    def issue_many(self, specs: list[tuple[str, str | None, str | None, str | None]]) -> list[IssuedToken]:
        """Create tokens in one transaction (thousands of sites at once)."""
        issued, rows = [], []
        now = time.time()
        for role, site, agency, label in specs:
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
            if (role in SITE_BOUND) != (site is not None):
                raise ValueError(f"role {role} {'needs' if role in SITE_BOUND else 'takes no'} --site")
            if (role == "agency") != (agency is not None):
                raise ValueError(f"role {role} {'needs' if role == 'agency' else 'takes no'} --agency")
            token_id, secret = secrets.token_hex(4), secrets.token_urlsafe(18)
            rows.append((token_id, _hash(secret), role, site, agency, label, now))
            issued.append(IssuedToken(Identity(token_id, role, site, agency, label), f"{token_id}.{secret}"))
        conn = self._conn()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO tokens(id, hash, role, site, agency, label, created) VALUES (?,?,?,?,?,?,?)", rows)
        finally:
            conn.close()
        return issued

    def verify(self, token: str) -> Identity | None:
        """The identity for a presented token, or None; never says which part was wrong."""
        token_id, _, secret = token.partition(".")
        if not token_id or not secret or len(token) > 200:
            return None
        conn = self._conn()
        try:
            row = conn.execute(
                "SELECT hash, role, site, agency, label, revoked FROM tokens WHERE id = ?", (token_id,)).fetchone()
        finally:
            conn.close()
        expected = row[0] if row else _hash("")
        if not hmac.compare_digest(expected, _hash(secret)) or row is None or row[5] is not None:
            return None
        return Identity(token_id, row[1], row[2], row[3], row[4])

    def revoke(self, token_id: str) -> bool:
        conn = self._conn()
        try:
            with conn:
                cur = conn.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                                   (time.time(), token_id))
            return cur.rowcount == 1
        finally:
            conn.close()

    def revoked_ids(self) -> set[str]:
        conn = self._conn()
        try:
            return {r[0] for r in conn.execute("SELECT id FROM tokens WHERE revoked IS NOT NULL")}
        finally:
            conn.close()

    def list(self) -> list[dict]:
        conn = self._conn()
        try:
            cur = conn.execute("SELECT id, role, site, agency, label, created, revoked FROM tokens ORDER BY created, id")
            return [dict(zip(("id", "role", "site", "agency", "label", "created", "revoked"), r)) for r in cur]
        finally:
            conn.close()

    def is_empty(self) -> bool:
        conn = self._conn()
        try:
            return conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
        finally:
            conn.close()
