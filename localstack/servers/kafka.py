"""Apache Kafka, single node, KRaft (broker and controller in one JVM)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import ClassVar

from localstack.java import Java
from localstack.server import Health, Launch, Server, port_open, render
from twin.clients import kafka_admin
from twin.errors import InfraError


class Kafka(Server):
    name = "kafka"
    # 3.9.x: faust-streaming users report trouble with Kafka 4 brokers (FACTS.md).
    version = "3.9.2"
    java_min = 11
    java_max: ClassVar[int | None] = 23

    @property
    def ports(self) -> dict[str, int]:
        i = self.settings.infra
        return {"broker": i.kafka_port, "controller": i.kafka_controller_port}

    @property
    def address(self) -> str:
        return self.settings.kafka.bootstrap_servers

    @property
    def main_log(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def classpath(self) -> str:
        return str(self.dist_dir / "lib" / "*")

    def prepare(self, java: Java) -> None:
        i = self.settings.infra
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        render(
            self.templates / "server.properties.tmpl",
            self.conf_dir / "server.properties",
            port=i.kafka_port,
            controller_port=i.kafka_controller_port,
            data_dir=self.data_dir,
        )
        render(
            self.templates / "log4j.properties.tmpl",
            self.conf_dir / "log4j.properties",
            log_dir=self.log_dir,
        )
        if (self.data_dir / "meta.properties").exists():
            return
        # KRaft storage must be formatted once with a cluster id before the first start.
        cluster_id = _kraft_cluster_id()
        cmd = [
            str(java.executable),
            "-cp",
            self.classpath,
            f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j.properties'}",
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            cluster_id,
            "-c",
            str(self.conf_dir / "server.properties"),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
            msg = f"formatting Kafka storage in {self.data_dir} failed: {last[0]}"
            raise InfraError(msg)

    def launch(self, java: Java) -> Launch:
        argv = [
            str(java.executable),
            *self.jvm_common(self.settings.infra.kafka_heap),
            f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            self.classpath,
            "kafka.Kafka",
            str(self.conf_dir / "server.properties"),
        ]
        return Launch(argv=argv, env=self.base_env(java), cwd=self.data_dir)

    def check(self, timeout: float) -> Health:
        host, _, port = self.address.split(",")[0].rpartition(":")
        if self.is_local() and not port_open(host or "127.0.0.1", int(port)):
            return Health(False, detail="port closed")
        admin = kafka_admin(self.settings, **{"socket.connection.setup.timeout.ms": int(timeout * 1000)})
        md = admin.list_topics(timeout=timeout)
        if not md.brokers:
            return Health(False, detail="no brokers in metadata")
        # The Kafka protocol does not expose the broker's release; we know it for the local one.
        version = self.version if self.is_local() else None
        return Health(True, version=version, detail=f"{len(md.brokers)} broker(s), {len(md.topics)} topic(s)")


def _kraft_cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes, URL-safe base64 without padding (what StorageTool
    # random-uuid prints); generating it here saves a JVM start.
    import base64

    # Like Kafka's Uuid.randomUuid, never one starting with "-": StorageTool's option parser would
    # read it as an option ("argument --cluster-id/-t: expected one argument"), 1 start in 64.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
