"""Who is using the app: the single local user, or password users; the sign-in secret; who may delete what.

Passwords are stored as Argon2id hashes (argon2-cffi), never in plain text. The secret that signs sign-in
tokens is generated on first run and kept in the data folder, readable by its owner only.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rag.config import Settings
from rag.errors import ConfigError
from rag.chat.history import History, Role
from rag.private import private_dir

LOCAL_USER = "local"
SECRET_FILE = "auth-secret"
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Person:
    """The signed-in user as the app sees them."""

    identifier: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def local_person() -> Person:
    """The one user of a local install: owns everything, may delete any upload."""
    return Person(LOCAL_USER, "admin")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def sign_in(history: History, identifier: str, password: str) -> Person | None:
    """The user, when the password matches their stored hash. Unknown users cost one hash too, so the
    answer's timing does not tell which user names exist."""
    record = await history.user_record(identifier)
    if record is None:
        check_password(_dummy_hash(), password)
        return None
    password_hash, role = record
    return Person(identifier, role) if check_password(password_hash, password) else None


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))


def validate_new_user(identifier: str, password: str) -> None:
    """Refuse names and passwords we would regret storing."""
    if not identifier or identifier != identifier.strip() or len(identifier) > 64 or any(c.isspace() for c in identifier):
        raise ConfigError("a user name is 1-64 characters without spaces")
    if identifier == LOCAL_USER:
        raise ConfigError(f"'{LOCAL_USER}' is the name of the single local user; choose another")
    if len(password) < 8:
        raise ConfigError("the password must be at least 8 characters")


def may_delete(person: Person, owner: str | None) -> bool:
    """An upload may be deleted by whoever added it, or by an admin (documents with no recorded owner:
    added by the CLI or copied into the folder, so admins only)."""
    return person.is_admin or (owner is not None and owner == person.identifier)


def auth_secret(settings: Settings) -> str:
    """The secret that signs sign-in tokens: CHAINLIT_AUTH_SECRET if set, else the one stored in the data
    folder, generated on first run with owner-only permissions (0600)."""
    if secret := os.environ.get("CHAINLIT_AUTH_SECRET"):
        return secret
    path = settings.data_dir / SECRET_FILE
    try:
        private_dir(settings.data_dir)
    except OSError as exc:
        raise ConfigError(f"the data folder {settings.data_dir} cannot be created ({exc}); set RAG_DATA_DIR "
                          "to a folder the app may write") from exc
    try:
        # O_EXCL: two processes starting together never overwrite each other's secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # someone loosened it: the secret signs everyone's sign-in
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ConfigError(f"{path} does not hold a sign-in secret; delete it and a new one is made (users sign in again)")
    return secret


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str) -> None:
    """Without sign-in, anyone who reaches the port is the user: refuse a non-loopback host unless told."""
    if settings.auth == "local" and not is_loopback(host) and not settings.allow_open:
        raise ConfigError(
            f"refusing to serve {host} without sign-in: anyone on the network would be the local user. "
            "Set RAG_AUTH=password (users from `rag users add`), or RAG_ALLOW_OPEN=true if the network is yours alone."
        )
