"""`rag users` (password sign-in) and `rag export` (a stored conversation as Markdown or JSON)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from rag.config import Settings, load_settings
from rag.errors import RagError
from rag.terminal import shown

if TYPE_CHECKING:  # SQLAlchemy and Argon2 load only for these commands, not for every `rag` command
    from rag.chat.history import History, Role, ThreadRecord

T = TypeVar("T")


def _run(work: Callable[[History, Settings], Awaitable[T]]) -> T:
    """Open the history database (created or upgraded if needed), run `work`, close it."""
    async def main() -> T:
        from rag.chat.history import History, migrate

        settings = load_settings()
        history = History.open(settings)
        try:
            await migrate(history.engine)
            return await work(history, settings)
        finally:
            await history.aclose()
    try:
        return asyncio.run(main())
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def users() -> None:
    """Password users (RAG_AUTH=password): add, remove, list."""


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May delete any upload, not only their own.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts).")
def users_add(name: str, admin: bool, password_stdin: bool) -> None:
    """Add a user, or set an existing user's password and role."""
    from rag.chat.auth import hash_password, validate_new_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        validate_new_user(name, password)
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    role: Role = "admin" if admin else "user"
    password_hash = hash_password(password)
    added = _run(lambda history, _: history.put_user(name, password_hash, role))
    click.echo(f"{'added' if added else 'updated'} {name} ({role})")


@users.command("remove")
@click.argument("name")
def users_remove(name: str) -> None:
    """Remove a user's sign-in (their conversations stay, unreachable, until deleted from the database)."""
    if not _run(lambda history, _: history.remove_user(name)):
        raise click.ClickException(f"no user named {name}")
    click.echo(f"removed {name}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def users_list(as_json: bool) -> None:
    """Every password user with their role."""
    rows = _run(lambda history, _: history.users())
    if as_json:
        click.echo(json.dumps([{"name": n, "role": r, "created": c} for n, r, c in rows]))
    elif not rows:
        click.echo("no users yet: `rag users add NAME` (then start with RAG_AUTH=password)")
    else:
        for name, role, created in rows:
            click.echo(f"{shown(name)}\t{role}\t{created}")


@click.command("export")
@click.argument("conversation", required=False)
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (default: stdout).")
@click.option("--user", help="Only this user's conversations (with --list or to check ownership).")
@click.option("--list", "listing", is_flag=True, help="List stored conversations (id, user, created, title).")
def export(conversation: str | None, fmt: str, out: Path | None, user: str | None, listing: bool) -> None:
    """Export a stored conversation (its id, from --list) as Markdown or JSON."""
    from rag.chat import export as exporting
    from rag.chat.conversation import from_dict

    if listing or conversation is None:
        threads = _run(lambda history, _: history.threads(user))
        if not threads:
            click.echo("no stored conversations")
        for t in threads:
            click.echo(f"{shown(t.id)}\t{shown(t.user)}\t{t.created_at}\t{shown(t.name)}")
        return
    async def read(history: History, _: Settings) -> tuple[ThreadRecord | None, dict[str, Any]]:
        return await history.thread(conversation), await history.conversation(conversation)

    record, saved = _run(read)
    if record is None or (user is not None and record.user != user):
        raise click.ClickException(f"no stored conversation {conversation}" + (f" of {user}" if user else ""))
    stored = (saved or record.metadata).get("rag_conversation")
    value = from_dict(stored if isinstance(stored, dict) else {})
    meta = {"id": record.id, "user": record.user, "created": record.created_at}
    render = exporting.to_json if fmt == "json" else exporting.to_markdown
    text = render(value, record.name or "Conversation", meta)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out} ({len(value.exchanges)} exchanges)")
