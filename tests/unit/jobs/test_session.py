"""The one line a Spark job fails with: unresolved packages, a wrong Java, Cassandra gone."""

from __future__ import annotations

import pytest

from jobs.spark.run import spark_error
from jobs.spark.session import PACKAGES, SparkOptions, spark_conf, spark_session, start_failure
from twin.errors import AnalyticsError
from twin.settings import Settings

IVY = """:: problems summary ::
:::: WARNINGS
		module not found: com.datastax.spark#spark-cassandra-connector_2.12;9.9.9
:::: ERRORS
:: USE VERBOSE OR DEBUG MESSAGE LEVEL FOR MORE DETAILS
Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: com.datastax.spark#spark-cassandra-connector_2.12;9.9.9: not found]
"""


def test_unresolved_packages_name_the_module_and_the_repository() -> None:
    line = start_failure(IVY, Settings())
    assert line.startswith("Spark packages could not be resolved from https://repo1.maven.org/maven2/")
    assert "spark-cassandra-connector_2.12;9.9.9" in line and "\n" not in line


def test_a_wrong_java_and_an_unknown_failure_are_one_line() -> None:
    assert "JDK 17" in start_failure("java.lang.UnsupportedClassVersionError: ...", Settings())
    assert start_failure("boom\nlast words\n", Settings()) == "Spark did not start: last words"


def test_no_java_at_all_is_said_before_spark_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(AnalyticsError, match=r"^Java not found"):
        spark_session(Settings())


def test_the_connector_follows_our_cassandra_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_CASSANDRA__CONTACT_POINTS", '["cass-a","cass-b"]')
    monkeypatch.setenv("TWIN_CASSANDRA__USERNAME", "analytics")
    monkeypatch.setenv("TWIN_CASSANDRA__PASSWORD", "secret")
    monkeypatch.setenv("TWIN_SPARK__CONF", '{"spark.executor.memory": "4g"}')
    from pathlib import Path

    conf = spark_conf(Settings(), SparkOptions(), Path("/tmp/ivy.xml"))
    assert conf["spark.cassandra.connection.host"] == "cass-a,cass-b"
    assert (conf["spark.cassandra.auth.username"], conf["spark.cassandra.auth.password"]) == (
        "analytics",
        "secret",
    )
    assert conf["spark.jars.packages"] == ",".join(PACKAGES)
    assert conf["spark.executor.memory"] == "4g"


def test_a_spark_failure_out_of_the_jvm_is_its_first_meaningful_line() -> None:
    cassandra = Exception("An error occurred while calling o1.load.\n: java.io.IOException: Failed to open "
                          "native connection to Cassandra at {127.0.0.1:9042}\n\tat com.datastax...")  # fmt: skip
    assert str(spark_error(cassandra, Settings())).startswith("Cassandra at 127.0.0.1:9042 is not reachable")
    other = Exception(
        "An error occurred while calling o9.collect.\n: org.apache.spark.SparkException: Job aborted\n\tat x"
    )
    assert (
        str(spark_error(other, Settings()))
        == "the Spark job failed: org.apache.spark.SparkException: Job aborted"
    )
