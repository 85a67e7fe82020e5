"""Fleet analytics: a PySpark Structured Streaming job over every site's alerts and EVE window
results (docs/fleet-analytics.md).

Input, one of:
- ``--source files``: the JSON-lines files ``netwarden fleet collect --out DIR`` finishes
  (``DIR/alerts/``, ``DIR/windows/``), read as a file stream;
- ``--source kafka``: the Kafka topics an MQTT-to-Kafka bridge fills (the message value is the
  alert or window JSON netwarden published; needs the spark-sql-kafka package).

Outputs (JSON, one folder each under ``--out``), all in event time with a watermark, so late
data is bounded and state is dropped:
- ``alerts_per_window``: alerts per site, detector and severity per 30-minute window
  (duplicates of an alert id, e.g. an at-least-once redelivery, counted once);
- ``top_talkers``: the source addresses with most alerts in each window, fleet-wide;
- ``dhcp_transactions``: the seed's DHCP view across the fleet, per site and transaction id per
  30-minute window: max source IP, hostname, client and requested IP, last time, count;
- ``site_outliers``: sites whose alert count in a window departs from the rest of the fleet's
  (at least ``--outlier-ratio`` times the mean of the other sites, and ``--outlier-min``).

Each query writes what changed in each micro-batch (update mode through ``foreachBatch``, since
the file sink only appends and a ranking needs the whole window): a later row for the same key
supersedes an earlier one. Run it with ``--trigger available-now`` for a catch-up (and the test),
``--trigger 30s`` as a service.
"""

from __future__ import annotations

import argparse
import os
from typing import Callable

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

ALERT_SCHEMA = T.StructType(
    [
        T.StructField("id", T.StringType()),
        T.StructField("ts_ms", T.LongType()),
        T.StructField("site", T.StringType()),
        T.StructField("device", T.StringType()),
        T.StructField("detector", T.StringType()),
        T.StructField("severity", T.StringType()),
        T.StructField("score", T.DoubleType()),
        T.StructField(
            "subject",
            T.StructType(
                [
                    T.StructField("kind", T.StringType()),
                    T.StructField("src_addr", T.StringType()),
                    T.StructField("dst_addr", T.StringType()),
                    T.StructField("dst_port", T.IntegerType()),
                    T.StructField("protocol", T.IntegerType()),
                    T.StructField("target", T.StringType()),
                ]
            ),
        ),
        T.StructField(
            "rule",
            T.StructType(
                [
                    T.StructField("signature_id", T.LongType()),
                    T.StructField("signature", T.StringType()),
                    T.StructField("category", T.StringType()),
                    T.StructField("community_id", T.StringType()),
                ]
            ),
        ),
        T.StructField("_topic", T.StringType()),
        T.StructField("_received_ms", T.LongType()),
    ]
)

WINDOW_SCHEMA = T.StructType(
    [
        T.StructField("view", T.StringType()),
        T.StructField("key", T.StringType()),
        T.StructField("site", T.StringType()),
        T.StructField("device", T.StringType()),
        T.StructField("window_start_ms", T.LongType()),
        T.StructField("window_end_ms", T.LongType()),
        T.StructField("count", T.LongType()),
        T.StructField("max", T.MapType(T.StringType(), T.StringType())),
        T.StructField("last_ts_ms", T.LongType()),
        T.StructField("complete", T.BooleanType()),
    ]
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=["files", "kafka"], default="files")
    p.add_argument("--in", dest="input", help="fleet collect's --out directory (files)")
    p.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers (kafka)")
    p.add_argument("--kafka-alerts-topic", default="netwarden.alerts")
    p.add_argument("--kafka-windows-topic", default="netwarden.windows")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--checkpoint", help="checkpoint directory [default: OUT/_checkpoints]")
    p.add_argument("--window", default="30 minutes")
    p.add_argument("--watermark", default="1 hour", help="how late an event may arrive")
    p.add_argument("--trigger", default="available-now", help="available-now or an interval (30s)")
    p.add_argument("--top", type=int, default=10, help="top talkers per window")
    p.add_argument("--outlier-ratio", type=float, default=3.0)
    p.add_argument("--outlier-min", type=int, default=5)
    p.add_argument("--master", default=os.environ.get("SPARK_MASTER"))
    a = p.parse_args(argv)
    if a.source == "files" and not a.input:
        p.error("--source files needs --in DIR")
    if a.source == "kafka" and not a.kafka_bootstrap:
        p.error("--source kafka needs --kafka-bootstrap")
    return a


def session(master: str | None) -> SparkSession:
    b = SparkSession.builder.appName("netwarden-fleet")
    if master:
        b = b.master(master)
    return b.getOrCreate()


def read_stream(spark: SparkSession, a: argparse.Namespace, kind: str, schema: T.StructType) -> DataFrame:
    if a.source == "files":
        return (
            spark.readStream.schema(schema)
            .option("mode", "DROPMALFORMED")
            .json(os.path.join(a.input, kind))
        )
    topic = a.kafka_alerts_topic if kind == "alerts" else a.kafka_windows_topic
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", a.kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    return raw.select(F.from_json(F.col("value").cast("string"), schema).alias("r")).select("r.*")


def alerts_frame(df: DataFrame, watermark: str) -> DataFrame:
    """Alerts with an event-time column, de-duplicated by id within the watermark."""
    return (
        df.where(F.col("id").isNotNull() & F.col("ts_ms").isNotNull())
        .withColumn("ts", F.timestamp_millis("ts_ms"))
        .withWatermark("ts", watermark)
        .dropDuplicatesWithinWatermark(["id"])
    )


def alerts_per_window(alerts: DataFrame, window: str) -> DataFrame:
    return (
        alerts.groupBy(F.window("ts", window).alias("w"), "site", "detector", "severity")
        .agg(F.count("*").alias("alerts"))
        .select(
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            "site",
            "detector",
            "severity",
            "alerts",
        )
    )


def talkers(alerts: DataFrame, window: str) -> DataFrame:
    return (
        alerts.where(F.col("subject.src_addr").isNotNull())
        .groupBy(F.window("ts", window).alias("w"), "site", F.col("subject.src_addr").alias("src_addr"))
        .agg(F.count("*").alias("alerts"))
        .select(F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"), "site", "src_addr", "alerts")
    )


def site_counts(alerts: DataFrame, window: str) -> DataFrame:
    return (
        alerts.groupBy(F.window("ts", window).alias("w"), "site")
        .agg(F.count("*").alias("alerts"))
        .select(F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"), "site", "alerts")
    )


def dhcp_transactions(windows: DataFrame, window: str, watermark: str) -> DataFrame:
    """The sites' DHCP window results merged per site, transaction and 30-minute window (a site
    that restarted sends an incomplete result and later more for the same key)."""
    d = (
        windows.where(F.col("view") == "dhcp")
        .withColumn("ts", F.timestamp_millis("window_start_ms"))
        .withWatermark("ts", watermark)
    )
    m = F.col("max")
    return (
        d.groupBy(F.window("ts", window).alias("w"), "site", F.col("key").alias("transaction_id"))
        .agg(
            F.max(m.getItem("src_ip")).alias("max_src_ip"),
            F.max(m.getItem("dhcp.hostname")).alias("hostname"),
            F.max(m.getItem("dhcp.client_ip")).alias("client_ip"),
            F.max(m.getItem("dhcp.requested_ip")).alias("requested_ip"),
            F.timestamp_millis(F.max("last_ts_ms")).alias("last_ts"),
            F.sum("count").alias("count"),
        )
        .select(F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"), "site", "transaction_id",
                "max_src_ip", "hostname", "client_ip", "requested_ip", "last_ts", "count")
    )


def rank_top(batch: DataFrame, top: int) -> DataFrame:
    """The `top` source addresses per window across the fleet."""
    w = Window.partitionBy("window_start").orderBy(F.desc("alerts"), F.asc("src_addr"))
    return batch.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= top)


def outliers(batch: DataFrame, ratio: float, minimum: int) -> DataFrame:
    """Sites whose alerts in a window are at least `ratio` times the mean of the other sites'
    (sites without alerts in the window count as 0 only if they appear in it; with one site in
    a window there is no fleet to compare with)."""
    per = Window.partitionBy("window_start")
    b = (
        batch.withColumn("fleet_sites", F.count("*").over(per))
        .withColumn("fleet_alerts", F.sum("alerts").over(per))
        .where(F.col("fleet_sites") > 1)
        .withColumn("others_mean", (F.col("fleet_alerts") - F.col("alerts")) / (F.col("fleet_sites") - 1))
        .withColumn("ratio", F.col("alerts") / F.greatest(F.col("others_mean"), F.lit(1.0)))
    )
    return b.where((F.col("alerts") >= minimum) & (F.col("ratio") >= ratio))


def sink(out: str, name: str, transform: Callable[[DataFrame], DataFrame] | None = None):
    path = os.path.join(out, name)

    def write(batch: DataFrame, batch_id: int) -> None:
        if transform is not None:
            batch = transform(batch)
        batch.withColumn("batch_id", F.lit(batch_id)).write.mode("append").json(path)

    return write


def start(df: DataFrame, a: argparse.Namespace, name: str, fn) -> "object":
    w = df.writeStream.outputMode("update").foreachBatch(fn).option(
        "checkpointLocation", os.path.join(a.checkpoint or os.path.join(a.out, "_checkpoints"), name)
    )
    if a.trigger == "available-now":
        w = w.trigger(availableNow=True)
    else:
        w = w.trigger(processingTime=a.trigger)
    return w.queryName(name).start()


def run(a: argparse.Namespace, spark: SparkSession) -> None:
    alerts = alerts_frame(read_stream(spark, a, "alerts", ALERT_SCHEMA), a.watermark)
    windows = read_stream(spark, a, "windows", WINDOW_SCHEMA)
    queries = [
        start(alerts_per_window(alerts, a.window), a, "alerts_per_window", sink(a.out, "alerts_per_window")),
        start(talkers(alerts, a.window), a, "top_talkers", sink(a.out, "top_talkers", lambda b: rank_top(b, a.top))),
        start(dhcp_transactions(windows, a.window, a.watermark), a, "dhcp_transactions", sink(a.out, "dhcp_transactions")),
        start(
            site_counts(alerts, a.window),
            a,
            "site_outliers",
            sink(a.out, "site_outliers", lambda b: outliers(b, a.outlier_ratio, a.outlier_min)),
        ),
    ]
    for q in queries:
        q.awaitTermination()


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    spark = session(a.master)
    try:
        run(a, spark)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
