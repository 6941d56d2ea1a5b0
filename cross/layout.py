#!/usr/bin/env python3
"""Writes a linker script that places first the functions that ran.

    cross/layout.py MAP TRACE OUT

MAP is lld's -Map output of the binary that ran; TRACE is
`qemu-*-static -d in_asm` output of the gateway under the workload. OUT
gets a SECTIONS command with a pattern per input section whose code ran,
in the order it first ran (cross/layout.sh explains why). Rust's hashes
are left to wildcards: a symbol's changes with the directory the crate is
built in, and a pattern without it matches on any machine.
"""
import bisect
import re
import sys


def sections(map_path):
    """(address, input-section pattern) of every input section of code."""
    out = []
    in_text = False
    for line in open(map_path, encoding="utf-8", errors="replace"):
        f = line.split()
        if len(f) != 5:
            continue
        name = f[4]
        if name.startswith("."):
            # An output section: only code is traced.
            in_text = name.startswith(".text")
            continue
        if not in_text or ":(" not in name:
            continue
        try:
            out.append((int(f[0], 16), pattern(name)))
        except ValueError:
            continue
    out.sort()
    return out


def pattern(entry):
    """The linker-script pattern of a map entry `FILE:(SECTION)`, with the
    hashes that change from build to build left to wildcards."""
    file, section = entry.rsplit(":(", 1)
    section = LEGACY_HASH.sub("17h*", section.rstrip(")"))
    if section != ".text":
        # -ffunction-sections: the section names the function.
        return f"*({section})"
    # One .text per object (C and assembly): name the object, as
    # ARCHIVE:MEMBER, its hash prefixes (Rust's) wildcarded.
    m = re.match(r"^(.*)\((.*)\)$", file)
    if m:
        archive, member = m.group(1).rsplit("/", 1)[-1], m.group(2)
        archive = re.sub(r"-[0-9a-f]{16}\.rlib$", "-*.rlib", archive)
        member = re.sub(r"^[0-9a-f]{16}-", "*-", member)
        return f"*{archive}:{member}(.text)"
    return f"*{file.rsplit('/', 1)[-1]}(.text)"


def main():
    map_path, trace_path, out_path = sys.argv[1:4]
    secs = sections(map_path)
    if not secs:
        sys.exit(f"layout: no code sections in {map_path}")
    addrs = [a for a, _ in secs]
    order, seen = [], set()
    pc = re.compile(r"^0x([0-9a-f]+):")
    for line in open(trace_path, encoding="utf-8", errors="replace"):
        m = pc.match(line)
        if not m:
            continue
        i = bisect.bisect_right(addrs, int(m.group(1), 16)) - 1
        if i >= 0 and secs[i][1] not in seen:
            seen.add(secs[i][1])
            order.append(secs[i][1])
    if not order:
        sys.exit(f"layout: no traced address in {trace_path} falls in the map's code")
    kept = [p for p in order if GLOB_SAFE.match(p)]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(HEADER)
        f.write("SECTIONS {\n  .text.run : {\n")
        f.write("".join(f"    {p}\n" for p in kept))
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"layout: code of {len(order)} sections ran, of {len(secs)} -> {out_path}")


LEGACY_HASH = re.compile(r"17h[0-9a-f]{16}E$")
# Patterns with characters a glob would misread are left out (their code
# is placed with the rest).
GLOB_SAFE = re.compile(r"^\*[A-Za-z0-9_.$*:+-]*\([A-Za-z0-9_.$*]+\)$")
HEADER = """/* Written by cross/layout.py (make layout): the code the gateway ran under
 * the fill workload, one input section (a function, or a C object's .text)
 * per line in the order it first ran, placed before the rest of .text so
 * that the code that runs shares as few pages as it can. Code no pattern
 * matches goes after it. */
"""


main()
