#!/usr/bin/env python3
"""Push metrics with the official Python client, prometheus_client.

push_to_gateway() speaks the Pushgateway's HTTP API over TCP, and
push-gateway serves that API on its Unix socket. A socat bridge joins the
two, on loopback only (anyone who can reach the bridge can push):

    socat TCP-LISTEN:9092,bind=127.0.0.1,fork,reuseaddr \\
          UNIX-CONNECT:/run/push-gateway.sock &
    # (after `make run`, the socket is /tmp/push-gateway.sock)
    python3 examples/push_python.py                  # pushes to 127.0.0.1:9092
    python3 examples/push_python.py 127.0.0.1:9092 --job nightly-backup

The address is the first argument, else $PUSH_GATEWAY_ADDRESS, else
127.0.0.1:9092. The bridge runs as a user in the push socket's group.

What it pushes, under job=JOB (and instance=HOST with --instance HOST), as a
batch job reports at its end:

    example_job_last_success_seconds   gauge: when the job last succeeded
    example_job_duration_seconds       gauge: how long it took
    example_job_records_processed_total  counter: records it handled

push_to_gateway() replaces every metric of the group job=JOB; the gateway
keeps them for its TTL (60 s by default) after the push, so push at least
that often, or raise --ttl for jobs that run less often. --delete removes
the group at once instead.
"""

import argparse
import os
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import delete_from_gateway, push_to_gateway

try:  # prometheus_client >= 0.18: no *_created series (they cost cache).
    from prometheus_client import disable_created_metrics

    disable_created_metrics()
except ImportError:
    os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Push a batch job's metrics to push-gateway through a socat bridge."
    )
    parser.add_argument(
        "address",
        nargs="?",
        default=os.environ.get("PUSH_GATEWAY_ADDRESS", "127.0.0.1:9092"),
        help="HOST:PORT of the bridge (default: $PUSH_GATEWAY_ADDRESS or 127.0.0.1:9092)",
    )
    parser.add_argument("--job", default="example_batch", help="job label (default: example_batch)")
    parser.add_argument("--instance", help="instance label, added to the grouping key")
    parser.add_argument("--records", type=int, default=42, help="records processed (default: 42)")
    parser.add_argument("--delete", action="store_true", help="delete the group instead of pushing")
    args = parser.parse_args()

    grouping_key = {"instance": args.instance} if args.instance else {}

    try:
        if args.delete:
            delete_from_gateway(args.address, job=args.job, grouping_key=grouping_key)
            return 0

        start = time.time()
        registry = CollectorRegistry()
        last_success = Gauge(
            "example_job_last_success_seconds",
            "When the job last succeeded, in seconds since the epoch.",
            registry=registry,
        )
        duration = Gauge(
            "example_job_duration_seconds",
            "How long the last run took.",
            registry=registry,
        )
        records = Counter(
            "example_job_records_processed",
            "Records the last run processed.",
            registry=registry,
        )

        records.inc(args.records)  # ... the job's real work goes here ...
        duration.set(time.time() - start)
        last_success.set_to_current_time()

        push_to_gateway(args.address, job=args.job, registry=registry, grouping_key=grouping_key)
    except OSError as e:  # URLError is an OSError: refused, no bridge, HTTP errors
        print(f"push_python.py: push to {args.address} failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
