#!/usr/bin/env bash
# Expiry you can see (issue 16 §1, G36): a cluster generated 340 days ago. `kbundle certs` lists
# every certificate (kubeconfig ones too) as openssl reads it, exits 2 inside the renewal window and
# writes nothing; gen renews and says why; kbundle-installer status lists a node's certificates,
# warns, writes a Prometheus text file, and names a tampered file while still reporting the rest.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
need openssl python3 tar zstd
S=$WORK/state O=$WORK/out
T0=$(date -u -d '-340 days' +%Y-%m-%dT%H:%M:%SZ)
hash_state() { (cd "$1" && find . ! -name .lock -printf '%p %m %s %T@\n' | sort && find . -type f ! -name .lock -exec sha256sum {} + | sort) | sha256sum; }
certs() { "$KBUNDLE" certs --state "$S" "$@"; }

# 1. No state yet: every certificate would be new, nothing is inside the window, nothing written.
expect 0 "no state yet: the first gen issues every certificate" certs --topology "$EXAMPLE"
[ ! -e "$S" ] || fail "certs created the state directory"

# 2. The cluster as generated 340 days ago (gen --now is the tests' clock).
expect 0 "kbundle: changes: cluster kthw: 0 changed, 6 new" "$KBUNDLE" gen --no-binaries --now "$T0" --topology "$EXAMPLE" --state "$S" --out "$O"
for n in control-0 worker-1; do mkdir -p "$WORK/b/$n" && tar --zstd -xf "$O/$n.kbundle" -C "$WORK/b/$n"; done
cp -a "$O" "$WORK/o1"  # the old bundles, for the installer below

# 3. certs today: every leaf inside the window (24-25 days left), exit 2; state untouched.
before=$(hash_state "$S")
expect 2 "INSIDE the renewal window" certs --topology "$EXAMPLE"
grep -q "^attention: certificates inside the renewal window or expired" "$WORK/out.log" || fail "no attention line"
grep -q "next gen: renews it: expires in 2[45] days (renewBeforeDays 30)" "$WORK/out.log" || fail "no renewal reason: $(head -30 "$WORK/out.log")"
set +e; certs --topology "$EXAMPLE" --json > "$WORK/certs.json" 2>"$WORK/certs.err"; rc=$?; set -e
[ $rc = 2 ] || fail "certs --json: exit $rc: $(cat "$WORK/certs.err")"
[ "$(hash_state "$S")" = "$before" ] || fail "certs changed the state"

# Every certificate listed, as openssl reads it from the bundle the nodes carry (files and kubeconfigs).
python3 - "$WORK/certs.json" "$WORK/b" "$S" > "$WORK/pems.txt" <<'EOF'
import base64, json, os, re, sys
report, bundles, state = sys.argv[1:4]
d = json.load(open(report))
assert d["attention"] is True and d["renewBeforeDays"] == 30, d
rows = d["certificates"]
assert sum(1 for r in rows if r["ca"]) == 3, [r["id"] for r in rows if r["ca"]]
leaves = [r for r in rows if not r["ca"]]
assert leaves and all(r["status"] == "renew" and r["daysLeft"] in (24, 25) for r in leaves), [(r["id"], r["status"], r["daysLeft"]) for r in leaves]
assert all(r["status"] == "ok" for r in rows if r["ca"])
assert all("renews it: expires in" in r["nextGen"] for r in leaves)
def pems(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n", text, re.S)
def kube_field(text, section, index, field):
    sec, i = None, -1
    for line in text.splitlines():
        if line and not line.startswith((" ", "-")):
            sec, i = line.split(":")[0], -1
        elif line.startswith("- "):
            i += 1
        m = re.match(r"\s*(?:- )?" + field + r": (\S+)$", line)
        if m and sec == section and i == index:
            return base64.b64decode(m.group(1)).decode()
    raise SystemExit("no %s[%d].%s" % (section, index, field))
checked = 0
for r in rows:
    for p in r["places"]:
        if p["node"] not in ("control-0", "worker-1"):
            continue
        src = p["source"]
        m = re.match(r"^([^#\[]+)(?:#(\w+)\[(\d+)\]\.([\w-]+))?(?:\[(\d+)\])?$", src)
        assert m, src
        path, section, index, field, nth = m.groups()
        text = open(os.path.join(bundles, p["node"], "files") + path).read()
        if section:
            text = kube_field(text, section, int(index), field)
        found = pems(text)
        pem = found[int(nth)] if nth else found[0]
        print("%s\t%s\t%s\t%s\t%s" % (src, r["subject"], r["notAfter"], r["serial"], r["sha256"]))
        with open(os.path.join(os.path.dirname(report), "pem-%d.pem" % checked), "w") as f:
            f.write(pem)
        checked += 1
assert checked >= 20, checked
EOF
i=0
while IFS=$'\t' read -r src subject not_after serial sha; do
  f=$WORK/pem-$i.pem; i=$((i + 1))
  o_subject=$(openssl x509 -in "$f" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
  o_end=$(date -u -d "$(openssl x509 -in "$f" -noout -enddate | sed 's/^notAfter=//')" +%Y-%m-%dT%H:%M:%SZ)
  o_serial=$(openssl x509 -in "$f" -noout -serial | sed 's/^serial=//' | tr A-F a-f | sed 's/^0*//')
  o_sha=$(openssl x509 -in "$f" -noout -fingerprint -sha256 | sed 's/^.*=//; s/://g' | tr A-F a-f)
  [ "$o_subject" = "$subject" ] || fail "$src: subject $subject, openssl says $o_subject"
  [ "$o_end" = "$not_after" ] || fail "$src: notAfter $not_after, openssl says $o_end"
  [ "$o_serial" = "${serial#"${serial%%[!0]*}"}" ] || fail "$src: serial $serial, openssl says $o_serial"
  [ "$o_sha" = "$sha" ] || fail "$src: sha256 $sha, openssl says $o_sha"
done < "$WORK/pems.txt"
[ $i -ge 20 ] || fail "only $i certificates cross-checked"
grep -q "#users\[0\].client-certificate-data" "$WORK/pems.txt" && grep -q "#clusters\[0\].certificate-authority-data" "$WORK/pems.txt" ||
  fail "kubeconfig certificates not cross-checked"
checked=$i

# 4. gen today renews them and says why; afterwards certs is content (exit 0).
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$S" --out "$O" > "$WORK/gen.log" 2>&1 || fail "gen: $(cat "$WORK/gen.log")"
grep -q "^  certificate kubelet renewed: expires in 2[45] days (renewBeforeDays 30)$" "$WORK/gen.log" || fail "gen did not say why: $(cat "$WORK/gen.log")"
grep -q "^  certificate etcd-server renewed: expires in 2[45] days (renewBeforeDays 30)$" "$WORK/gen.log" || fail "etcd-server reason"
grep -q "^shared certificate cluster/admin renewed: expires in 2[45] days (renewBeforeDays 30)$" "$WORK/gen.log" || fail "shared reason"
expect 0 "0 inside the renewal window, 0 expired" certs --topology "$EXAMPLE"
# A SAN change is said with the SAN (and is no expiry: exit 0).
sed 's/^\(    privateIP: 10.0.1.21\)$/\1\n    publicIP: 3.3.3.3/' "$EXAMPLE" > "$WORK/san.yaml"
expect 0 "next gen: renews it: SAN set changed: +IP:3.3.3.3" certs --topology "$WORK/san.yaml"
# 400 days after the old gen, a node left alone has expired certificates: said so.
expect 2 "EXPIRED" "$KBUNDLE" certs --now "$(date -u -d '+400 days' +%Y-%m-%dT%H:%M:%SZ)" --topology "$EXAMPLE" --state "$S"

# 5. Bad input: exit 3 (topology), 1 (damaged state, bad --now), nothing written.
printf 'cluster: [\n' > "$WORK/bad.yaml"
expect 3 "" certs --topology "$WORK/bad.yaml"
expect 1 "--now yesterday: want YYYY-MM-DDTHH:MM:SSZ" certs --now yesterday --topology "$EXAMPLE"
cp -a "$S" "$WORK/s2"; echo '{"worker-0/kubelet": 7}' > "$WORK/s2/issued.json"
expect 1 "issued.json" "$KBUNDLE" certs --topology "$EXAMPLE" --state "$WORK/s2"

# 6. The installer on worker-1 with the 340-day-old bundle: every certificate, warnings, metrics.
R=$WORK/root; new_root "$R"
inst --root "$R" --node worker-1 --trust-key "$WORK/o1/bundle-signing.pub" apply "$WORK/o1/worker-1.kbundle" >/dev/null 2>&1 || fail "apply"
mkdir -p "$WORK/textfile"
inst --root "$R" status --metrics-file "$WORK/textfile/kbundle.prom" > "$WORK/status.out" 2> "$WORK/status.err" || fail "status: $(cat "$WORK/status.err")"
grep -q "^  cert /var/lib/kubelet/kubeconfig#users\[0\].client-certificate-data: CN=system:node:worker-1,O=system:nodes, expires .* INSIDE the renewal window$" "$WORK/status.out" ||
  fail "status: kubeconfig cert: $(cat "$WORK/status.out")"
n_warn=$(grep -c "inside the renewal window of 30 days" "$WORK/status.err" || true)
n_cert=$(grep -c "^  cert " "$WORK/status.out" || true)
n_inside=$(grep -c "INSIDE the renewal window$" "$WORK/status.out" || true)
# worker-1: three CAs (ca.crt, and one in each kubeconfig) and three leaves, each leaf warned about once.
[ "$n_cert" = 6 ] && [ "$n_inside" = 3 ] && [ "$n_warn" = 3 ] || fail "status: $n_cert certificates, $n_inside inside, $n_warn warnings: $(cat "$WORK/status.err")"
grep -q "PRIVATE KEY" "$WORK/status.out" "$WORK/status.err" "$WORK/textfile/kbundle.prom" && fail "a key was printed"
[ "$(stat -c %a "$WORK/textfile/kbundle.prom")" = 644 ] && [ "$(ls -A "$WORK/textfile")" = kbundle.prom ] || fail "metrics file mode or leftovers"
# Each notAfter as openssl reads the installed file; the metrics file parses as Prometheus text.
inst --root "$R" --json status > "$WORK/status.json" 2>/dev/null || fail "status --json"
python3 - "$WORK/status.json" "$WORK/textfile/kbundle.prom" "$R" <<'EOF' || fail "status --json / metrics check"
import json, re, subprocess, sys, calendar, time
s = json.load(open(sys.argv[1])); prom = open(sys.argv[2]).read(); root = sys.argv[3]
certs = s["certificates"]
assert s["renew_before_days"] == 30 and not s["certificate_problems"], s
assert any("#clusters[0].certificate-authority-data" in c["source"] for c in certs)
for c in certs:
    assert c["status"] == "renew" or c["is_ca"], c
    if "#" not in c["source"]:
        end = subprocess.run(["openssl", "x509", "-in", root + c["path"], "-noout", "-enddate"], capture_output=True, text=True, check=True).stdout
        t = calendar.timegm(time.strptime(end.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"))
        assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) == c["not_after"], (c, end)
assert prom.endswith("\n")
names = {}
for line in prom.splitlines():
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        kind, name = line.split()[1:3]
        names.setdefault(name, []).append(kind)
        continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (-?[0-9]+)$', line)
    assert m, line
    assert names.get(m.group(1)) == ["HELP", "TYPE"], line
n = len(certs)
for metric in ("kbundle_certificate_expiry_timestamp_seconds", "kbundle_certificate_days_left", "kbundle_certificate_renewal_due"):
    assert len(re.findall("^" + metric + "{", prom, re.M)) == n, metric
assert len(re.findall(r"^kbundle_certificate_renewal_due\{.*\} 1$", prom, re.M)) == sum(1 for c in certs if c["status"] != "ok")
assert re.search(r'^kbundle_certificate_problems\{node="worker-1"\} 0$', prom, re.M)
EOF

# 7. Tampered files on the node: the bad one named, the rest still reported, exit 0; metrics count it.
python3 - "$R/var/lib/kubelet/kubeconfig" <<'EOF'
import re, sys
p = sys.argv[1]; t = open(p).read()
open(p, "w").write(re.sub(r"(certificate-authority-data: )\S+", r"\1%%%not*base64%%%", t))
EOF
head -c 300 "$R/var/lib/kubelet/kubelet.crt" > "$WORK/cut" && cp "$WORK/cut" "$R/var/lib/kubelet/kubelet.crt"
set +e; inst --root "$R" status --metrics-file "$WORK/textfile/kbundle.prom" > "$WORK/status.out" 2> "$WORK/status.err"; rc=$?; set -e
[ $rc = 0 ] || fail "status on a tampered node: exit $rc"
grep -q "warning: certificate file /var/lib/kubelet/kubeconfig: clusters\[0\].certificate-authority-data: not base64" "$WORK/status.err" || fail "kubeconfig not named: $(cat "$WORK/status.err")"
grep -q "warning: certificate file /var/lib/kubelet/kubelet.crt: line 1: certificate block has no END line" "$WORK/status.err" || fail "kubelet.crt not named"
grep -q "^  cert /var/lib/kubelet/kubeconfig#users\[0\].client-certificate-data:" "$WORK/status.out" || fail "the rest not reported"
grep -q '^kbundle_certificate_problems{node="worker-1"} 2$' "$WORK/textfile/kbundle.prom" || fail "problems not counted"
rm "$R/var/lib/kubernetes/ca.crt"
inst --root "$R" status > "$WORK/status.out" 2> "$WORK/status.err" || fail "status with a missing file"
grep -q "warning: certificate file /var/lib/kubernetes/ca.crt: cannot read: No such file" "$WORK/status.err" || fail "missing file not named"
# A metrics path that cannot be written: exit 1, named.
set +e; inst --root "$R" status --metrics-file "$WORK/nope/kbundle.prom" > /dev/null 2> "$WORK/status.err"; rc=$?; set -e
[ $rc = 1 ] && grep -q "nope" "$WORK/status.err" || fail "unwritable metrics file: exit $rc"
pass "$checked certificates cross-checked with openssl; renewals said; status warned, wrote metrics, named tampered files"
