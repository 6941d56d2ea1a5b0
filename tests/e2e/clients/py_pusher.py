#!/usr/bin/env python3
"""Pushes a fixed set of metrics to a push-gateway (or any
Pushgateway-compatible server) with the official Python client,
prometheus_client, in its text format.

Usage: py_pusher.py HOST:PORT STEP

The main group is job="backup/nightly" (a job name the client sends as
`job@base64/...`), instance="db1:9100" and shard="eu 7" (a space: sent as
base64 too). STEP is one of:

  push      PUT a gauge, a counter, a histogram and a summary
  pushadd   POST the gauge with a new value plus a new gauge
  replace   PUT the new gauge only
  other     PUT a second group, job="py-simple", zone="a" (no instance)
  conflict  PUT to the second group a summary named like the main group's
            gauge, which the gateway must refuse (exits 0 only on a 400)
  delete    DELETE the main group
  batch     PUT job="batch", instance="nightly": batch_records_processed 1234

Any error is printed and the program exits with status 1.
"""

import sys
import urllib.error

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

JOB = "backup/nightly"
GROUPING = {"instance": "db1:9100", "shard": "eu 7"}
OTHER_JOB = "py-simple"
OTHER_GROUPING = {"zone": "a"}
TIMEOUT = 10


def queue_depth(registry, value):
    g = Gauge(
        "py_queue_depth",
        "Items waiting, by queue.",
        ["queue", "shard"],
        registry=registry,
    )
    # The grouping key's shard must win over this one.
    g.labels(queue="mail", shard="from-body").set(value)


def last_success(registry):
    g = Gauge(
        "py_last_success_unixtime",
        "When the backup last succeeded.",
        registry=registry,
    )
    g.set(1700000000)


def main(gateway, step):
    registry = CollectorRegistry()
    if step == "push":
        queue_depth(registry, 17)
        c = Counter("py_jobs", "Jobs run.", ["kind"], registry=registry)
        c.labels(kind="full").inc(3)
        h = Histogram(
            "py_job_seconds",
            "Job duration.",
            buckets=(0.5, 2, 8),
            registry=registry,
        )
        for v in (0.25, 1, 1, 4, 64):
            h.observe(v)
        s = Summary("py_payload_bytes", "Payload size.", registry=registry)
        s.observe(100)
        s.observe(250)
        push_to_gateway(gateway, JOB, registry, GROUPING, timeout=TIMEOUT)
    elif step == "pushadd":
        queue_depth(registry, 5)
        last_success(registry)
        pushadd_to_gateway(gateway, JOB, registry, GROUPING, timeout=TIMEOUT)
    elif step == "replace":
        last_success(registry)
        push_to_gateway(gateway, JOB, registry, GROUPING, timeout=TIMEOUT)
    elif step == "other":
        g = Gauge(
            "py_temperature_celsius",
            "Sensor temperature.",
            ["instance", "sensor"],
            registry=registry,
        )
        g.labels(instance="own", sensor="cpu").set(48.5)
        Gauge("py_up", "Whether the sensor answers.", registry=registry).set(1)
        push_to_gateway(
            gateway, OTHER_JOB, registry, OTHER_GROUPING, timeout=TIMEOUT
        )
    elif step == "conflict":
        # `py_queue_depth` is a gauge in the main group already.
        Summary("py_queue_depth", "Wrong type.", registry=registry).observe(1)
        try:
            push_to_gateway(
                gateway, OTHER_JOB, registry, OTHER_GROUPING, timeout=TIMEOUT
            )
        except urllib.error.HTTPError as e:
            if e.code == 400:
                return
            raise
        raise SystemExit("conflicting push was accepted, expected 400")
    elif step == "delete":
        delete_from_gateway(gateway, JOB, GROUPING, timeout=TIMEOUT)
    elif step == "batch":
        Gauge(
            "batch_records_processed",
            "Records the last batch run processed.",
            registry=registry,
        ).set(1234)
        push_to_gateway(
            gateway, "batch", registry, {"instance": "nightly"}, timeout=TIMEOUT
        )
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    try:
        main(sys.argv[1], sys.argv[2])
    except (OSError, urllib.error.URLError) as e:
        sys.stderr.write(f"py_pusher {sys.argv[2]}: {e}\n")
        if isinstance(e, urllib.error.HTTPError):
            sys.stderr.write(e.read().decode("utf-8", "replace") + "\n")
        sys.exit(1)
