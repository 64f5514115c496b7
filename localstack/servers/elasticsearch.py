"""Elasticsearch 8.19 from the integ-test distribution on Maven Central.

It refuses to run as root, so as root it runs as an unprivileged user (created if missing) and
every path it writes is owned by that user. See infra/elasticsearch/NOTES.md for what this
minimal distribution lacks (no GET /, no painless, no ILM or data streams).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

from localstack.java import Java
from localstack.server import Health, Launch, Server, port_open, render
from twin.clients import elasticsearch
from twin.errors import PrerequisiteError

# Used when the state dir is not reachable by the unprivileged user (e.g. under a mode-700 /root).
_FALLBACK_ROOT = Path("/var/lib/factory-twin")


class Elasticsearch(Server):
    name = "elasticsearch"
    version = "8.19.21"
    java_min = 17
    java_max: ClassVar[int | None] = None

    @property
    def ports(self) -> dict[str, int]:
        i = self.settings.infra
        return {"http": i.elasticsearch_port, "transport": i.elasticsearch_transport_port}

    @property
    def address(self) -> str:
        return self.settings.elasticsearch.url

    @property
    def user(self) -> str | None:
        return self.settings.infra.run_as_user if os.geteuid() == 0 else None

    @property
    def instance_dir(self) -> Path:
        """Where ES's config, data, logs and tmp live: under the state dir if its user can reach it."""
        marker = self.root / "run" / "elasticsearch.instance"
        try:
            return Path(marker.read_text().strip())
        except OSError:
            return self.root / "data" / self.name

    @property
    def log_dir(self) -> Path:
        return self.instance_dir / "logs"

    @property
    def console_log(self) -> Path:
        return self.root / "logs" / self.name / "console.log"

    @property
    def main_log(self) -> Path:
        return self.log_dir / "factory-twin.log"  # ES names its log after the cluster

    @property
    def home(self) -> Path:
        return self.dist_dir / f"elasticsearch-{self.version}"

    def prepare(self, java: Java) -> None:
        user = self.user
        if user is not None:
            _ensure_user(user)
        instance = self._choose_instance_dir(user)
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        (self.root / "run" / "elasticsearch.instance").write_text(f"{instance}\n")
        config = instance / "config"
        if not (config / "jvm.options").exists():
            # The zip's config files are mode 660 root: the server user needs its own copy.
            shutil.copytree(self.home / "config", config, dirs_exist_ok=True)
        for sub in ("data", "logs", "tmp"):
            (instance / sub).mkdir(parents=True, exist_ok=True)
        i = self.settings.infra
        render(
            self.templates / "elasticsearch.yml.tmpl",
            config / "elasticsearch.yml",
            http_port=i.elasticsearch_port,
            transport_port=i.elasticsearch_transport_port,
            data_dir=instance / "data",
            log_dir=instance / "logs",
        )
        if user is not None:
            record = pwd.getpwnam(user)
            for path in [instance, *instance.rglob("*")]:
                os.chown(path, record.pw_uid, record.pw_gid, follow_symlinks=False)

    def _choose_instance_dir(self, user: str | None) -> Path:
        preferred = self.root / "data" / self.name
        preferred.mkdir(parents=True, exist_ok=True)
        if user is None or (_user_can(user, "-x", self.root) and _user_can(user, "-r", self.home / "lib")):
            return preferred
        # Mirror the distribution too: its files must be readable by the server user.
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        fallback = _FALLBACK_ROOT / digest
        fallback.mkdir(parents=True, exist_ok=True)
        fallback.chmod(0o755)
        _FALLBACK_ROOT.chmod(0o755)
        dist = fallback / self.home.name
        if not (dist / "lib").exists():
            shutil.copytree(self.home, dist, symlinks=True)
        return fallback

    def _es_home(self) -> Path:
        mirrored = self.instance_dir / self.home.name
        return mirrored if mirrored.exists() else self.home

    def launch(self, java: Java) -> Launch:
        instance = self.instance_dir
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "ES_JAVA_HOME": str(java.home),
            "ES_PATH_CONF": str(instance / "config"),
            "ES_TMPDIR": str(instance / "tmp"),
            "ES_JAVA_OPTS": " ".join(
                [
                    f"-Xms{self.settings.infra.elasticsearch_heap}",
                    f"-Xmx{self.settings.infra.elasticsearch_heap}",
                    f"-Dtwin.server={self.name}",
                    f"-Dtwin.state={self.root}",
                ]
            ),
        }
        home = self._es_home()
        return Launch(argv=[str(home / "bin" / "elasticsearch")], env=env, cwd=home, user=self.user)

    def check(self, timeout: float) -> Health:
        url = self.settings.elasticsearch.url
        if self.is_local() and not port_open("127.0.0.1", self.settings.infra.elasticsearch_port):
            return Health(False, detail="port closed")
        es = elasticsearch(self.settings, request_timeout=timeout, max_retries=0)
        try:
            # This distribution has no GET / (so no info()/ping()): ask the cluster and the node.
            health = es.cluster.health()
            status = health["status"]
            if status not in ("green", "yellow"):
                return Health(False, detail=f"cluster status {status}")
            nodes = es.nodes.info(node_id="_local", metric="_none")["nodes"]
            version = next(iter(nodes.values()))["version"] if nodes else None
            return Health(True, version=version, detail=f"cluster {status} at {url}")
        finally:
            es.close()


def _ensure_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    cmd = [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", user]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        msg = (
            f"Elasticsearch refuses to run as root and creating the user {user!r} failed: "
            f"{out.stderr.strip() or out.returncode}; create it or set TWIN_INFRA__RUN_AS_USER"
        )
        raise PrerequisiteError(msg)


def _user_can(user: str, test_flag: str, path: Path) -> bool:
    out = subprocess.run(["test", test_flag, str(path)], user=user, group=user, extra_groups=[], check=False)
    return out.returncode == 0
