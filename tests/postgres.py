"""A real PostgreSQL server for tests: `initdb` in a temporary folder, started on a free loopback port.

PostgreSQL refuses to run as root (CI runs as root): then the server runs as the `postgres` user that
Debian's package creates, through `runuser`. Where no PostgreSQL is installed the tests that need one are
skipped with the reason (`.ci/run` installs Debian's postgresql-15).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.fakes.appserver import free_port


def pg_binary(name: str) -> str | None:
    """`initdb`, `pg_ctl`: on PATH, or where Debian's package puts them."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing_reason() -> str | None:
    """Why no server can start here, or None."""
    for name in ("initdb", "pg_ctl"):
        if pg_binary(name) is None:
            return f"PostgreSQL's {name} is not installed (apt-get install postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
    return None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields the URL of a fresh server's database (`postgresql://rag@127.0.0.1:PORT/postgres`); the server
    is stopped and its folder removed after."""
    # Directly under /tmp: pytest's own temporary folders are root-only, unreadable by the server user.
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", free_port()
    initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
    assert initdb and pg_ctl
    subprocess.run(_as_server_user([initdb, "-D", str(data), "-U", "rag", "--auth=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql://rag@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
