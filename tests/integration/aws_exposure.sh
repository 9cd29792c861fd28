#!/usr/bin/env bash
# What `kbundle aws up` exposes, proven from what AWS (moto) reports back, described with boto3:
# the API is reachable only from adminCIDR (and the nodes) through the load balancer's own security
# group; the control plane admits 6443 only from that group and adminCIDR; no rule admits the VPC,
# the subnet or 0.0.0.0/0. Then: a changed adminCIDR and hand-added rules (ingress, egress, IPv6,
# another group) are listed by plan as revocations and revoked by up; instances require IMDSv2 and
# have encrypted root volumes; adminCIDR 0.0.0.0/0 gets a warning.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
python3 -c 'import boto3' 2>/dev/null || skip "boto3 is not installed (it comes with moto)"
start_moto
T=$WORK/topology.yaml
make_topology "$T"
describe() { python3 "$KB_SOURCE_DIR/tests/integration/aws_describe.py" "$MOTO_URL" kthw; }

"$KBUNDLE" aws up --topology "$T" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "aws up failed"; }
d=$(describe)
echo "$d" >"$WORK/describe1.json"

# check PYTHON_ASSERTIONS: evaluated over the description `d` (and `ips`, the nodes' public /32s).
check() {
  python3 - "$WORK/describe.json" "$1" <<'EOF' || fail "$2"
import json, sys
d = json.load(open(sys.argv[1]))
ips = sorted(f'tcp 6443-6443 {i["publicIp"]}/32' for i in d["instances"])
sg = d["securityGroups"]
try:
    exec(sys.argv[2])
except AssertionError as e:
    print("assertion failed:", e, file=sys.stderr)
    print(json.dumps(d["securityGroups"], indent=1), file=sys.stderr)
    sys.exit(1)
EOF
}
exact_rules() {
  echo "$1" >"$WORK/describe.json"
  check '
admin = "'"$2"'"
want = {
  "kthw-control-plane": [f"tcp 22-22 {admin}", f"tcp 6443-6443 {admin}", "tcp 6443-6443 sg:kthw-api-lb",
                         "-1 all sg:kthw-control-plane", "-1 all sg:kthw-worker", "-1 all 10.200.0.0/16"],
  "kthw-worker": [f"tcp 22-22 {admin}", f"tcp 30000-32767 {admin}",
                  "-1 all sg:kthw-control-plane", "-1 all sg:kthw-worker", "-1 all 10.200.0.0/16"],
  "kthw-api-lb": [f"tcp 6443-6443 {admin}", "tcp 6443-6443 sg:kthw-control-plane", "tcp 6443-6443 sg:kthw-worker"] + ips,
}
assert sorted(sg) == sorted(want), f"groups {sorted(sg)}"
for name, rules in want.items():
    assert sg[name]["ingress"] == sorted(rules), (name, sg[name]["ingress"], sorted(rules))
assert sg["kthw-api-lb"]["egress"] == ["tcp 6443-6443 sg:kthw-control-plane"], "load balancer egress"
for name in ("kthw-control-plane", "kthw-worker"):
    assert sg[name]["egress"] == ["-1 all 0.0.0.0/0"], f"{name} egress"
# The whole category: nothing admits the VPC, the subnet (the load balancer lives there) or everyone,
# except adminCIDR on the load balancer group (and adminCIDR is not everyone here).
for name, g in sg.items():
    for r in g["ingress"]:
        src = r.split()[-1]
        assert src not in ("10.0.0.0/16", "10.0.1.0/24", "0.0.0.0/0", "::/0"), f"{name} admits {r}"
        assert not src.startswith("10.0."), f"{name} admits {r} from inside the VPC by address"
        if r.startswith("tcp 6443") and name == "kthw-control-plane":
            assert src in (admin, "sg:kthw-api-lb"), f"control plane admits the API from {src}"
assert len(d["loadBalancers"]) == 1 and d["loadBalancers"][0]["securityGroups"] == ["kthw-api-lb"], d["loadBalancers"]
assert d["targetGroups"][0]["attributes"].get("preserve_client_ip.enabled") == "false", d["targetGroups"]
' "$3"
}
exact_rules "$d" 203.0.113.0/24 "security groups after up are not exactly the intended ones"

# IMDSv2 and encrypted root volumes, as moto records them.
check '
assert len(d["instances"]) == 6, d["instances"]
for i in d["instances"]:
    assert i["httpTokens"] == "required", i
    assert i["hopLimit"] == 1, i
    assert i["rootDevice"] in i["volumes"], i
    assert i["encrypted"] and all(i["encrypted"]), i
' "instances do not require IMDSv2 or have unencrypted volumes"

# adminCIDR changes: plan lists the revocations beside the new rules; up converges; plan is then empty.
sed -i 's|adminCIDR: 203.0.113.0/24|adminCIDR: 198.51.100.0/24|' "$T"
"$KBUNDLE" aws plan --topology "$T" >"$WORK/plan1.log" 2>&1 || { cat "$WORK/plan1.log" >&2; fail "plan failed"; }
# up_converges N WHEN: `aws up` succeeds, the next plan is empty and the groups hold exactly the
# intended rules for adminCIDR 198.51.100.0/24.
up_converges() {
  "$KBUNDLE" aws up --topology "$T" >"$WORK/up$1.log" 2>&1 || { cat "$WORK/up$1.log" >&2; fail "up $2 failed"; }
  "$KBUNDLE" aws plan --topology "$T" >"$WORK/plan-after-up$1.log" 2>&1 || fail "plan $2 failed"
  grep -q "nothing to do" "$WORK/plan-after-up$1.log" || { cat "$WORK/plan-after-up$1.log" >&2; fail "plan $2 is not empty"; }
  exact_rules "$(describe)" 198.51.100.0/24 "$2: the groups are not exactly the intended ones"
}
for want in "- revoke tcp 22 from 203.0.113.0/24" "+ allow tcp 22 from 198.51.100.0/24" \
  "- revoke tcp 6443 from 203.0.113.0/24 (Kubernetes API from the admin network) in security group kthw-api-lb" \
  "- revoke tcp 30000-32767 from 203.0.113.0/24" "+ allow tcp 6443 from 198.51.100.0/24"; do
  grep -qF -- "$want" "$WORK/plan1.log" || { cat "$WORK/plan1.log" >&2; fail "plan after an adminCIDR change lacks '$want'"; }
done
grep -q "^10 change(s)" "$WORK/plan1.log" || { cat "$WORK/plan1.log" >&2; fail "plan: expected 5 allows + 5 revokes"; }
up_converges 2 "after the adminCIDR change"

# Rules added by hand to kbundle's groups: every kind is reported and revoked.
ids=$(describe)
gid() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["securityGroups"][sys.argv[2]]["id"])' "$ids" "$1"; }
cp=$(gid kthw-control-plane) wk=$(gid kthw-worker) lb=$(gid kthw-api-lb)
py() { python3 -c "import boto3; c = boto3.client('ec2', endpoint_url='$MOTO_URL', region_name='us-east-1'); $1"; }
py "c.authorize_security_group_ingress(GroupId='$cp', IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 6443, 'ToPort': 6443, 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])"
py "c.authorize_security_group_ingress(GroupId='$wk', IpPermissions=[{'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])"
py "c.authorize_security_group_ingress(GroupId='$wk', IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'Ipv6Ranges': [{'CidrIpv6': '::/0'}]}])"
py "c.authorize_security_group_ingress(GroupId='$cp', IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 6443, 'ToPort': 6443, 'IpRanges': [{'CidrIp': '10.0.1.0/24'}]}])"
py "c.authorize_security_group_egress(GroupId='$lb', IpPermissions=[{'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])"
# (moto 5 cannot revoke an IPv6 egress rule in a VPC without IPv6, though it accepts one: IPv4 here.)
py "c.authorize_security_group_egress(GroupId='$wk', IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 25, 'ToPort': 25, 'IpRanges': [{'CidrIp': '192.0.2.25/32'}]}])"
py "c.authorize_security_group_ingress(GroupId='$lb', IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 0, 'ToPort': 65535, 'UserIdGroupPairs': [{'GroupId': '$lb'}]}])"
"$KBUNDLE" aws plan --topology "$T" >"$WORK/plan3.log" 2>&1 || { cat "$WORK/plan3.log" >&2; fail "plan failed"; }
for want in "- revoke tcp 6443 from 0.0.0.0/0 in security group kthw-control-plane" \
  "- revoke all traffic from 0.0.0.0/0 in security group kthw-worker" \
  "- revoke tcp 22 from ::/0 in security group kthw-worker" \
  "- revoke tcp 6443 from 10.0.1.0/24 in security group kthw-control-plane" \
  "- revoke egress all traffic to 0.0.0.0/0 in security group kthw-api-lb" \
  "- revoke egress tcp 25 to 192.0.2.25/32 in security group kthw-worker" \
  "- revoke tcp 0-65535 from the api-lb group in security group kthw-api-lb"; do
  grep -qF -- "$want" "$WORK/plan3.log" || { cat "$WORK/plan3.log" >&2; fail "plan does not report '$want'"; }
done
grep -q "^7 change(s)" "$WORK/plan3.log" || { cat "$WORK/plan3.log" >&2; fail "plan: expected exactly 7 revocations"; }
up_converges 3 "after revoking the hand-added rules"

# adminCIDR 0.0.0.0/0 (or ::/0) is allowed but warned about, by plan, up and status.
sed -i 's|adminCIDR: 198.51.100.0/24|adminCIDR: 0.0.0.0/0|' "$T"
for cmd in plan status; do
  "$KBUNDLE" aws $cmd --topology "$T" >"$WORK/open.log" 2>&1 || { cat "$WORK/open.log" >&2; fail "$cmd failed"; }
  grep -q "warning: .*adminCIDR 0.0.0.0/0 opens SSH, the Kubernetes API and NodePorts to the whole internet" "$WORK/open.log" ||
    { cat "$WORK/open.log" >&2; fail "$cmd gives no warning for adminCIDR 0.0.0.0/0"; }
done
"$KBUNDLE" lint --topology "$T" >"$WORK/lint.log" 2>&1 || { cat "$WORK/lint.log" >&2; fail "lint failed"; }
grep -q "warning: aws.adminCIDR 0.0.0.0/0" "$WORK/lint.log" || { cat "$WORK/lint.log" >&2; fail "lint gives no warning for adminCIDR 0.0.0.0/0"; }
pass "API only via the load balancer group from adminCIDR and the nodes; old adminCIDR and 7 hand-added rules revoked; IMDSv2, encrypted volumes; 0.0.0.0/0 warned"
