"""One small local Spark session for every Spark test.

Tests marked ``spark`` get the session from the ``spark`` fixture. Without pyspark or Java
they skip with the reason, unless ``GRAPHSEL_REQUIRE_SPARK=1`` (set by CI, which installs
both), in which case a missing one is a failure, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # registered here too, so that --strict-markers accepts it before setup.cfg lists it
    config.addinivalue_line("markers", "spark: needs pyspark and Java 17 (a local session)")


def spark_missing() -> str | None:
    """Why the Spark tests cannot run here, or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]')"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "Java is not installed (apt-get install openjdk-17-jre-headless)"
    return None


def skip_without_spark() -> None:
    reason = spark_missing()
    if reason is None:
        return
    if os.environ.get("GRAPHSEL_REQUIRE_SPARK") == "1":
        pytest.fail(reason + " and GRAPHSEL_REQUIRE_SPARK=1", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A ``local[1]`` session with :data:`graphsel.engines.spark.SMALL_CONF`, stopped at the end."""
    skip_without_spark()
    from graphsel.engines.spark import SMALL_CONF, spark_session

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    session = spark_session("local[1]", SMALL_CONF, app_name="graphsel-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The synthetic default at scale 0.05 as (source, target) Parquet paths (written once:
    every test only reads them)."""
    from graphsel.data.datasets import get_dataset
    from graphsel.data.log import write_log

    split = get_dataset("synthetic")(scale=0.05, seed=0)
    folder = tmp_path_factory.mktemp("synthetic")
    return (str(write_log(split.source, folder / "source.parquet")),
            str(write_log(split.target, folder / "target.parquet")))
