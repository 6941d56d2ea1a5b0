"""Normalises a /api/v1/metrics document for comparison: push times and
time stamps masked, groups sorted by their labels. Prints canonical JSON."""
import json
import sys

doc = json.load(open(sys.argv[1]))
assert doc["status"] == "success", doc
groups = []
for group in doc["data"]:
    for name, family in group.items():
        if not isinstance(family, dict) or "metrics" not in family:
            continue
        assert family["time_stamp"].endswith("Z"), family
        family["time_stamp"] = "T"
        if name in ("push_time_seconds", "push_failure_time_seconds"):
            for m in family["metrics"]:
                if m["value"] != "0":
                    m["value"] = "PUSH_TIME"
    groups.append(group)
groups.sort(key=lambda g: json.dumps(g["labels"], sort_keys=True))
print(json.dumps(groups, sort_keys=True, indent=1))
