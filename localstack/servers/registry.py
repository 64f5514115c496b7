"""Apicurio Registry 3.3 (Quarkus), serving the Confluent Schema Registry API at /apis/ccompat/v7.

Confluent's own registry is not on Maven Central and karapace is not on PyPI; Apicurio is, and its
ccompat API is what `confluent_kafka.schema_registry` speaks. Storage is an on-disk H2 database so
schema ids survive restarts (ids are baked into every Kafka record). See infra/registry/NOTES.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import httpx

from localstack.java import Java
from localstack.server import Health, Launch, Server, render


class Registry(Server):
    name = "registry"
    version = "3.3.3"
    java_min = 21  # the 3.x classes are Java 21 bytecode
    java_max: ClassVar[int | None] = None

    @property
    def ports(self) -> dict[str, int]:
        i = self.settings.infra
        return {"http": i.registry_port, "management": i.registry_management_port}

    @property
    def address(self) -> str:
        return self.settings.registry.url

    @property
    def main_log(self) -> Path:
        return self.log_dir / "registry.log"

    @property
    def home(self) -> Path:
        return self.dist_dir / f"apicurio-registry-app-{self.version}"

    def prepare(self, java: Java) -> None:
        i = self.settings.infra
        (self.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        render(
            self.templates / "registry.properties.tmpl",
            self.conf_dir / "registry.properties",
            http_port=i.registry_port,
            management_port=i.registry_management_port,
            data_dir=self.data_dir,
            log_file=self.main_log,
        )

    def launch(self, java: Java) -> Launch:
        argv = [
            str(java.executable),
            *self.jvm_common(self.settings.infra.registry_heap),
            f"-Djava.io.tmpdir={self.data_dir / 'tmp'}",
            f"-Dquarkus.config.locations={self.conf_dir / 'registry.properties'}",
            "-jar",
            str(self.home / "quarkus-run.jar"),
        ]
        # Quarkus also reads ./.env and ./config/ from its working directory; keep it in ours.
        env = self.base_env(java)
        return Launch(argv=argv, env=env, cwd=self.conf_dir)

    def check(self, timeout: float) -> Health:
        cfg = self.settings.registry
        auth = None
        if cfg.username is not None:
            auth = (cfg.username, cfg.password.get_secret_value() if cfg.password else "")
        verify: bool | str = str(cfg.ssl_ca_location) if cfg.ssl_ca_location else True
        with httpx.Client(timeout=timeout, auth=auth, verify=verify) as http:
            if self.is_local():
                # Readiness includes the database check, which /subjects alone would not show.
                mgmt = self.settings.infra.registry_management_port
                ready = http.get(f"http://127.0.0.1:{mgmt}/health/ready")
                if ready.status_code != 200:
                    return Health(False, detail=f"readiness {ready.status_code}")
            subjects = http.get(f"{cfg.url.rstrip('/')}/subjects")
            if subjects.status_code != 200:
                return Health(False, detail=f"GET /subjects answered {subjects.status_code}")
            version = None
            base = cfg.url.split("/apis/")[0]
            info = http.get(f"{base}/apis/registry/v3/system/info")
            if info.status_code == 200:
                version = info.json().get("version")
            return Health(True, version=version, detail=f"{len(subjects.json())} subject(s)")
