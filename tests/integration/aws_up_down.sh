#!/usr/bin/env bash
# kbundle aws: up -> status -> gen (the API endpoint is the load balancer) -> down, against a local
# moto_server with signature checking on; the created resources are described back to check their
# shapes (pod-CIDR routes to the worker instances, source/dest check off, targets, rules, tags).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
start_moto
T=$WORK/topology.yaml
make_topology "$T"

"$KBUNDLE" aws up --topology "$T" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "aws up failed"; }
grep -q "^made 49 change(s)" "$WORK/up.log" || { cat "$WORK/up.log" >&2; fail "aws up: expected 49 changes"; }

# The topology now names the load balancer and every node's public IP; comments are kept.
j=$(status_json "$T")
lb=$(jget "$j" 'j["loadBalancer"]["dnsName"]')
[ -n "$lb" ] || fail "no load balancer DNS name in status"
grep -q "^    host: $lb$" "$T" || fail "apiEndpoint.host is not $lb in the topology"
[ "$(grep -c '^    publicIP: ' "$T")" -eq 6 ] || fail "expected 6 publicIP lines in the topology"
# ... and every node's instance id, the one the status reports (bundles are bound to it).
for n in control-0 control-1 control-2 worker-0 worker-1 worker-2; do
  id=$(jget "$j" "[i['id'] for i in j['instances'] if i['node']=='$n'][0]")
  sed -n "/^  - name: $n\$/,/^  - name/p" "$T" | grep >/dev/null -e "^    instanceId: $id\$" || fail "$n: instanceId $id not in the topology"
done
grep -q "^# The seed cluster" "$T" || fail "the topology lost its comments"
"$KBUNDLE" validate --topology "$T" >/dev/null || fail "the updated topology does not validate"

# Shapes, from the status (what kbundle sees).
[ "$(jget "$j" 'j["vpc"]["dnsHostnames"]')" = True ] || fail "DNS hostnames are off"
[ "$(jget "$j" 'len(j["instances"])')" = 6 ] || fail "expected 6 instances"
for w in 0 1 2; do
  id=$(jget "$j" "[i['id'] for i in j['instances'] if i['node']=='worker-$w'][0]")
  [ "$(jget "$j" "[r['target'] for r in j['routeTable']['routes'] if r['destination']=='10.200.$w.0/24'][0]")" = "$id" ] ||
    fail "route 10.200.$w.0/24 does not point at worker-$w ($id)"
  [ "$(jget "$j" "[i['sourceDestCheck'] for i in j['instances'] if i['node']=='worker-$w'][0]")" = False ] ||
    fail "source/dest check is on for worker-$w"
  [ "$(jget "$j" "[i['privateIP'] for i in j['instances'] if i['node']=='worker-$w'][0]")" = "10.0.1.2$w" ] ||
    fail "worker-$w has the wrong private IP"
done
[ "$(jget "$j" 'sorted(t["ip"] for t in j["targetGroup"]["targets"])')" = "['10.0.1.10', '10.0.1.11', '10.0.1.12']" ] ||
  fail "target group targets are not the control-plane IPs"
[ "$(jget "$j" '[l["port"] for l in j["loadBalancer"]["listeners"]]')" = "[6443]" ] || fail "no TCP 6443 listener"
[ "$(jget "$j" 'j["pendingChanges"]')" = "[]" ] || fail "status shows pending changes after up"

# Shapes, described back with the AWS CLI when there is one (independent of kbundle's parsing).
if command -v aws >/dev/null 2>&1; then
  export AWS_DEFAULT_REGION=us-east-1
  a() { aws --endpoint-url "$MOTO_URL" --output text "$@"; }
  f="Name=tag:kubernetes.io/cluster/kthw,Values=owned"
  [ "$(a ec2 describe-vpcs --filters "$f" --query 'length(Vpcs)')" = 1 ] || fail "aws cli: expected one tagged VPC"
  vpc=$(a ec2 describe-vpcs --filters "$f" --query 'Vpcs[0].VpcId')
  [ "$(a ec2 describe-vpc-attribute --vpc-id "$vpc" --attribute enableDnsHostnames --query EnableDnsHostnames.Value)" = True ] ||
    fail "aws cli: DNS hostnames off"
  for w in 0 1 2; do
    id=$(a ec2 describe-instances --filters "$f" "Name=tag:kbundle:node,Values=worker-$w" \
      "Name=instance-state-name,Values=running" --query 'Reservations[0].Instances[0].InstanceId')
    [ "$(a ec2 describe-instance-attribute --instance-id "$id" --attribute sourceDestCheck --query SourceDestCheck.Value)" = False ] ||
      fail "aws cli: source/dest check on for worker-$w"
    [ "$(a ec2 describe-route-tables --filters "$f" --query "RouteTables[0].Routes[?DestinationCidrBlock=='10.200.$w.0/24'].InstanceId | [0]")" = "$id" ] ||
      fail "aws cli: pod route of worker-$w"
  done
  [ "$(a elbv2 describe-load-balancers --names kthw-api --query 'LoadBalancers[0].[Type,Scheme]')" = "network	internet-facing" ] ||
    fail "aws cli: load balancer is not an internet-facing NLB"
  tg=$(a elbv2 describe-target-groups --names kthw-apiservers --query 'TargetGroups[0].[TargetType,Protocol,Port,HealthCheckProtocol,HealthCheckPath]')
  [ "$tg" = "ip	TCP	6443	HTTPS	/readyz" ] || fail "aws cli: target group is '$tg'"
  cp=$(a ec2 describe-security-groups --filters "Name=vpc-id,Values=$vpc" "Name=group-name,Values=kthw-control-plane" \
    --query 'SecurityGroups[0].GroupId')
  [ "$(a ec2 describe-security-groups --group-ids "$cp" --query "SecurityGroups[0].IpPermissions[?IpProtocol=='-1'].UserIdGroupPairs[].GroupId | contains(@, '$cp')")" = True ] ||
    fail "aws cli: control-plane nodes do not admit each other (etcd)"
  [ "$(a ec2 describe-key-pairs --key-names kbundle-kthw --query 'length(KeyPairs)')" = 1 ] || fail "aws cli: no key pair"
fi

# gen takes the load balancer as the API endpoint, with no hand edit.
gen_example "$T"
grep -Eq "server: \"?https://$lb:6443\"?$" "$WORK/out/admin.kubeconfig" || fail "admin.kubeconfig does not point at $lb"
# ... and binds each bundle to its instance.
"$KBUNDLE" gen --no-binaries --topology "$T" --state "$WORK/state" --out "$WORK/bundles" >/dev/null 2>&1 || fail "gen of bundles"
id=$(jget "$j" "[i['id'] for i in j['instances'] if i['node']=='worker-1'][0]")
"$KBUNDLE" inspect --pubkey "$WORK/bundles/bundle-signing.pub" "$WORK/bundles/worker-1.kbundle" |
  grep >/dev/null -e "EC2 instance $id" || fail "worker-1's bundle is not bound to $id"

"$KBUNDLE" aws down --topology "$T" >"$WORK/down0.log" 2>&1 && fail "down without --yes succeeded"
"$KBUNDLE" aws down --topology "$T" --yes >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; fail "aws down failed"; }
[ "$(tagged_left "$T")" = "[]" ] || fail "resources left after down: $(tagged_left "$T")"
if command -v aws >/dev/null 2>&1; then
  [ "$(a ec2 describe-vpcs --filters "$f" --query 'length(Vpcs)')" = 0 ] || fail "aws cli: a VPC is left"
  [ "$(a ec2 describe-instances --filters "$f" "Name=instance-state-name,Values=pending,running,stopping,stopped" \
    --query 'length(Reservations)')" = 0 ] || fail "aws cli: instances left"
  [ "$(a elbv2 describe-load-balancers --query 'length(LoadBalancers)')" = 0 ] || fail "aws cli: a load balancer is left"
fi
"$KBUNDLE" aws down --topology "$T" --yes >"$WORK/down2.log" 2>&1 || fail "second down failed"
grep -q "nothing to delete" "$WORK/down2.log" || fail "second down was not a no-op"
pass "up, status, gen with the NLB endpoint, down leaving nothing tagged, second down a no-op"
