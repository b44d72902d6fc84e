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


Spec = tuple[str, str | None, str | None, str | None]  # role, site, agency, label
ROW_FIELDS = ("id", "hash", "role", "site", "agency", "label", "created", "revoked")  # a token row, as stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_spec(role: str, site: str | None, agency: str | None) -> None:
    """Refuse a role the hub does not know, or a binding the role does not take (ValueError, said for the CLI)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if (role in SITE_BOUND) != (site is not None):
        raise ValueError(f"role {role} {'needs' if role in SITE_BOUND else 'takes no'} --site")
    if (role == "agency") != (agency is not None):
        raise ValueError(f"role {role} {'needs' if role == 'agency' else 'takes no'} --agency")


def new_token(spec: Spec, now: float) -> tuple[dict, IssuedToken]:
    """A fresh token for a checked spec: its row to store (the secret only hashed) and what is shown once."""
    role, site, agency, label = spec
    token_id, secret = secrets.token_hex(4), secrets.token_urlsafe(18)
    row = {"id": token_id, "hash": _hash(secret), "role": role, "site": site, "agency": agency, "label": label,
           "created": now, "revoked": None}
    return row, IssuedToken(Identity(token_id, role, site, agency, label), f"{token_id}.{secret}")


def new_tokens(specs: list[Spec]) -> list[tuple[dict, IssuedToken]]:
    """A token for each spec, every spec checked before any is made: a batch is refused whole."""
    for role, site, agency, _ in specs:
        check_spec(role, site, agency)
    now = time.time()
    return [new_token(spec, now) for spec in specs]


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

    def issue_many(self, specs: list[Spec]) -> list[IssuedToken]:
        """Create tokens in one transaction (thousands of sites at once)."""
        made = new_tokens(specs)
        self._write("INSERT", [row for row, _ in made])
        return [issued for _, issued in made]

    def upsert(self, rows: list[dict]) -> None:
        """Insert or replace rows (dicts of ROW_FIELDS) by id, in one transaction: a cluster node's copy of the
        tokens on the engine, committed without an fsync (the bucket's three servers hold them on disk)."""
        self._write("INSERT OR REPLACE", rows, fsync=False)

    def _write(self, verb: str, rows: list[dict], fsync: bool = True) -> None:
        conn = self._conn()
        if not fsync:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(f"{verb} INTO tokens({', '.join(ROW_FIELDS)}) "
                                 f"VALUES ({', '.join(':' + name for name in ROW_FIELDS)})", rows)
        finally:
            conn.close()

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
