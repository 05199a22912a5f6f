#!/usr/bin/env bash
# coturn_keys.sh -- every key of coturn's annotated turnserver.conf (Debian's
# coturn package) is classified by turnstone: implemented, accepted with one
# warning line, or refused with a message naming turnstone's way; never an
# unknown key. Each commented key line of the example is uncommented on its
# own, then all that fit together at once, and the result must match
# docs/migrating-from-coturn.md, whose table must be what
# scripts/coturn-keys-doc.py makes of the option table. TAP output.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$TOP_SRCDIR/tests/lib/common.sh"

bin=${TURNSTONE_BIN:-}
DOC=$TOP_SRCDIR/docs/migrating-from-coturn.md
KEYS=$TOP_SRCDIR/tests/data/coturn-4.6-keys.txt

EXAMPLE=
for f in /usr/share/doc/coturn/examples/etc/turnserver.conf.gz /usr/share/doc/coturn/examples/etc/turnserver.conf \
    /etc/turnserver.conf; do
    [ -r "$f" ] && EXAMPLE=$f && break
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-coturn-keys.XXXXXX") || exit 1
register_tmp "$WORK"
[ -n "$EXAMPLE" ] || { tap_plan 1; die "coturn's example turnserver.conf not found (install Debian package coturn)"; }
[ -x "$bin" ] || { tap_plan 1; die "TURNSTONE_BIN ('$bin') is not an executable"; }
zcat -f "$EXAMPLE" >"$WORK/example.conf"

# The key lines of the example: "#key", "#key=value", "# key=value",
# '#key "value"' and uncommented ones; prose lines have blanks after a word.
python3 - "$WORK/example.conf" >"$WORK/lines" <<'EOF'
import re, sys
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    m = re.match(r'^#? ?([A-Za-z][A-Za-z0-9_-]*)(=.*)?$', line) or \
        re.match(r'^#? ?([a-z][a-z0-9_-]*) ".*$', line)
    if m:
        print(m.group(1) + "\t" + re.sub(r"^# ?", "", line))
EOF
cut -f1 "$WORK/lines" | sort -u >"$WORK/keys"

# Placeholders of the example ("<ip-address>") replaced by values of that kind.
fill() {
    sed -e 's/^\(redis-[a-z]*db\)=.*/\1="ip=127.0.0.1 dbname=0 password=x port=6379 connect_timeout=30"/' \
        -e 's/^proc-user=<user-name>/proc-user=nobody/' -e 's/^proc-group=<group-name>/proc-group=nogroup/' \
        -e 's|^dh-file=<DH-PEM-file-name>|dh-file=/tmp/dh.pem|'
}

# doc_class KEY: the class the document's table gives KEY
doc_class() {
    awk -F' [|] ' -v k="\`$1\`" '$1 == "| " k { print $2 }' "$DOC"
}

nlines=$(wc -l <"$WORK/lines")
nkeys=$(wc -l <"$WORK/keys")
tap_plan $((nlines + 6))
tap_diag "example $EXAMPLE: $nkeys keys on $nlines lines"

# ---- 1. the example's keys are coturn 4.6 keys, all in the document
missing=$(grep -vxFf <(grep -v '^#' "$KEYS") "$WORK/keys" | tr '\n' ' ')
nodoc=$(while read -r k; do [ -n "$(doc_class "$k")" ] || printf '%s ' "$k"; done <"$WORK/keys")
if [ "$nkeys" -ge 90 ] && [ -z "$missing" ] && [ -z "$nodoc" ]; then
    tap_ok "all $nkeys keys of the example are in tests/data/coturn-4.6-keys.txt and the document"
else
    tap_fail "all $nkeys keys of the example are in tests/data/coturn-4.6-keys.txt and the document" \
        "not in the key list: $missing" "not in the document: $nodoc"
fi

# ---- 2. the document's table is what the option table says
python3 "$TOP_SRCDIR/scripts/coturn-keys-doc.py" "$bin" "$KEYS" >"$WORK/table" 2>&1
awk '/<!-- coturn-keys:begin -->/ { on = 1; next } /<!-- coturn-keys:end -->/ { on = 0 } on' "$DOC" >"$WORK/doctable"
if [ -s "$WORK/table" ] && diff -u "$WORK/doctable" "$WORK/table" >"$WORK/diff"; then
    tap_ok "docs/migrating-from-coturn.md's table matches the option table ($(head -n 1 "$WORK/table"))"
else
    tap_fail "docs/migrating-from-coturn.md's table matches the option table" \
        "run scripts/coturn-keys-doc.py BIN tests/data/coturn-4.6-keys.txt --write docs/migrating-from-coturn.md" \
        "$(head -n 30 "$WORK/diff" "$WORK/table")"
fi

# ---- 3. each key line on its own, after a base that makes a valid file
BASE='user=base:basepassword
static-auth-secret=basesecret
realm=example.org'
i=0
while IFS=$'\t' read -r key line; do
    i=$((i + 1))
    f=$WORK/one-$i.conf
    { echo "$BASE"; echo "$line" | fill; } >"$f"
    out=$(timeout 10 "$bin" --check-config -c "$f" 2>&1 </dev/null)
    rc=$?
    want=$(doc_class "$key")
    got=
    if [ "$rc" -eq 0 ] && grep -qF "$f:4: key '$key' accepted without effect in turnstone: " <<<"$out"; then
        got="accepted without effect"
    elif [ "$rc" -eq 0 ] && ! grep -q "key '$key'" <<<"$out"; then
        got=implemented
    elif [ "$rc" -eq 2 ] && grep -qF "$f:4: key '$key': coturn's key, not supported by turnstone: " <<<"$out"; then
        got=refused
    fi
    if [ -n "$got" ] && [ "$got" = "$want" ]; then
        tap_ok "'$line': $got"
    else
        tap_fail "'$line': $want (document)" "exit status $rc, output: $out"
    fi
done <"$WORK/lines"

# ---- 4. all lines at once but the refused ones, a later user of the same
# name, and no-tls (with no-udp and no-tcp nothing would listen)
while IFS=$'\t' read -r key line; do
    [ "$(doc_class "$key")" = refused ] && continue
    [ "$key" = no-tls ] && continue
    echo "$line"
done <"$WORK/lines" | fill | awk -F'[=:]' '$1 != "user" || !seen[$2]++' >"$WORK/all.conf"
out=$(timeout 10 "$bin" --check-config -c "$WORK/all.conf" 2>&1 </dev/null)
rc=$?
want_warn=$(while IFS=$'\t' read -r key line; do
    [ "$(doc_class "$key")" = "accepted without effect" ] && echo "$key"
done <"$WORK/lines" | sort -u | wc -l)
got_warn=$(grep -c "accepted without effect in turnstone" <<<"$out")
if [ "$rc" -eq 0 ] && [ "$got_warn" -eq "$want_warn" ]; then
    tap_ok "the example with $(wc -l <"$WORK/all.conf") lines uncommented at once loads, one warning for each of $want_warn keys"
else
    tap_fail "the example with its key lines uncommented at once loads, one warning for each of $want_warn keys" \
        "exit status $rc, $got_warn warnings: $out"
fi
if grep -q "coturn's turnserver.conf format" <<<"$out"; then
    tap_ok "... read as coturn's format"
else
    tap_fail "... read as coturn's format" "$out"
fi

# ---- 5. the example as shipped (no credentials: one given on the command line)
out=$(timeout 10 "$bin" --check-config -c "$WORK/example.conf" --user=a:b 2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 0 ] && [ "$(grep -c 'accepted without effect' <<<"$out")" -eq "$(grep -cE '^[a-z]' "$WORK/example.conf" | awk '{print $1 - 1}')" ]; then
    tap_ok "the example as shipped loads, a warning for each uncommented key but syslog"
else
    tap_fail "the example as shipped loads, a warning for each uncommented key but syslog" "exit status $rc: $out"
fi

# ---- 6. the example as shipped, without credentials: refused like any file
out=$(timeout 10 "$bin" --check-config -c "$WORK/example.conf" 2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 2 ] && grep -q "no credential source" <<<"$out"; then
    tap_ok "the example as shipped, no credentials: exit 2, no open relay"
else
    tap_fail "the example as shipped, no credentials: exit 2, no open relay" "exit status $rc: $out"
fi

tap_finish
