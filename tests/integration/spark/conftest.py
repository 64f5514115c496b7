"""One Spark session for the whole test session (it takes ~10 s to start): local[2] with the
connector packages and the local Cassandra, shared by every Spark test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from jobs.spark.session import SparkOptions, spark_session
from twin.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[SparkSession]:
    session = spark_session(settings, SparkOptions(master="local[2]"))
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()
