"""Finding the model servers and resolving model aliases to the ids they serve.

Order: the configured endpoint (`RAG_BASE_URL` / `FOUNDRY_LOCAL_ENDPOINT`, or a per-model one); the URL
`foundry service status` prints; a quick probe of the usual loopback ports. A port counts only when its
`/v1/models` answers with a model list, which also keeps the app from mistaking itself (Chainlit also
defaults to port 8000, and answers any path with its HTML page) for a model server.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import httpx
from pydantic import SecretStr

from rag.config import Settings
from rag.errors import ModelUnavailable, RagError
from rag.llm.client import ChatModel, OpenAICompatibleModel, Timeouts
from rag.llm.tokens import Tokenizer
from rag.types import Kind

log = logging.getLogger(__name__)

KNOWN_PORTS: tuple[tuple[int, str], ...] = (
    (5273, "Foundry Local"),
    (11434, "Ollama"),
    (1234, "LM Studio"),
    (8000, "vLLM"),
    (8080, "llama.cpp"),
)


@dataclass(frozen=True)
class Server:
    """An OpenAI-compatible endpoint that answered with its model list."""

    base_url: str  # ends with /v1
    name: str
    source: str  # how it was found: "RAG_BASE_URL", "foundry service status", "probe"
    models: tuple[str, ...]
    loaded: tuple[str, ...] = ()  # the ids the server says are loaded (Foundry Local), when it says


@dataclass(frozen=True)
class ResolvedModel:
    """A role's model: the alias asked for, the id served, and where."""

    role: str  # "small" or "large"
    alias: str
    model_id: str
    server: Server
    api_key: SecretStr  # secret to the edge: only the HTTP client reads its value


@dataclass(frozen=True)
class Resolution:
    """What discovery found: a model per role (or None) and human-readable problems."""

    small: ResolvedModel | None
    large: ResolvedModel | None
    servers: tuple[Server, ...] = ()
    problems: tuple[str, ...] = ()
    checked_at: float = 0.0
    tried: str | None = None  # nothing answered anywhere: where it looked ("Ollama :11434, ..." or "nothing")

    def named(self, name: str, role: str, api_key: SecretStr) -> ResolvedModel:
        """Any model a found server serves, by alias or id (benchmarks, the eval judge); RagError naming
        what is served when none matches."""
        found = next(((s, i) for s in self.servers if (i := resolve_alias(name, s.models))), None)
        if found is None:
            served = ", ".join(m for s in self.servers for m in s.models) or "no server found"
            raise RagError(f"{name}: not served (models: {served})")
        return ResolvedModel(role, name, found[1], found[0], api_key)

    @property
    def other_problems(self) -> tuple[str, ...]:
        """The problems besides "no model server found", which `tried` says in a structured way."""
        return tuple(p for p in self.problems if self.tried is None or p != nothing_found(self.tried))

    def get(self, role: str) -> ResolvedModel | None:
        """The resolved model for 'small' or 'large'."""
        return self.small if role == "small" else self.large


# --- aliases ------------------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.rsplit("/", 1)[-1].lower())


def resolve_alias(wanted: str, available: tuple[str, ...] | list[str]) -> str | None:
    """The served id for `wanted`: an exact id wins; else ids matching it once case, punctuation and an
    `org/` prefix are ignored (`phi-4-mini` -> `Phi-4-mini-instruct-cuda-gpu:4`, `phi4-mini`,
    `microsoft/Phi-4-mini-instruct`), preferring an exact normalised match, then instruct builds, GPU
    builds over CPU ones, and shorter ids; never a different variant such as `-reasoning`."""
    if wanted in available:
        return wanted
    key = _normalise(wanted)
    if not key:
        return None
    candidates = []
    for model_id in available:
        norm = _normalise(model_id)
        if not norm.startswith(key):
            continue
        rest = norm[len(key) :]
        if "reasoning" in rest or "vision" in rest or "flash" in rest:
            continue  # another model of the family, not a build of this one
        candidates.append((norm != key, "instruct" not in rest and rest != "", "cpu" in rest, len(model_id), model_id))
    return min(candidates)[-1] if candidates else None


# --- servers ------------------------------------------------------------------------------------------


async def list_models(client: httpx.AsyncClient, base_url: str, api_key: SecretStr | None = None) -> tuple[str, ...]:
    """The model ids an endpoint serves; ModelUnavailable when it is not an OpenAI-compatible server."""
    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key is not None else {}
    url = base_url.rstrip("/") + "/models"
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ModelUnavailable("(any model)", base_url, f"cannot connect ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise ModelUnavailable("(any model)", base_url, f"GET /models answered HTTP {response.status_code}")
    try:
        data = response.json()["data"]
        ids = tuple(str(item["id"]) for item in data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable("(any model)", base_url, "GET /models did not return an OpenAI model list") from exc
    return ids


async def loaded_models(client: httpx.AsyncClient, base_url: str, api_key: SecretStr | None = None) -> tuple[str, ...]:
    """The ids a Foundry Local service reports as loaded (`/openai/loadedmodels`), or () if it does not say.

    Its `/v1/models` has been reported to list catalog variants that are not loaded (a request to one
    fails with HTTP 400); not every version answers this route, and other servers never do.
    """
    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key is not None else {}
    url = base_url.rstrip("/").removesuffix("/v1") + "/openai/loadedmodels"
    try:
        response = await client.get(url, headers=headers)
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return ()
    if isinstance(data, dict):
        data = data.get("data") or data.get("models")
    if not isinstance(data, list):
        return ()
    ids = [item.get("id") or item.get("name") if isinstance(item, dict) else item for item in data]
    return tuple(str(i) for i in ids if isinstance(i, str) and i)


def foundry_status_url(timeout: float = 5.0) -> str | None:
    """The endpoint `foundry service status` reports, or None (command absent, service stopped)."""
    import subprocess

    executable = shutil.which("foundry")
    if executable is None:
        return None
    try:
        out = subprocess.run(
            [executable, "service", "status"], capture_output=True, text=True, timeout=timeout, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_foundry_status(out)


def parse_foundry_status(output: str) -> str | None:
    """'… is running on http://127.0.0.1:5273/openai/status' -> 'http://127.0.0.1:5273/v1'."""
    match = re.search(r"https?://[\w.\-]+(?::\d+)?", output)
    return f"{match.group(0)}/v1" if match else None


async def probe_ports(
    client: httpx.AsyncClient, ports: tuple[tuple[int, str], ...], skip_port: int | None
) -> list[Server]:
    """Concurrently ask each loopback port for its model list; keep those that answer with one."""

    async def one(port: int, name: str) -> Server | None:
        url = f"http://127.0.0.1:{port}/v1"
        try:
            models = await list_models(client, url)
        except ModelUnavailable:
            return None
        return Server(url, name, "probe", models)

    found = await asyncio.gather(*(one(p, n) for p, n in ports if p != skip_port))
    return [s for s in found if s is not None]


# --- the directory --------------------------------------------------------------------------------


@dataclass
class ModelDirectory:
    """Resolves both roles to served models, caches the answer, and re-checks when needed.

    A resolution with a missing model is re-checked after `recheck_s`, so starting Foundry Local after
    the app works; `invalidate()` forces a re-check after a model failed as unavailable.
    """

    settings: Settings
    tokenizer: Tokenizer
    own_port: int | None = None
    recheck_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    foundry_status: Callable[[], str | None] | None = None  # default: run `foundry service status`
    ports: tuple[tuple[int, str], ...] | None = None  # default: KNOWN_PORTS
    _resolution: Resolution | None = field(default=None, init=False)
    _models: dict[tuple[str, str, str], OpenAICompatibleModel] = field(default_factory=dict, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _last_problems: tuple[str, ...] = field(default=(), init=False)

    async def resolve(self, force: bool = False) -> Resolution:
        """The current resolution, re-discovered when stale."""
        async with self._lock:
            current = self._resolution
            complete = current is not None and current.small is not None and current.large is not None
            fresh = current is not None and self.clock() - current.checked_at < self.recheck_s
            if current is not None and not force and (complete or fresh):
                return current
            self._resolution = await self._discover()
            self._last_problems = self._resolution.problems
            return self._resolution

    def problems(self) -> tuple[str, ...]:
        """What the last discovery found wrong (empty before the first)."""
        return self._last_problems

    def invalidate(self) -> None:
        """Forget the cached resolution (after a model turned out to be unavailable)."""
        self._resolution = None

    def model(self, resolved: ResolvedModel) -> OpenAICompatibleModel:
        """A client for a resolved model, reused across requests."""
        key = (resolved.server.base_url, resolved.model_id, resolved.alias)
        if key not in self._models:
            s = self.settings
            self._models[key] = OpenAICompatibleModel(
                resolved.alias,
                resolved.model_id,
                resolved.server.base_url,
                resolved.api_key,
                self.tokenizer,
                Timeouts(s.connect_timeout_s, s.first_token_timeout_s, s.idle_timeout_s, s.generation_timeout_s),
            )
        return self._models[key]

    async def aclose(self) -> None:
        """Close every client."""
        for model in self._models.values():
            await model.aclose()

    async def _discover(self) -> Resolution:
        s = self.settings
        problems: list[str] = []
        servers: list[Server] = []
        timeout = httpx.Timeout(s.discovery_timeout_s * 4, connect=s.discovery_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            # Each endpoint is asked with the key its model will use (a per-model key wins).
            explicit: dict[str, tuple[str, SecretStr]] = {}
            for url, variable, key in (
                (s.small_base_url, "RAG_SMALL_BASE_URL", self._key(s.small_api_key)),
                (s.large_base_url, "RAG_LARGE_BASE_URL", self._key(s.large_api_key)),
                (s.base_url, "RAG_BASE_URL", self._key(None)),
            ):
                if url:
                    explicit.setdefault(url.rstrip("/"), (variable, key))
            for url, (variable, key) in explicit.items():
                try:
                    servers.append(Server(url, _server_name(url), variable, await list_models(client, url, key)))
                except ModelUnavailable as exc:
                    problems.append(f"{variable} {url}: {exc.reason}")
            if not s.base_url and not (s.small_base_url and s.large_base_url):
                foundry = await asyncio.to_thread(self.foundry_status or foundry_status_url)
                if foundry and foundry.rstrip("/") not in {x.base_url for x in servers}:
                    try:
                        servers.append(Server(foundry, "Foundry Local", "foundry service status", await list_models(client, foundry)))
                    except ModelUnavailable as exc:
                        problems.append(f"foundry service status reported {foundry}, but {exc.reason}")
                known = {x.base_url for x in servers}
                servers.extend(p for p in await probe_ports(client, self._ports, self.own_port) if p.base_url not in known)
            keys = {url: key for url, (_, key) in explicit.items()}
            loaded = await asyncio.gather(*(loaded_models(client, x.base_url, keys.get(x.base_url)) for x in servers))
            servers = [replace(x, loaded=ids) for x, ids in zip(servers, loaded)]

        def pick(role: str, alias: str, role_url: str | None, key: SecretStr | None) -> ResolvedModel | None:
            target = (role_url or s.base_url or "").rstrip("/")
            pool = [x for x in servers if not target or x.base_url == target]
            for server in pool:
                # A loaded build wins over one the server merely lists (Foundry Local's catalog variants).
                model_id = resolve_alias(alias, [m for m in server.loaded if m in server.models] or server.loaded) \
                    or resolve_alias(alias, server.models)
                if model_id:
                    return ResolvedModel(role, alias, model_id, server, self._key(key))
            if pool:
                listed = ", ".join(m for x in pool for m in x.models) or "none"
                problems.append(f"{alias}: not served by {', '.join(x.base_url for x in pool)} (models: {listed})")
            return None

        small = pick("small", s.small_model, s.small_base_url, s.small_api_key)
        large = pick("large", s.large_model, s.large_base_url, s.large_api_key)
        tried = None
        if not servers and not problems:
            tried = ", ".join(f"{n} :{p}" for p, n in self._ports) or "nothing"
            problems.append(nothing_found(tried))
        return Resolution(small, large, tuple(servers), tuple(problems), self.clock(), tried)

    @property
    def _ports(self) -> tuple[tuple[int, str], ...]:
        return KNOWN_PORTS if self.ports is None else self.ports

    def _key(self, role_key: SecretStr | None) -> SecretStr:
        return role_key if role_key is not None and role_key.get_secret_value() else self.settings.api_key


def _server_name(url: str) -> str:
    port = re.search(r":(\d+)", url.split("//", 1)[-1])
    if port:
        for known_port, name in KNOWN_PORTS:
            if int(port.group(1)) == known_port:
                return name
    return "OpenAI-compatible server"


def nothing_found(tried: str) -> str:
    """The problem reported when no server answered anywhere discovery looked."""
    return f"no model server found (tried {tried})"


class DirectoryModels:
    """The pipeline's ModelProvider, backed by discovery."""

    def __init__(self, directory: ModelDirectory) -> None:
        self._directory = directory

    async def get(self, kind: Kind) -> ChatModel | None:
        """The resolved model for a kind, or None."""
        resolved = (await self._directory.resolve()).get(kind)
        return self._directory.model(resolved) if resolved else None

    def report_unavailable(self, kind: Kind) -> None:
        """Re-discover on the next request."""
        self._directory.invalidate()

    def problems(self) -> tuple[str, ...]:
        """What the last discovery found wrong."""
        return self._directory.problems()


HOW_TO_CONNECT = (
    "Start a model server; it is picked up by itself:\n"
    "- Foundry Local: `foundry model run phi-4-mini`, and `foundry model run gpt-oss-20b` for escalation\n"
    "- Ollama: `ollama serve` (leave it running), then in another terminal `ollama pull phi4-mini` and "
    "`ollama pull gpt-oss:20b`\n"
    "- or set `RAG_BASE_URL` to any OpenAI-compatible endpoint ending in `/v1` (vLLM, llama.cpp, LM Studio).\n"
    "`rag doctor` shows what the app can see."
)
