"""Apache Cassandra 5.0, single node, from the cassandra-all jars on Maven Central.

The Apache tarball (with bin/ and conf/) is not on Maven Central, so the JVM flags of its
conf/jvm-server.options and conf/jvm17-server.options live here. See infra/cassandra/NOTES.md.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import ClassVar

from localstack.java import Java
from localstack.server import Health, Launch, Server, port_open, render
from twin.clients import cassandra_cluster

# From Cassandra 5.0's conf/jvm17-server.options: the JPMS openings it needs on Java 17.
_JPMS = """
--add-exports java.base/jdk.internal.misc=ALL-UNNAMED
--add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
--add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
--add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
--add-exports java.sql/java.sql=ALL-UNNAMED
--add-exports java.base/java.lang.ref=ALL-UNNAMED
--add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
--add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
--add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
--add-opens java.base/java.lang.module=ALL-UNNAMED
--add-opens java.base/jdk.internal.loader=ALL-UNNAMED
--add-opens java.base/jdk.internal.ref=ALL-UNNAMED
--add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
--add-opens java.base/jdk.internal.math=ALL-UNNAMED
--add-opens java.base/jdk.internal.module=ALL-UNNAMED
--add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
--add-opens java.base/sun.nio.ch=ALL-UNNAMED
--add-opens java.base/java.io=ALL-UNNAMED
--add-opens java.base/java.lang.reflect=ALL-UNNAMED
--add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
--add-opens java.base/java.lang=ALL-UNNAMED
--add-opens java.base/java.util=ALL-UNNAMED
""".split()  # noqa: SIM905 - kept as the options file has them, one per line

_PR_CAPBSET_DROP = 24
_CAP_IPC_LOCK = 14


def _drop_ipc_lock() -> None:
    # Cassandra always calls mlockall(); as root that pins the whole heap (RSS ~1.5 GB instead of
    # ~0.6 GB) and slows the start by seconds. Without CAP_IPC_LOCK the call fails harmlessly.
    if os.geteuid() == 0:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_CAPBSET_DROP, _CAP_IPC_LOCK, 0, 0, 0)


class Cassandra(Server):
    name = "cassandra"
    version = "5.0.9"
    # 5.0 runs on 11 and 17; Java 24+ removed the SecurityManager its UDF sandbox needs.
    java_min = 11
    java_max: ClassVar[int | None] = 17

    @property
    def ports(self) -> dict[str, int]:
        i = self.settings.infra
        return {"native": i.cassandra_port, "storage": i.cassandra_storage_port, "jmx": i.cassandra_jmx_port}

    @property
    def address(self) -> str:
        return f"{','.join(self.settings.cassandra.contact_points)}:{self.settings.cassandra.port}"

    @property
    def main_log(self) -> Path:
        return self.log_dir / "system.log"

    @property
    def lib(self) -> Path:
        return self.dist_dir / "lib"

    def prepare(self, java: Java) -> None:
        i = self.settings.infra
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "triggers").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        render(
            self.templates / "cassandra.yaml.tmpl",
            self.conf_dir / "cassandra.yaml",
            data_dir=self.data_dir / "data",
            commitlog_dir=self.data_dir / "commitlog",
            saved_caches_dir=self.data_dir / "saved_caches",
            hints_dir=self.data_dir / "hints",
            cdc_dir=self.data_dir / "cdc_raw",
            native_port=i.cassandra_port,
            storage_port=i.cassandra_storage_port,
            listen_address="127.0.0.1",
        )
        render(self.templates / "logback.xml.tmpl", self.conf_dir / "logback.xml", log_dir=self.log_dir)

    def launch(self, java: Java) -> Launch:
        i = self.settings.infra
        jamm = sorted(self.lib.glob("jamm-*.jar"))
        argv = [
            str(java.executable),
            f"-Xms{i.cassandra_heap}",
            f"-Xmx{i.cassandra_heap}",
            "-Xss256k",
            # G1 block of conf/jvm17-server.options
            "-XX:+UseG1GC",
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxTenuringThreshold=1",
            "-XX:G1HeapRegionSize=16m",
            "-XX:G1RSetUpdatingPauseTimePercent=5",
            "-XX:MaxGCPauseMillis=300",
            "-XX:InitiatingHeapOccupancyPercent=70",
            # conf/jvm-server.options
            "-XX:+UseThreadPriorities",
            "-XX:+HeapDumpOnOutOfMemoryError",
            f"-XX:HeapDumpPath={self.log_dir}",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:+UseTLAB",
            "-XX:+ResizeTLAB",
            "-XX:+PerfDisableSharedMem",
            "-ea",
            "-da:net.openhft...",
            "-Djava.net.preferIPv4Stack=true",
            "-Djdk.attach.allowAttachSelf=true",
            *_JPMS,
            "-Dio.netty.tryReflectionSetAccessible=true",
            "-Dio.netty.allocator.useCacheForAllThreads=true",
            "-Dio.netty.allocator.maxOrder=11",
            *(f"-javaagent:{j}" for j in jamm[-1:]),
            f"-Dtwin.server={self.name}",
            f"-Dtwin.state={self.root}",
            f"-Dcassandra.config=file://{self.conf_dir / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile=file://{self.conf_dir / 'logback.xml'}",
            f"-Dcassandra.logdir={self.log_dir}",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.triggers_dir={self.conf_dir / 'triggers'}",
            "-Dcassandra-foreground=yes",
            # JMX on loopback only, registry and RMI server on one port (no random extra port).
            f"-Dcassandra.jmx.local.port={i.cassandra_jmx_port}",
            f"-Dcom.sun.management.jmxremote.rmi.port={i.cassandra_jmx_port}",
            "-Dcom.sun.management.jmxremote.authenticate=false",
            # One node: nobody to gossip with or to tell about a shutdown.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Dcassandra.shutdown_announce_in_ms=0",
            "-Dcassandra.libjemalloc=-",
            "-cp",
            str(self.lib / "*"),
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        env = self.base_env(java)
        env["MALLOC_ARENA_MAX"] = "4"
        return Launch(argv=argv, env=env, cwd=self.data_dir, preexec=_drop_ipc_lock)

    def check(self, timeout: float) -> Health:
        cfg = self.settings.cassandra
        if self.is_local() and not port_open(cfg.contact_points[0], cfg.port):
            return Health(False, detail="port closed")
        cluster = cassandra_cluster(
            self.settings, connect_timeout=timeout, control_connection_timeout=timeout
        )
        try:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local", timeout=timeout).one()
            return Health(True, version=row.release_version, detail="CQL answers")
        finally:
            cluster.shutdown()
