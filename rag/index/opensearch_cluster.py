"""A real OpenSearch cluster on this machine, for tests and development: no Docker, no internet besides Maven.

The distribution is OpenSearch's minimal zip, published on Maven Central for plugin tests as
`org.opensearch.distribution.integ-test-zip:opensearch:<version>:zip` (core, `transport-netty4`,
`analysis-common` and the other modules; no security plugin, no bundled JDK). `ensure_distribution` fetches
it once with `mvn dependency:copy` (so it lands in `~/.m2` too) and unpacks it into the cache folder.

`start_cluster` starts N nodes on loopback (free HTTP and transport ports chosen at start, small heaps),
waits until `_cluster/health` shows all of them, and writes a state file (`cluster.json`) in the base folder
so another process can find the cluster (`cluster_from_state`) and stop it (`stop_cluster`).

OpenSearch refuses to run as root: as root, the nodes run as the system user `opensearch-test` (created
with `useradd --system` when missing); otherwise as the current user. That user must reach the
distribution and the nodes' folders: where the base folder or the cache lies under a folder it cannot enter
(root's home is mode 0700), the nodes' folders go under `/var/tmp/rag-opensearch/clusters/<hash of the base
folder>/` and the distribution is hard-linked under `/var/tmp/rag-opensearch/dist/`; the state file stays
in the base folder either way.

Command line (from the project's root)::

    python -m rag.index.opensearch_cluster start [--dir D] [--nodes N]   # prints RAG_OPENSEARCH_URL=...
    python -m rag.index.opensearch_cluster status [--dir D]
    python -m rag.index.opensearch_cluster stop [--dir D] [--purge]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: The newest version Maven Central serves (3.9.0 is not published) that starts here, on Temurin 25.
DEFAULT_VERSION = "3.8.0"
MAVEN_COORDINATES = "org.opensearch.distribution.integ-test-zip:opensearch:{version}:zip"
SERVICE_USER = "opensearch-test"
CLUSTER_NAME = "rag-opensearch"
STATE_FILE = "cluster.json"
DEFAULT_BASE_DIR = Path.home() / ".cache" / "rag" / "opensearch-cluster"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "rag" / "opensearch"
#: Where the nodes' folders and a hard-linked distribution go when the service user cannot reach the
#: base folder or the cache (as root, under root's 0700 home).
SHARED_ROOT = Path("/var/tmp/rag-opensearch")
DEFAULT_HEAP = "512m"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
_MAIN_CLASS = "org.opensearch.bootstrap.OpenSearch"
_JVM_SEARCH_ROOTS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))

#: Processes this interpreter started, so that they are reaped (no zombies) when they end.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ClusterError(Exception):
    """The distribution cannot be fetched, or the cluster cannot be started, found or stopped."""


@dataclass(frozen=True)
class Node:
    """One OpenSearch process of a cluster."""

    index: int
    name: str
    pid: int
    http_port: int
    transport_port: int
    dir: Path

    @property
    def url(self) -> str:
        """The node's HTTP address, `http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_file(self) -> Path:
        """The node's main log (OpenSearch names it after the cluster)."""
        return self.dir / "logs" / f"{CLUSTER_NAME}.log"

    @property
    def console_file(self) -> Path:
        """What the node's process wrote to stdout and stderr (start-up errors land here)."""
        return self.dir / "console.log"


@dataclass(frozen=True)
class Cluster:
    """A started cluster, as recorded in its state file."""

    base_dir: Path
    version: str
    nodes: tuple[Node, ...]
    home: Path
    java_home: Path
    started_at: float

    @property
    def urls(self) -> list[str]:
        """Every node's HTTP address, in node order."""
        return [node.url for node in self.nodes]

    @property
    def url_setting(self) -> str:
        """The value for `RAG_OPENSEARCH_URL`: the nodes' addresses, comma-separated."""
        return ",".join(self.urls)

    @property
    def pids(self) -> list[int]:
        """Every node's process id, in node order."""
        return [node.pid for node in self.nodes]

    @property
    def http_ports(self) -> list[int]:
        """Every node's HTTP port, in node order."""
        return [node.http_port for node in self.nodes]

    @property
    def transport_ports(self) -> list[int]:
        """Every node's transport (node-to-node) port, in node order."""
        return [node.transport_port for node in self.nodes]

    def alive_nodes(self) -> list[Node]:
        """The nodes whose process is still running."""
        return [node for node in self.nodes if _node_alive(node)]

    def to_json(self) -> dict[str, object]:
        """The state file's content."""
        return {
            "base_dir": str(self.base_dir),
            "version": self.version,
            "home": str(self.home),
            "java_home": str(self.java_home),
            "started_at": self.started_at,
            "nodes": [
                {"index": n.index, "name": n.name, "pid": n.pid, "http_port": n.http_port,
                 "transport_port": n.transport_port, "dir": str(n.dir)}
                for n in self.nodes
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Cluster:
        """Reads a state file's content; raises ClusterError when it is malformed."""
        try:
            raw_nodes = data["nodes"]
            assert isinstance(raw_nodes, list)
            nodes = tuple(
                Node(index=int(n["index"]), name=str(n["name"]), pid=int(n["pid"]),
                     http_port=int(n["http_port"]), transport_port=int(n["transport_port"]), dir=Path(n["dir"]))
                for n in raw_nodes
            )
            started_at = data["started_at"]
            assert isinstance(started_at, (int, float))
            return cls(base_dir=Path(str(data["base_dir"])), version=str(data["version"]), nodes=nodes,
                       home=Path(str(data["home"])), java_home=Path(str(data["java_home"])),
                       started_at=float(started_at))
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise ClusterError(f"malformed cluster state: {exc!r}") from exc


# --- Java and the distribution ------------------------------------------------------------------------


def _major(version: str) -> int:
    """`3.8.0` -> 3."""
    match = re.match(r"(\d+)", version)
    if not match:
        raise ClusterError(f"not an OpenSearch version: {version!r}")
    return int(match.group(1))


def _java_range(version: str) -> tuple[int, int]:
    """The Java feature releases an OpenSearch version runs on: 3.x needs 21+; 2.x needs 11 to 23 (it still
    relies on the security manager, which Java 24 removed)."""
    return (21, 99) if _major(version) >= 3 else (11, 23)


def _java_feature(java_home: Path) -> int | None:
    """The Java feature release (17, 21, 25) of a JDK folder, from its `release` file or `java -version`."""
    release = java_home / "release"
    text = ""
    with contextlib.suppress(OSError):
        text = release.read_text(encoding="utf-8", errors="replace")
    match = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', text, re.MULTILINE)
    if match:
        return int(match.group(1))
    java = java_home / "bin" / "java"
    if not os.access(java, os.X_OK):
        return None
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(?:1\.)?(\d+)', done.stderr)
    return int(match.group(1)) if match else None


def find_java_home(version: str | None = None) -> Path:
    """A JDK that can run this OpenSearch version: `OPENSEARCH_JAVA_HOME` if set (taken as is), else the
    newest suitable one among `JAVA_HOME`, the `java` on PATH and the JDKs under /usr/lib/jvm."""
    version = version or DEFAULT_VERSION
    low, high = _java_range(version)
    forced = os.environ.get("OPENSEARCH_JAVA_HOME")
    if forced:
        if not os.access(Path(forced) / "bin" / "java", os.X_OK):
            raise ClusterError(f"OPENSEARCH_JAVA_HOME={forced} has no bin/java")
        return Path(forced)
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent.parent)
    for root in _JVM_SEARCH_ROOTS:
        with contextlib.suppress(OSError):
            candidates.extend(sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()))
    found: dict[Path, int] = {}
    for candidate in candidates:
        resolved = Path(os.path.realpath(candidate))
        if resolved in found or not os.access(resolved / "bin" / "java", os.X_OK):
            continue
        feature = _java_feature(resolved)
        if feature is not None:
            found[resolved] = feature
    suitable = [(feature, path) for path, feature in found.items() if low <= feature <= high]
    if not suitable:
        seen = ", ".join(f"{feature} ({path})" for path, feature in found.items()) or "none"
        wanted = f"Java {low}+" if high >= 99 else f"Java {low} to {high}"
        raise ClusterError(f"OpenSearch {version} needs {wanted}; Java found: {seen}. Install one (e.g. "
                           "apt-get install openjdk-21-jdk-headless) or set OPENSEARCH_JAVA_HOME.")
    return max(suitable)[1]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder/.lock`, between processes (a fetch or start in two test workers)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _extract(archive: Path, target: Path) -> None:
    """Unzips keeping the executable bits (zipfile drops them), everything readable by all."""
    target_resolved = target.resolve()
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            destination = (target / info.filename).resolve()
            if destination != target_resolved and target_resolved not in destination.parents:
                raise ClusterError(f"{archive.name}: unsafe path {info.filename!r}")
            zipped.extract(info, target)
            mode = (info.external_attr >> 16) & 0o777
            if info.is_dir():
                os.chmod(destination, 0o755)
            else:
                os.chmod(destination, 0o755 if mode & 0o111 else 0o644)
    for folder, _dirs, _files in os.walk(target):
        os.chmod(folder, 0o755)


def ensure_distribution(cache_dir: Path = DEFAULT_CACHE_DIR, version: str | None = None) -> Path:
    """The OpenSearch home `cache_dir/opensearch-<version>`, fetched from Maven Central with `mvn` and
    unpacked the first time (under a lock, atomically: a present folder is complete). Raises ClusterError
    when Maven or a suitable Java is missing or Maven cannot fetch the version."""
    version = version or DEFAULT_VERSION
    cache_dir = Path(cache_dir).expanduser().absolute()
    home = cache_dir / f"opensearch-{version}"
    if (home / "bin" / "opensearch").is_file():
        return home
    find_java_home(version)  # fail before a 160 MB download that could not run
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ClusterError("Maven (mvn) is not installed, and it fetches OpenSearch from Maven Central: "
                           "apt-get install maven")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ClusterError("Maven needs Java: no `java` on PATH and no JAVA_HOME")
    with _locked(cache_dir):
        if (home / "bin" / "opensearch").is_file():
            return home
        work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir))
        try:
            coordinates = MAVEN_COORDINATES.format(version=version)
            command = [mvn, "-B", "-q", "-U", "-Dstyle.color=never", "dependency:copy", f"-Dartifact={coordinates}",
                       f"-DoutputDirectory={work}"]
            log.info("fetching OpenSearch %s from Maven Central: %s", version, " ".join(command[1:]))
            started = time.monotonic()
            # Run in the empty folder so that no project's pom.xml is picked up.
            done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=1800)
            archives = list(work.glob("*.zip"))
            if done.returncode != 0 or not archives:
                output = (done.stdout + done.stderr).replace("\x1b[0m", "").strip()
                errors = [line for line in output.splitlines() if line.startswith("[ERROR]") and line[7:].strip()]
                tail = "\n".join(errors[:4]) if errors else _tail_text(output, 15)
                raise ClusterError(f"mvn could not fetch {coordinates} (is {version} published on Maven "
                                   f"Central?):\n{tail}")
            unpacked = work / "unpacked"
            _extract(archives[0], unpacked)
            archives[0].unlink()  # Maven's copy in ~/.m2 stays; this one would only take disk space
            tops = [p for p in unpacked.iterdir() if (p / "bin" / "opensearch").is_file()]
            if len(tops) != 1:
                raise ClusterError(f"unexpected layout in {coordinates}: {[p.name for p in unpacked.iterdir()]}")
            (tops[0] / "plugins").mkdir(exist_ok=True)
            os.chmod(cache_dir, os.stat(cache_dir).st_mode | 0o755)
            tops[0].rename(home)
            log.info("OpenSearch %s ready in %s (%.1f s)", version, home, time.monotonic() - started)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"mvn took too long fetching OpenSearch {version}") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return home


# --- the service user and its folders -----------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    """Who the nodes run as."""

    name: str
    uid: int
    gid: int

    @property
    def switch(self) -> bool:
        """Whether the node processes must change user (we are root)."""
        return os.geteuid() == 0 and self.uid != 0


def _service_account() -> _Account:
    """As root, the `opensearch-test` system user (created when missing); otherwise the current user."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        done = subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
                               "/nonexistent", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                              capture_output=True, text=True)
        try:  # another process may have created it at the same moment
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise ClusterError(f"OpenSearch refuses to run as root and the user {SERVICE_USER!r} could not be "
                               f"created: {done.stderr.strip()}") from None
        log.info("created the system user %s to run OpenSearch as", SERVICE_USER)
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _reachable(path: Path, account: _Account) -> bool:
    """Whether `account` may enter every existing folder from / down to `path` (mode bits only)."""
    if account.uid == 0:
        return True
    current = Path(path).absolute()
    for folder in [*reversed(current.parents), current]:
        try:
            info = os.stat(folder)
        except FileNotFoundError:
            break
        if info.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _shared_root() -> Path:
    """`/var/tmp/rag-opensearch`, root-owned and enterable by all."""
    SHARED_ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(SHARED_ROOT, 0o755)
    return SHARED_ROOT


def _usable_home(home: Path, account: _Account) -> Path:
    """The distribution where the service user can read it: `home` itself, or a hard-linked (else copied)
    twin under SHARED_ROOT/dist."""
    if _reachable(home, account):
        return home
    dist = _shared_root() / "dist"
    dist.mkdir(exist_ok=True)
    os.chmod(dist, 0o755)
    twin = dist / home.name
    if (twin / "bin" / "opensearch").is_file():
        return twin
    with _locked(dist):
        if not (twin / "bin" / "opensearch").is_file():
            work = Path(tempfile.mkdtemp(prefix=".link-", dir=dist))
            try:
                def link(source: str, target: str) -> object:
                    try:
                        os.link(source, target)
                    except OSError:
                        shutil.copy2(source, target)
                    return target

                shutil.copytree(home, work / home.name, copy_function=link)
                for folder, _dirs, _files in os.walk(work):
                    os.chmod(folder, 0o755)
                (work / home.name).rename(twin)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        log.info("%s cannot reach %s: using a hard-linked copy in %s", SERVICE_USER, home, twin)
    return twin


def _fallback_nodes_root(base_dir: Path) -> Path:
    """SHARED_ROOT/clusters/<hash of base_dir>: the nodes' folders when base_dir is out of reach."""
    key = hashlib.sha256(str(base_dir.resolve()).encode()).hexdigest()[:12]
    return SHARED_ROOT / "clusters" / key


def _nodes_root(base_dir: Path, account: _Account) -> Path:
    """Where the nodes' folders go: `base_dir/nodes`, or, when the service user cannot reach base_dir,
    SHARED_ROOT/clusters/<hash of base_dir>."""
    if _reachable(base_dir, account):
        return base_dir / "nodes"
    root = _fallback_nodes_root(base_dir)
    clusters = _shared_root() / "clusters"
    clusters.mkdir(exist_ok=True)
    os.chmod(clusters, 0o755)
    log.info("%s cannot enter %s: the nodes' data and logs go to %s", account.name, base_dir, root)
    return root


def _chown_tree(root: Path, account: _Account) -> None:
    """Gives a folder and everything in it to the service user (a no-op when not switching user)."""
    if not account.switch:
        return
    os.chown(root, account.uid, account.gid)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(folder, name), account.uid, account.gid, follow_symlinks=False)


# --- processes -------------------------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together while choosing, then released)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _process_alive(pid: int) -> bool:
    """Whether the process runs (not ended, not a zombie); reaps it if this interpreter started it."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            _children.pop(pid, None)
            return False
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _node_alive(node: Node) -> bool:
    """Whether the node's process runs, and is this node (guarding against a reused pid)."""
    if node.pid in _children:
        # Our own child: poll() is the truth. Its command line is not: while the launch script execs
        # java it can read as neither (empty, or an intermediate program), which failed a start now and then.
        return _process_alive(node.pid)
    if not _process_alive(node.pid):
        return False
    try:
        cmdline = Path(f"/proc/{node.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    if any(arg.endswith(b"/bin/opensearch") for arg in cmdline):
        return True  # still the launch script, before it execs java
    wanted = os.path.realpath(node.dir / "config")
    prefix = b"-Dopensearch.path.conf="
    return _MAIN_CLASS.encode() in cmdline and any(
        arg.startswith(prefix) and os.path.realpath(os.fsdecode(arg[len(prefix):])) == wanted for arg in cmdline)


def _wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Waits until the processes end; returns those still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining:
        remaining = [pid for pid in remaining if _process_alive(pid)]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return remaining


def _signal_nodes(nodes: Sequence[Node], timeout: float) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL what is left, and wait until it is gone."""
    alive = [node for node in nodes if _node_alive(node)]
    for node in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signal.SIGTERM)
    left = _wait_gone([node.pid for node in alive], timeout)
    for pid in left:
        log.warning("node process %d ignored SIGTERM for %.0f s: SIGKILL", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    still = _wait_gone(left, 10.0)
    if still:
        raise ClusterError(f"node processes {still} survived SIGKILL")


def _tail_text(text: str, lines: int) -> str:
    """The last `lines` lines of a text, Java stack frames left out (they would hide the cause)."""
    kept = [line for line in text.splitlines() if not re.match(r"\s+(at |\.\.\. \d+ more)", line)]
    return "\n".join(kept[-lines:])


def _tail(path: Path, lines: int = 40) -> str:
    """The last lines of a file (its last 64 KiB), or a note when it is missing."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror})"
    return _tail_text(text, lines)


def _node_failure_report(node: Node) -> str:
    """The tails of a node's console output and main log, for an error message."""
    return (f"--- {node.name}: {node.console_file} ---\n{_tail(node.console_file, 20)}\n"
            f"--- {node.name}: {node.log_file} ---\n{_tail(node.log_file, 30)}")


# --- configuration -------------------------------------------------------------------------------------


def _yaml_value(value: object) -> str:
    """A setting's value in opensearch.yml (JSON is a subset of YAML)."""
    if isinstance(value, (list, tuple)):
        return json.dumps([str(v) for v in value])
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else str(value)


def _jvm_options(text: str, node_dir: Path) -> str:
    """The distribution's jvm.options with its relative paths (resolved against the root-owned home, the
    process's working folder) pointed into the node's folder, a small GC log, no heap dumps, and the heap
    left to OPENSEARCH_JAVA_OPTS."""
    logs = node_dir / "logs"
    out: list[str] = []
    for line in text.splitlines():
        bare = line.split(":", 1)[1] if re.match(r"^\d+(-\d*)?:", line) else line
        if bare.startswith(("-Xms", "-Xmx", "-XX:HeapDumpPath", "-XX:+HeapDumpOnOutOfMemoryError")):
            continue
        line = line.replace("-XX:ErrorFile=logs/", f"-XX:ErrorFile={logs}/")
        line = line.replace("file=logs/gc.log", f"file={logs}/gc.log")
        line = re.sub(r"filecount=\d+,filesize=\d+m", "filecount=2,filesize=16m", line)
        out.append(line)
    return "\n".join(out) + "\n"


def _write_node_config(home: Path, node_dir: Path, settings: Mapping[str, object]) -> Path:
    """The node's config folder: the distribution's files with jvm.options adapted, and opensearch.yml."""
    config = node_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    for source in (home / "config").iterdir():
        if source.name in ("opensearch.yml", "jvm.options"):
            continue
        if source.is_dir():
            shutil.copytree(source, config / source.name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, config / source.name)
    (config / "jvm.options").write_text(
        _jvm_options((home / "config" / "jvm.options").read_text(encoding="utf-8"), node_dir), encoding="utf-8")
    lines = ["# Written by rag.index.opensearch_cluster at each start; edits are lost."]
    lines += [f"{key}: {_yaml_value(value)}" for key, value in settings.items()]
    (config / "opensearch.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def _manager_indices(nodes: int) -> list[int]:
    """The cluster-manager-eligible nodes: node-0 alone below three nodes (two eligible nodes would still
    vote with one of them, chosen at random, so losing that one would leave the cluster leaderless), else
    the first three (any one of them may fail)."""
    return [0] if nodes < 3 else [0, 1, 2]


def _node_settings(index: int, nodes: int, node_dir: Path, http_ports: Sequence[int],
                   transport_ports: Sequence[int], home: Path,
                   extra: Mapping[str, object] | None) -> dict[str, object]:
    """opensearch.yml for node `index`: loopback only, fixed ports, one cluster, no disk watermarks."""
    settings: dict[str, object] = {
        "cluster.name": CLUSTER_NAME,
        "node.name": f"node-{index}",
        "path.data": str(node_dir / "data"),
        "path.logs": str(node_dir / "logs"),
        "network.host": "127.0.0.1",
        "http.port": http_ports[index],
        "transport.port": transport_ports[index],
        "bootstrap.memory_lock": False,
        # The disk may be nearly full: never refuse shards or make indices read-only because of it.
        "cluster.routing.allocation.disk.threshold_enabled": False,
        # Writing to a missing index is a bug in the app (a misspelt name, a mapping never created): fail.
        "action.auto_create_index": False,
    }
    if nodes == 1:
        settings["discovery.type"] = "single-node"
    else:
        managers = _manager_indices(nodes)
        settings["node.roles"] = ["cluster_manager", "data", "ingest"] if index in managers else ["data", "ingest"]
        settings["discovery.seed_hosts"] = [f"127.0.0.1:{port}" for port in transport_ports]
        settings["cluster.initial_cluster_manager_nodes"] = [f"node-{i}" for i in managers]
    if (home / "plugins" / "opensearch-security").is_dir():
        settings["plugins.security.disabled"] = True
    settings.update(extra or {})
    return settings


def _http_json(url: str, timeout: float = 3.0) -> dict[str, object] | None:
    """GET a JSON object; None when the node does not answer (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def cluster_health(cluster: Cluster, timeout: float = 3.0) -> dict[str, object] | None:
    """`_cluster/health` from the first live node that answers, or None."""
    for node in cluster.alive_nodes():
        health = _http_json(f"{node.url}/_cluster/health", timeout)
        if health is not None:
            return health
    return None


def _launch(node: Node, home: Path, java_home: Path, heap: str, jvm_options: Sequence[str],
            account: _Account) -> subprocess.Popen[bytes]:
    """Starts one node (`bin/opensearch` execs java, so the pid is the JVM's), in its own session."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("JAVA_TOOL_OPTIONS", "JAVA_OPTS", "_JAVA_OPTIONS", "OPENSEARCH_HOME")}
    env.update({
        "OPENSEARCH_JAVA_HOME": str(java_home),
        "JAVA_HOME": str(java_home),
        "OPENSEARCH_PATH_CONF": str(node.dir / "config"),
        "OPENSEARCH_TMPDIR": str(node.dir / "tmp"),
        # OpenSearch turns AlwaysPreTouch on, which makes the whole heap resident at start: off, to save memory.
        "OPENSEARCH_JAVA_OPTS": " ".join([f"-Xms{heap}", f"-Xmx{heap}", "-XX:-AlwaysPreTouch", *jvm_options]),
        "HOME": str(node.dir),
        "USER": account.name,
        "LOGNAME": account.name,
    })
    with open(node.console_file, "ab") as console:
        process = subprocess.Popen(
            [str(home / "bin" / "opensearch")], cwd=node.dir, env=env, stdin=subprocess.DEVNULL,
            stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
            user=account.uid if account.switch else None, group=account.gid if account.switch else None,
            extra_groups=[] if account.switch else None,
        )
    _children[process.pid] = process
    return process


def _reset_data_if_layout_changed(nodes_root: Path, nodes: int, reset: bool) -> None:
    """Keeps the data of an earlier run with the same node count (a restart finds its indices again);
    wipes it when asked or when the node count changed (the old voting configuration could not elect)."""
    existing = {p.name for p in nodes_root.glob("node-*") if (p / "data").is_dir() and any((p / "data").iterdir())}
    wanted = {f"node-{i}" for i in range(nodes)}
    if existing and (reset or existing != wanted):
        if not reset:
            log.warning("the earlier cluster in %s had nodes %s: wiping its data for %d node(s)",
                        nodes_root, sorted(existing), nodes)
        for folder in nodes_root.glob("node-*"):
            shutil.rmtree(folder / "data", ignore_errors=True)


def _check_system() -> None:
    """Logs what OpenSearch would complain about on a non-loopback address (then enforced, here not)."""
    with contextlib.suppress(OSError, ValueError):
        count = int(Path("/proc/sys/vm/max_map_count").read_text())
        if count < 262144:
            log.debug("vm.max_map_count is %d (< 262144): fine on loopback for small indices", count)


def _write_state(cluster: Cluster) -> None:
    """Writes the state file atomically."""
    path = cluster.base_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(cluster.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _read_state(base_dir: Path) -> Cluster | None:
    """The cluster the state file describes (alive or not), or None without a state file."""
    path = Path(base_dir).expanduser().absolute() / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ClusterError(f"unreadable cluster state {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ClusterError(f"malformed cluster state {path}")
    return Cluster.from_json(data)


def cluster_from_state(base_dir: Path = DEFAULT_BASE_DIR) -> Cluster | None:
    """The cluster started in `base_dir`, if at least one of its nodes still runs; else None."""
    cluster = _read_state(base_dir)
    if cluster is None or not cluster.alive_nodes():
        return None
    return cluster


def _start_once(base_dir: Path, nodes: int, version: str, home: Path, java_home: Path, account: _Account,
                heap: str, jvm_options: Sequence[str], timeout: float, reset: bool,
                settings: Mapping[str, object] | None) -> Cluster:
    """One attempt at starting the nodes and waiting for the cluster; stops them and raises on failure."""
    nodes_root = _nodes_root(base_dir, account)
    nodes_root.mkdir(parents=True, exist_ok=True)
    _reset_data_if_layout_changed(nodes_root, nodes, reset)
    ports = _free_ports(2 * nodes)
    http_ports, transport_ports = ports[:nodes], ports[nodes:]
    planned: list[Node] = []
    for i in range(nodes):
        node_dir = nodes_root / f"node-{i}"
        for sub in ("data", "logs", "tmp"):
            (node_dir / sub).mkdir(parents=True, exist_ok=True)
        _write_node_config(home, node_dir, _node_settings(i, nodes, node_dir, http_ports, transport_ports, home,
                                                          settings))
        (node_dir / "console.log").write_bytes(b"")
        planned.append(Node(i, f"node-{i}", 0, http_ports[i], transport_ports[i], node_dir))
    _chown_tree(nodes_root, account)
    started_at = time.time()
    clock = time.monotonic()
    launched: list[Node] = []
    try:
        for node in planned:
            process = _launch(node, home, java_home, heap, jvm_options, account)
            launched.append(Node(node.index, node.name, process.pid, node.http_port, node.transport_port,
                                 node.dir))
        cluster = Cluster(base_dir, version, tuple(launched), home, java_home, started_at)
        _write_state(cluster)  # recorded before waiting: an interrupted start leaves no orphan unknown
        deadline = clock + timeout
        while True:
            dead = [node for node in launched if not _node_alive(node)]
            if dead:
                raise ClusterError(f"OpenSearch node {dead[0].name} exited during start-up:\n"
                                   + _node_failure_report(dead[0]))
            health = _http_json(f"{launched[0].url}/_cluster/health", 2.0)
            if (health is not None and health.get("number_of_nodes") == nodes
                    and health.get("status") in ("green", "yellow")):
                break
            if time.monotonic() >= deadline:
                raise ClusterError(f"the cluster did not form within {timeout:.0f} s (last health: {health}):\n"
                                   + "\n".join(_node_failure_report(node) for node in launched))
            time.sleep(0.5)
    except BaseException:
        with contextlib.suppress(ClusterError):
            _signal_nodes(launched, 10.0)
        with contextlib.suppress(FileNotFoundError):
            (base_dir / STATE_FILE).unlink()
        raise
    log.info("OpenSearch %s: %d node(s) up in %.1f s: %s", version, nodes, time.monotonic() - clock,
             cluster.url_setting)
    return cluster


def start_cluster(base_dir: Path = DEFAULT_BASE_DIR, nodes: int = 2, version: str | None = None, *,
                  cache_dir: Path = DEFAULT_CACHE_DIR, heap: str = DEFAULT_HEAP, jvm_options: Sequence[str] = (),
                  timeout: float = START_TIMEOUT, reset: bool = False,
                  settings: Mapping[str, object] | None = None) -> Cluster:
    """Starts `nodes` OpenSearch nodes forming one cluster on loopback, waits (at most `timeout` s) until
    `_cluster/health` shows them all, green or yellow, and records it in `base_dir/cluster.json`.

    Data from an earlier run with the same node count is kept unless `reset`; `settings` adds or overrides
    opensearch.yml settings (e.g. `{"action.auto_create_index": True}`); `jvm_options` adds JVM flags
    (`-XX:TieredStopAtLevel=1` starts two nodes in ~13 s instead of ~22 s here, at the cost of slower
    steady-state queries: fine for tests, not for benchmarks). Raises ClusterError when a cluster
    already runs there or the start fails (after stopping what it started, with the nodes' log tails); a
    start that lost a port race is retried once."""
    if nodes < 1:
        raise ClusterError("a cluster needs at least one node")
    version = version or DEFAULT_VERSION
    base_dir = Path(base_dir).expanduser().absolute()
    base_dir.mkdir(parents=True, exist_ok=True)
    home = ensure_distribution(cache_dir, version)
    java_home = find_java_home(version)
    account = _service_account()
    _check_system()
    with _locked(base_dir):
        running = cluster_from_state(base_dir)
        if running is not None:
            raise ClusterError(f"a cluster already runs from {base_dir}: {running.url_setting} (stop it first)")
        usable_home = _usable_home(home, account)
        for attempt in (1, 2):
            try:
                return _start_once(base_dir, nodes, version, usable_home, java_home, account, heap, jvm_options,
                                   timeout, reset, settings)
            except ClusterError as exc:
                if attempt == 2 or "BindException" not in str(exc) and "Address already in use" not in str(exc):
                    raise
                log.warning("a port was taken meanwhile; starting again on other ports")
                reset = False
    raise AssertionError("unreachable")


def stop_cluster(base_dir: Path = DEFAULT_BASE_DIR, *, timeout: float = STOP_TIMEOUT,
                 remove_data: bool = False) -> None:
    """Stops the cluster recorded in `base_dir` (SIGTERM, up to `timeout` s, then SIGKILL) and removes the
    state file; with `remove_data`, also the nodes' folders (data and logs), even of a stopped cluster."""
    base_dir = Path(base_dir).expanduser().absolute()
    if not base_dir.is_dir():
        return
    with _locked(base_dir):
        cluster = _read_state(base_dir)
        if cluster is not None:
            _signal_nodes(cluster.nodes, timeout)
            (base_dir / STATE_FILE).unlink(missing_ok=True)
            log.info("stopped the OpenSearch cluster of %s", base_dir)
        if remove_data:
            roots = {base_dir / "nodes", _fallback_nodes_root(base_dir)}
            roots.update(node.dir.parent for node in (cluster.nodes if cluster else ()))
            for root in roots:
                if root.is_dir():
                    shutil.rmtree(root, ignore_errors=True)
                    log.info("removed %s", root)


def kill_node(cluster: Cluster, index: int, sig: int = signal.SIGKILL) -> None:
    """Kills one node (SIGKILL by default: a crash, for fault tests) and waits until its process is gone.
    The state file keeps it; `stop_cluster` skips dead nodes.

    In a two-node cluster node-0 is the only cluster manager: killing node 1 leaves a working cluster
    (yellow, searches answer from the surviving copies); killing node 0 leaves node 1 leaderless (searches
    still answer, `_cluster/health` and writes fail). From three nodes on, any one node may be killed."""
    node = cluster.nodes[index]
    if not _node_alive(node):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(node.pid, sig)
    if _wait_gone([node.pid], 30.0):
        raise ClusterError(f"{node.name} (pid {node.pid}) still runs after signal {sig}")


# --- command line ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`start | stop | status | fetch`, see the module's docstring; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m rag.index.opensearch_cluster",
                                     description="A local OpenSearch cluster fetched from Maven Central.")
    parser.add_argument("command", choices=["start", "stop", "status", "fetch"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_BASE_DIR, help="state, data and logs (%(default)s)")
    parser.add_argument("--nodes", type=int, default=2, help="number of nodes for start (%(default)s)")
    parser.add_argument("--version", dest="os_version", default=DEFAULT_VERSION,
                        help="OpenSearch version (%(default)s)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR, help="distributions (%(default)s)")
    parser.add_argument("--heap", default=DEFAULT_HEAP, help="JVM heap per node (%(default)s)")
    parser.add_argument("--jvm-option", action="append", default=[], metavar="FLAG",
                        help="start: an extra JVM flag, e.g. -XX:TieredStopAtLevel=1 (faster start); repeatable")
    parser.add_argument("--reset", action="store_true", help="start: wipe the data of an earlier run")
    parser.add_argument("--purge", action="store_true", help="stop: remove the nodes' data and logs too")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    try:
        if args.command == "fetch":
            print(ensure_distribution(args.cache, args.os_version))
        elif args.command == "start":
            running = cluster_from_state(args.dir)
            if running is not None:
                log.info("already running (stop it to start another)")
                print(f"RAG_OPENSEARCH_URL={running.url_setting}")
                return 0
            cluster = start_cluster(args.dir, args.nodes, args.os_version, cache_dir=args.cache,
                                    heap=args.heap, jvm_options=args.jvm_option, reset=args.reset)
            print(f"RAG_OPENSEARCH_URL={cluster.url_setting}")
        elif args.command == "stop":
            stop_cluster(args.dir, remove_data=args.purge)
        else:
            state = _read_state(args.dir)
            if state is None:
                print("not running")
                return 1
            alive = {node.pid for node in state.alive_nodes()}
            for node in state.nodes:
                status = "running" if node.pid in alive else "dead"
                print(f"{node.name}  pid {node.pid}  {status}  http {node.url}  transport {node.transport_port}"
                      f"  {node.dir}")
            health = cluster_health(state) if alive else None
            if health is not None:
                print(f"health {health.get('status')}  nodes {health.get('number_of_nodes')}  "
                      f"active shards {health.get('active_shards')}  unassigned {health.get('unassigned_shards')}")
            print(f"RAG_OPENSEARCH_URL={','.join(n.url for n in state.nodes if n.pid in alive)}")
            return 0 if alive else 1
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
