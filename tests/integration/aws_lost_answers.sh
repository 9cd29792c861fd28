#!/usr/bin/env bash
# A lost answer to any call `kbundle aws up` makes never leaves a duplicate, an orphan or a state
# up cannot get out of. For each create/change action in turn, a proxy in front of moto forwards the
# request (moto carries it out) and drops the answer; up must then converge within two runs, plan
# must have nothing left to do, and exactly one of everything must be tagged for the cluster, as
# moto reports it (counted with boto3). Then duplicates made by older versions (a second tagged VPC,
# internet gateway, route table, instance) are adopted or deleted by one up.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
python3 -c 'import boto3, yaml' 2>/dev/null || skip "boto3 or PyYAML is not installed (they come with moto)"

# One moto for every case, reset between them; no signature checks (the proxy forwards as is).
run_moto
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_ENDPOINT_URL=$MOTO_URL
coproc PROXY { exec python3 "$KB_SOURCE_DIR/tests/integration/aws_drop_proxy.py" "$MOTO_URL"; }
proxy_pid=$PROXY_PID
cleanup "kill $proxy_pid 2>/dev/null"
read -r -u "${PROXY[0]}" proxy_port
PROXY_URL=http://127.0.0.1:$proxy_port

# A two-node cluster (one control-plane node, one worker) keeps each case short.
make_topology "$WORK/full.yaml"
python3 - "$WORK/full.yaml" "$WORK/base.yaml" <<'EOF'
import sys, yaml
t = yaml.safe_load(open(sys.argv[1]))
t["nodes"] = [n for n in t["nodes"] if n["name"] in ("control-0", "worker-0")]
yaml.safe_dump(t, open(sys.argv[2], "w"), sort_keys=False)
EOF
T=$WORK/topology.yaml
"$KBUNDLE" validate --topology "$WORK/base.yaml" >/dev/null || fail "the two-node topology does not validate"

dropped() { curl -sS "$PROXY_URL/__dropped"; }
# One describer for all cases (boto3 takes a second to start): a cluster name in, one JSON line out.
mkfifo "$WORK/describe.in" "$WORK/describe.out"
python3 "$KB_SOURCE_DIR/tests/integration/aws_describe.py" "$MOTO_URL" - <"$WORK/describe.in" >"$WORK/describe.out" &
describer=$!
exec 7>"$WORK/describe.in" 8<"$WORK/describe.out"
cleanup "exec 7>&- 8<&-; kill $describer 2>/dev/null"
# counts: one of everything, as moto reports it.
counts() {
  echo kthw >&7
  IFS= read -r -t 60 line <&8 || fail "the describer did not answer"
  echo "$line" >"$WORK/describe.json"
  python3 - "$WORK/describe.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
got = {"vpcs": len(d["vpcs"]), "subnets": len(d["subnets"]), "internetGateways": len(d["internetGateways"]),
       "routeTables": len(d["routeTables"]), "securityGroups": len(d["securityGroups"]), "instances": len(d["instances"]),
       "nodes": len({i["node"] for i in d["instances"]}), "keyPairs": len(d["keyPairs"]),
       "loadBalancers": len(d["loadBalancers"]), "listeners": sum(l["listeners"] for l in d["loadBalancers"]),
       "targetGroups": len(d["targetGroups"]), "targets": sum(len(t["targets"]) for t in d["targetGroups"])}
want = {"vpcs": 1, "subnets": 1, "internetGateways": 1, "routeTables": 1, "securityGroups": 3, "instances": 2,
        "nodes": 2, "keyPairs": 1, "loadBalancers": 1, "listeners": 1, "targetGroups": 1, "targets": 1}
bad = {k: v for k, v in got.items() if v != want[k]}
print(" ".join(f"{k}={v}" for k, v in bad.items()))
EOF
}

# Every action up sends that creates or changes something.
actions=(CreateVpc ModifyVpcAttribute CreateSubnet ModifySubnetAttribute CreateInternetGateway AttachInternetGateway
  CreateRouteTable AssociateRouteTable CreateRoute CreateSecurityGroup AuthorizeSecurityGroupIngress
  AuthorizeSecurityGroupEgress RevokeSecurityGroupEgress ImportKeyPair CreateTargetGroup ModifyTargetGroupAttributes
  CreateLoadBalancer CreateListener RunInstances ModifyInstanceAttribute RegisterTargets)
start=$SECONDS
two_runs=()
for action in "${actions[@]}"; do
  curl -sS -X POST "$MOTO_URL/moto-api/reset" >/dev/null || fail "moto reset"
  cp "$WORK/base.yaml" "$T"
  before=$(dropped)
  curl -sS -X POST "$PROXY_URL/__arm?action=$action" >/dev/null
  log=$WORK/$action
  if ! AWS_ENDPOINT_URL=$PROXY_URL "$KBUNDLE" aws up --topology "$T" >"$log.up1" 2>&1; then
    two_runs+=("$action")
    AWS_ENDPOINT_URL=$PROXY_URL "$KBUNDLE" aws up --topology "$T" >"$log.up2" 2>&1 ||
      { cat "$log.up1" "$log.up2" >&2; fail "$action: the second up after a lost answer failed"; }
  fi
  [ "$(dropped)" -gt "$before" ] || { cat "$log.up1" >&2; fail "$action: up never sent it (the matrix is stale)"; }
  AWS_ENDPOINT_URL=$PROXY_URL "$KBUNDLE" aws plan --topology "$T" >"$log.plan" 2>&1 || { cat "$log.plan" >&2; fail "$action: plan failed"; }
  grep -q "nothing to do" "$log.plan" || { cat "$log.up1" "$log.plan" >&2; fail "$action: plan not empty after up"; }
  bad=$(counts)
  [ -z "$bad" ] || { cat "$log.up1" >&2; fail "$action: after a lost answer, not one of everything: $bad"; }
done
# A revocation whose answer is lost (after an adminCIDR change): retried, "not found" is done.
sed -i 's|adminCIDR: 203.0.113.0/24|adminCIDR: 198.51.100.0/24|' "$T"
curl -sS -X POST "$PROXY_URL/__arm?action=RevokeSecurityGroupIngress" >/dev/null
before=$(dropped)
AWS_ENDPOINT_URL=$PROXY_URL "$KBUNDLE" aws up --topology "$T" >"$WORK/revoke.up1" 2>&1 ||
  AWS_ENDPOINT_URL=$PROXY_URL "$KBUNDLE" aws up --topology "$T" >"$WORK/revoke.up2" 2>&1 ||
  { cat "$WORK/revoke.up1" "$WORK/revoke.up2" >&2; fail "RevokeSecurityGroupIngress: up did not converge in two runs"; }
[ "$(dropped)" -gt "$before" ] || fail "RevokeSecurityGroupIngress: never sent"
"$KBUNDLE" aws plan --topology "$T" >"$WORK/revoke.plan" 2>&1 && grep -q "nothing to do" "$WORK/revoke.plan" ||
  { cat "$WORK/revoke.up1" "$WORK/revoke.plan" >&2; fail "RevokeSecurityGroupIngress: plan not empty"; }
actions+=(RevokeSecurityGroupIngress)
matrix_seconds=$((SECONDS - start))

# Duplicates left by an older kbundle: a second tagged VPC (empty), internet gateway (detached),
# route table and instance of a node. One up adopts one of each and deletes the others.
curl -sS -X POST "$MOTO_URL/moto-api/reset" >/dev/null
cp "$WORK/base.yaml" "$T"
"$KBUNDLE" aws up --topology "$T" >"$WORK/dup.up0" 2>&1 || { cat "$WORK/dup.up0" >&2; fail "up failed"; }
python3 - "$MOTO_URL" <<'EOF' || fail "could not make the duplicates"
import sys, boto3
c = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1")
tags = [{"Key": "Name", "Value": "kthw"}, {"Key": "kbundle:cluster", "Value": "kthw"},
        {"Key": "kubernetes.io/cluster/kthw", "Value": "owned"}]
spec = lambda kind, extra=[]: [{"ResourceType": kind, "Tags": tags + extra}]
owned = [{"Name": "tag:kubernetes.io/cluster/kthw", "Values": ["owned"]}]
vpc = c.describe_vpcs(Filters=owned)["Vpcs"][0]["VpcId"]
c.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=spec("vpc"))
c.create_internet_gateway(TagSpecifications=spec("internet-gateway"))
c.create_route_table(VpcId=vpc, TagSpecifications=spec("route-table"))
i = c.describe_instances(Filters=owned + [{"Name": "tag:kbundle:node", "Values": ["worker-0"]}])["Reservations"][0]["Instances"][0]
c.run_instances(ImageId=i["ImageId"], InstanceType="t3.large", MinCount=1, MaxCount=1, SubnetId=i["SubnetId"],
                TagSpecifications=spec("instance", [{"Key": "kbundle:node", "Value": "worker-0"}]))
EOF
"$KBUNDLE" aws status --topology "$T" >"$WORK/dup.status" 2>&1 || { cat "$WORK/dup.status" >&2; fail "status fails with duplicates"; }
"$KBUNDLE" aws plan --topology "$T" >"$WORK/dup.plan" 2>&1 || { cat "$WORK/dup.plan" >&2; fail "plan fails with duplicates"; }
for kind in vpc "internet gateway" "route table" instance; do
  grep -q -- "- delete duplicate $kind " "$WORK/dup.plan" || { cat "$WORK/dup.plan" >&2; fail "plan does not delete the duplicate $kind"; }
done
"$KBUNDLE" aws up --topology "$T" >"$WORK/dup.up" 2>&1 || { cat "$WORK/dup.up" >&2; fail "up fails with duplicates"; }
"$KBUNDLE" aws plan --topology "$T" >"$WORK/dup.plan2" 2>&1 || fail "plan failed"
grep -q "nothing to do" "$WORK/dup.plan2" || { cat "$WORK/dup.plan2" >&2; fail "plan not empty after up removed the duplicates"; }
bad=$(counts)
[ -z "$bad" ] || { cat "$WORK/dup.up" >&2; fail "duplicates left after up: $bad"; }
# The kept instance is the first one, the one the topology names.
grep -q "instanceId: $(python3 -c 'import json,sys; print([i["id"] for i in json.load(open(sys.argv[1]))["instances"] if i["node"]=="worker-0"][0])' "$WORK/describe.json")" "$T" ||
  fail "the adopted worker-0 instance is not the one in the topology"
"$KBUNDLE" aws down --topology "$T" --yes >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; fail "down failed"; }
pass "${#actions[@]} lost answers, each converged (${#two_runs[@]} needed a second up: ${two_runs[*]:-none}) in ${matrix_seconds} s with one of everything; duplicate VPC, gateway, route table, instance removed"
