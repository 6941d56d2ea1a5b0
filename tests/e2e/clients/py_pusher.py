#!/usr/bin/env python3
"""Pushes a fixed set of metrics to a push-gateway (or any
Pushgateway-compatible server) with the official Python client,
prometheus_client, in its text format.

Usage: py_pusher.py STEP GATEWAY [GATEWAY...]

Each GATEWAY is HOST:PORT, or COMPRESSION@HOST:PORT to push to it with
compression='gzip' or 'snappy'. One registry is built per run and pushed to
every GATEWAY in turn, so all of them receive the same metrics (the same
`_created` times, the same process metrics up to what changes between two
collections).

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
  every     PUT the third group, job="py-every": every metric type
            (Counter, Gauge, Histogram with the default buckets and with
            its own, Summary, Info, Enum) plus the default registry's
            collectors (process, platform, gc)
  everyadd  POST to the third group: a gauge's new value and a new Enum
  everydel  DELETE the third group

Any error is printed and the program exits with status 1.
"""

import sys
import urllib.error

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    GCCollector,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    Summary,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

JOB = "backup/nightly"
GROUPING = {"instance": "db1:9100", "shard": "eu 7"}
OTHER_JOB = "py-simple"
OTHER_GROUPING = {"zone": "a"}
EVERY_JOB = "py-every"
EVERY_GROUPING = {"instance": "host-1", "run": "a/b c"}
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


def every_type(registry):
    """One metric of each type the client has, as a migrating job has them."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    c = Counter(
        "py_every_requests",
        "Requests by path and code.\nA second line, a \\ backslash, ünïcode.",
        ["path", "code"],
        registry=registry,
    )
    c.labels(path="/", code="200").inc(41)
    c.labels(path='/q?a="b"\\c', code="500").inc()
    c.labels(path="two\nlines, ünïcode", code="404").inc(2.5)
    g = Gauge("py_every_temperature_celsius", "Room temperature.", registry=registry)
    g.set(-3.25)
    Gauge("py_every_ratio", "A tiny ratio.", registry=registry).set(1e-05)
    # Default buckets: .005 .. 10 and +Inf, written as the client writes
    # floats (le="1.0", le="10.0").
    h = Histogram("py_every_latency_seconds", "Latency.", registry=registry)
    for v in (0.001, 0.02, 0.3, 0.3, 0.75, 4, 11):
        h.observe(v)
    hb = Histogram(
        "py_every_size_bytes",
        "Sizes, own buckets.",
        ["kind"],
        buckets=(1e-05, 100, 1000.5, 1e6),
        registry=registry,
    )
    for v in (0, 64, 1000, 2e6):
        hb.labels(kind="blob").observe(v)
    s = Summary("py_every_payload_bytes", "Payload size.", registry=registry)
    s.observe(100)
    s.observe(250.5)
    i = Info("py_every_build", "Build information.", registry=registry)
    i.info({"version": "1.2.3", "branch": "main", "revision": "abc123"})
    e = Enum(
        "py_every_state",
        "Task state.",
        states=["starting", "running", "stopped"],
        registry=registry,
    )
    e.state("running")
    return g


def push_all(method, gateways, job, registry, grouping):
    for spec in gateways:
        compression, _, addr = spec.rpartition("@")
        method(
            addr,
            job,
            registry,
            grouping,
            timeout=TIMEOUT,
            compression=compression or None,
        )


def main(step, gateways):
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
        push_all(push_to_gateway, gateways, JOB, registry, GROUPING)
    elif step == "pushadd":
        queue_depth(registry, 5)
        last_success(registry)
        push_all(pushadd_to_gateway, gateways, JOB, registry, GROUPING)
    elif step == "replace":
        last_success(registry)
        push_all(push_to_gateway, gateways, JOB, registry, GROUPING)
    elif step == "other":
        g = Gauge(
            "py_temperature_celsius",
            "Sensor temperature.",
            ["instance", "sensor"],
            registry=registry,
        )
        g.labels(instance="own", sensor="cpu").set(48.5)
        Gauge("py_up", "Whether the sensor answers.", registry=registry).set(1)
        push_all(push_to_gateway, gateways, OTHER_JOB, registry, OTHER_GROUPING)
    elif step == "conflict":
        # `py_queue_depth` is a gauge in the main group already.
        Summary("py_queue_depth", "Wrong type.", registry=registry).observe(1)
        for addr in gateways:
            try:
                push_to_gateway(
                    addr, OTHER_JOB, registry, OTHER_GROUPING, timeout=TIMEOUT
                )
            except urllib.error.HTTPError as e:
                if e.code == 400:
                    continue
                raise
            raise SystemExit(f"{addr}: conflicting push was accepted, expected 400")
    elif step == "delete":
        for addr in gateways:
            delete_from_gateway(addr, JOB, GROUPING, timeout=TIMEOUT)
    elif step == "batch":
        Gauge(
            "batch_records_processed",
            "Records the last batch run processed.",
            registry=registry,
        ).set(1234)
        push_all(push_to_gateway, gateways, "batch", registry, {"instance": "nightly"})
    elif step == "every":
        every_type(registry)
        push_all(push_to_gateway, gateways, EVERY_JOB, registry, EVERY_GROUPING)
    elif step == "everyadd":
        Gauge("py_every_temperature_celsius", "Room temperature.", registry=registry).set(7)
        Enum(
            "py_every_phase",
            "Run phase.",
            states=["load", "transform", "save"],
            registry=registry,
        ).state("save")
        push_all(pushadd_to_gateway, gateways, EVERY_JOB, registry, EVERY_GROUPING)
    elif step == "everydel":
        for addr in gateways:
            delete_from_gateway(addr, EVERY_JOB, EVERY_GROUPING, timeout=TIMEOUT)
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    try:
        main(sys.argv[1], sys.argv[2:])
    except (OSError, urllib.error.URLError) as e:
        sys.stderr.write(f"py_pusher {sys.argv[1]}: {e}\n")
        if isinstance(e, urllib.error.HTTPError):
            sys.stderr.write(e.read().decode("utf-8", "replace") + "\n")
        sys.exit(1)
