"""Who is asking: one Visitor value, made from a secret token the browser keeps, passed to what needs it.

The token is a random 128-bit value in a cookie (set by the app's page, see widgets/visitor_cookie.py). It is
never shown: the visitor's id and shown name are derived from it by a one-way hash, so seeing someone's name
does not let you act as them. What this protects and what it does not is in SECURITY.md: it tells one browser
from another (so a reload keeps your job and your models); it is not an account (a cleared cookie is a new
visitor, two people on one browser are one visitor). An admin is a visitor who gave the admin password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN_PATTERN = re.compile(r"^[0-9a-f]{32}$")
COOKIE_NAME = "mnist_lab_visitor"


@dataclass(frozen=True)
class Visitor:
    """One browser: `id` is stable across reloads (never the token itself), `name` is what others see."""

    id: str
    name: str
    admin: bool = False

    def owns(self, owner_id: str | None) -> bool:
        """True if something recorded with `owner_id` is this visitor's (nothing is owned by an empty id)."""
        return bool(owner_id) and hmac.compare_digest(self.id, owner_id)

    def may_manage(self, owner_id: str | None) -> bool:
        """Stop, cancel or delete what belongs to `owner_id`: its owner, or an admin."""
        return self.admin or self.owns(owner_id)

    def as_admin(self) -> Visitor:
        return Visitor(self.id, self.name, admin=True)


def new_token() -> str:
    return secrets.token_hex(16)


def checked_token(value) -> str | None:
    """The token a browser sent, if it is one this app could have made (32 lowercase hex digits); else None.

    The one check for this input: anything else (missing, too long, other characters) means "a new visitor".
    """
    if isinstance(value, str) and TOKEN_PATTERN.fullmatch(value):
        return value
    return None


def visitor_from_token(token: str) -> Visitor:
    """The Visitor a valid token stands for: the same token always gives the same id and name."""
    if checked_token(token) is None:
        raise ValueError("not a visitor token")
    digest = hashlib.sha256(b"mnist-lab visitor:" + token.encode("ascii")).hexdigest()
    return Visitor(id=digest[:16], name=f"visitor-{digest[16:20]}")


def admin_password_matches(given, expected: str | None) -> bool:
    """True only when an admin password is configured and `given` is exactly it (compared in constant time)."""
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
