#!/usr/bin/env python3
"""What each metric family adds to the gzipped /metrics body (level 6, as leakwatch serves it).

Usage: python3 benches/family_bytes.py FILE_OR_URL [TOP]
Prints the whole body's plain and gzip size, the body without HELP lines, and for each family
its series, its plain bytes and "leave-one-out" bytes (gzip of the body minus gzip of the body
without that family), largest first.
"""
import gzip
import sys
import urllib.request


def gz(text):
    return len(gzip.compress(text.encode(), compresslevel=6))


def families(body):
    order, fams = [], {}
    for line in body.splitlines(keepends=True):
        if line.startswith("# "):
            name = line.split()[2]
        else:
            name = line.split("{")[0].split(" ")[0]
            for suffix in ("_bucket", "_sum", "_count"):
                base = name[: -len(suffix)]
                if name.endswith(suffix) and base in fams:
                    name = base
        if name not in fams:
            order.append(name)
            fams[name] = []
        fams[name].append(line)
    return order, fams


def main():
    src = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    if src.startswith("http"):
        body = urllib.request.urlopen(src).read().decode()
    else:
        body = open(src).read()
    order, fams = families(body)
    total = gz(body)
    series = sum(1 for l in body.splitlines() if l and not l.startswith("#"))
    no_help = "".join(l for l in body.splitlines(keepends=True) if not l.startswith("# HELP"))
    no_comment = "".join(l for l in body.splitlines(keepends=True) if not l.startswith("#"))
    print(f"families {len(order)}, series {series}, plain {len(body)}, gzip {total}")
    print(f"without HELP lines: gzip {gz(no_help)}; without any comment: gzip {gz(no_comment)}")
    help_chars = sum(len(l) for l in body.splitlines(keepends=True) if l.startswith("# HELP"))
    print(f"HELP lines: {help_chars} plain bytes")
    rows = []
    for name in order:
        rest = "".join("".join(fams[n]) for n in order if n != name)
        s = sum(1 for l in fams[name] if not l.startswith("#"))
        rows.append((total - gz(rest), s, len("".join(fams[name])), name))
    rows.sort(reverse=True)
    print("| family | series | plain | gzip (leave-one-out) |")
    print("| --- | ---: | ---: | ---: |")
    for loo, s, plain, name in rows[:top]:
        print(f"| `{name}` | {s} | {plain} | {loo} |")
    # grouped by prefix (first two name parts)
    groups = {}
    for loo, s, plain, name in rows:
        key = "_".join(name.split("_")[:2])
        g = groups.setdefault(key, [0, 0, 0, 0])
        g[0] += 1
        g[1] += s
        g[2] += plain
        g[3] += loo
    print()
    print("| group | families | series | plain | gzip (sum of leave-one-out) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, (f, s, plain, loo) in sorted(groups.items(), key=lambda kv: -kv[1][3]):
        print(f"| `{key}_*` | {f} | {s} | {plain} | {loo} |")


main()
