"""The Spark session of the analytics jobs: master, connector packages and the Cassandra connection
from our settings, and one clear line when Spark cannot start.

Packages resolve from Maven Central into the Ivy cache (``~/.ivy2``) through an ivysettings file
whose only resolver is the configured repository: Spark's default chain looks in ``~/.m2`` first,
where ``twin infra fetch`` leaves poms without jars, and then fails instead of falling back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from twin.errors import AnalyticsError
from twin.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The Spark Cassandra Connector's newest release supports Spark 3.5 (Scala 2.12 like pyspark's jars).
CASSANDRA_CONNECTOR = "com.datastax.spark:spark-cassandra-connector_2.12:3.5.1"
# Maven Central serves spark-sql-kafka for Scala 2.12 up to 3.5.7; a 3.5.x source runs on any 3.5.
KAFKA_SOURCE = "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7"
AVRO = "org.apache.spark:spark-avro_2.12:3.5.9"
PACKAGES = (CASSANDRA_CONNECTOR, KAFKA_SOURCE, AVRO)

_IVY_SETTINGS = """<ivysettings>
  <settings defaultResolver="central"/>
  <resolvers>
    <ibiblio name="central" m2compatible="true" root="{root}"/>
  </resolvers>
</ivysettings>
"""


@dataclass(frozen=True, slots=True)
class SparkOptions:
    """What a job's session needs beyond the settings."""

    master: str | None = None
    """None: ``settings.spark.master``."""
    packages: tuple[str, ...] = PACKAGES
    cassandra: bool = True
    """Point the connector at the settings' Cassandra."""


def java_home(settings: Settings) -> str | None:
    """The JDK Spark will use: JAVA_HOME/TWIN_JAVA_HOME, else ``java`` on PATH (None: none found)."""
    if settings.java_home is not None and (settings.java_home / "bin" / "java").exists():
        return str(settings.java_home)
    found = shutil.which("java")
    return str(Path(found).resolve().parent.parent) if found else None


def spark_conf(settings: Settings, options: SparkOptions, ivy_settings: Path) -> dict[str, str]:
    """Every Spark setting the session is built with (also what ``spark-submit --conf`` needs)."""
    s = settings.spark
    conf: dict[str, str] = {
        "spark.app.name": s.app_name,
        "spark.ui.enabled": "false",
        "spark.driver.memory": s.driver_memory,
        "spark.sql.shuffle.partitions": str(s.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
    }
    if options.packages:
        conf["spark.jars.packages"] = ",".join(options.packages)
        conf["spark.jars.ivySettings"] = str(ivy_settings)
        if s.ivy_dir is not None:
            conf["spark.jars.ivy"] = str(s.ivy_dir)
    if options.cassandra:
        c = settings.cassandra
        conf["spark.cassandra.connection.host"] = ",".join(c.contact_points)
        conf["spark.cassandra.connection.port"] = str(c.port)
        conf["spark.cassandra.connection.localDC"] = c.local_dc
        conf["spark.cassandra.connection.timeoutMS"] = str(int(c.connect_timeout_s * 1000))
        conf["spark.cassandra.read.timeoutMS"] = str(int(max(c.request_timeout_s, 60) * 1000))
        if c.username:
            conf["spark.cassandra.auth.username"] = c.username
            conf["spark.cassandra.auth.password"] = c.password.get_secret_value() if c.password else ""
        if c.ssl_ca_location is not None:
            conf["spark.cassandra.connection.ssl.enabled"] = "true"
            conf["spark.cassandra.connection.ssl.trustStore.type"] = "PEM"
            conf["spark.cassandra.connection.ssl.trustStore.path"] = str(c.ssl_ca_location)
    conf.update(s.conf)
    return conf


def ivy_settings_file(settings: Settings) -> Path:
    """An ivysettings.xml resolving only from ``settings.spark.repository`` (written once per root)."""
    root = settings.spark.repository.rstrip("/") + "/"
    directory = Path(tempfile.gettempdir()) / "factory-twin-spark"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ivysettings-{hashlib.sha256(root.encode()).hexdigest()[:12]}.xml"
    text = _IVY_SETTINGS.format(root=root)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Path]:
    """Send this process's fds 1 and 2 (inherited by the JVM that pyspark launches: Ivy's resolution
    report, log4j's start-up warnings) to a file meanwhile."""
    with tempfile.NamedTemporaryFile(prefix="spark-start-", suffix=".log", delete=False) as f:
        path = Path(f.name)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield path
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(fd)
        for s in saved:
            os.close(s)


_UNRESOLVED = re.compile(r"unresolved dependency: ([^\s]+)")
_NOT_FOUND = re.compile(r"module not found: ([^\s]+)")


def start_failure(log: str, settings: Settings) -> str:
    """The one line for a session that did not start, from what the JVM printed."""
    missing = _UNRESOLVED.findall(log) or _NOT_FOUND.findall(log)
    if missing:
        return (
            f"Spark packages could not be resolved from {settings.spark.repository}: "
            f"{', '.join(dict.fromkeys(missing))} (check the network or TWIN_SPARK__REPOSITORY)"
        )
    if "download failed" in log or "UnknownHostException" in log or "Connection refused" in log:
        return f"Spark packages could not be downloaded from {settings.spark.repository} (check the network)"
    if "UnsupportedClassVersionError" in log or "Unrecognized option" in log:
        return "Spark 3.5 needs Java 8, 11 or 17: set JAVA_HOME to a JDK 17"
    last = next((line.strip() for line in reversed(log.splitlines()) if line.strip()), "")
    return f"Spark did not start: {last or 'its Java process exited'}"


def spark_session(settings: Settings, options: SparkOptions | None = None) -> SparkSession:
    """A session (``getOrCreate``: one per process) or an ``AnalyticsError`` saying why not."""
    options = options or SparkOptions()
    home = java_home(settings)
    if home is None:
        msg = "Java not found: Spark needs a JDK 17 (install openjdk-17-jdk-headless or set JAVA_HOME)"
        raise AnalyticsError(msg)
    os.environ.setdefault("JAVA_HOME", home)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(options.master or settings.spark.master)
    for key, value in spark_conf(settings, options, ivy_settings_file(settings)).items():
        builder = builder.config(key, value)
    with _captured_stderr() as log:
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # pyspark raises PySparkRuntimeError / Py4J errors of many kinds
            text = log.read_text(errors="replace")
            raise AnalyticsError(start_failure(text or str(exc), settings)) from None
    log.unlink(missing_ok=True)
    session.sparkContext.setLogLevel("ERROR")
    return session
