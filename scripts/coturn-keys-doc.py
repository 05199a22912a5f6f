#!/usr/bin/env python3
"""coturn-keys-doc.py -- the table of docs/migrating-from-coturn.md, made from
`turnstone --help` (the option table of src/config.c) and the list of coturn's
keys in tests/data/coturn-4.6-keys.txt.

    scripts/coturn-keys-doc.py TURNSTONE_BIN KEYLIST           # print the table
    scripts/coturn-keys-doc.py TURNSTONE_BIN KEYLIST --write DOC  # replace it in DOC

The table sits in DOC between the lines <!-- coturn-keys:begin --> and
<!-- coturn-keys:end -->; tests/integration/coturn_keys.sh checks that it is
what this script prints, so the document cannot go stale.
"""
import re
import subprocess
import sys

BEGIN, END = "<!-- coturn-keys:begin -->", "<!-- coturn-keys:end -->"
SECTIONS = {
    "coturn's names for the keys above:": "alias",
    "coturn keys accepted without effect (one warning line each):": "noeffect",
    "coturn keys refused, with turnstone's way to the same end:": "refused",
}


def classes(binary):
    """{key: (class, note)} from the --help text."""
    out = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout
    table, sect = {}, "implemented"
    for line in out.splitlines():
        if line in SECTIONS:
            sect = SECTIONS[line]
            continue
        m = re.match(r"^ +--([A-Za-z0-9_-]+)(=\S+)?\s+(.*)$", line)
        if not m or m.group(1) in ("config", "check-config", "help"):
            continue
        note = re.sub(r' \[[^]]*\]$', "", m.group(3))
        table[m.group(1)] = (sect, note)
    return table


def render(binary, keylist):
    table = classes(binary)
    names = [k.strip() for k in open(keylist) if k.strip() and not k.startswith("#")]
    rows = ["| coturn key | turnstone | what turnstone does |", "| --- | --- | --- |"]
    counts = {"implemented": 0, "accepted without effect": 0, "refused": 0}
    for k in names:
        if k not in table:
            sys.exit(f"coturn key '{k}' is not in turnstone's option table")
        sect, note = table[k]
        if sect == "alias":
            target = re.sub(r"^coturn's name of --", "", note)
            what, note = "implemented", f"read as `{target}`: {table[target][1]}"
        else:
            what = {"implemented": "implemented", "noeffect": "accepted without effect",
                    "refused": "refused"}[sect]
        counts[what] += 1
        rows.append(f"| `{k}` | {what} | {note.replace('|', '/')} |")
    summary = (f"{len(names)} keys: {counts['implemented']} implemented, "
               f"{counts['accepted without effect']} accepted without effect, "
               f"{counts['refused']} refused.")
    return "\n".join([summary, ""] + rows)


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    table = render(sys.argv[1], sys.argv[2])
    if len(sys.argv) == 3:
        print(table)
        return
    doc = open(sys.argv[4]).read()
    head, rest = doc.split(BEGIN + "\n", 1)
    _, tail = rest.split(END, 1)
    open(sys.argv[4], "w").write(head + BEGIN + "\n" + table + "\n" + END + tail)


if __name__ == "__main__":
    main()
