#!/usr/bin/env bash
# kbundle aws refuses clearly, with a nonzero exit: wrong credentials (moto checks signatures), an
# unknown region, a node IP outside the subnet, no aws section, no credentials at all, down without --yes.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
start_moto
T=$WORK/topology.yaml
make_topology "$T"

expect 1 "ec2 DescribeVpcs: AuthFailure: AWS was not able to validate" \
  env AWS_SECRET_ACCESS_KEY=wrong-secret "$KBUNDLE" aws plan --topology "$T"
expect 1 "AuthFailure" env AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00 "$KBUNDLE" aws up --topology "$T"
grep -q "wrong-secret" "$WORK/out.log" && fail "a secret was printed"
expect 1 "no AWS credentials found" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$KBUNDLE" aws status --topology "$T"
expect 1 "AWS profile 'nope' not found" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=nope \
  "$KBUNDLE" aws status --topology "$T"

sed 's/^  region: us-east-1/  region: us-nowhere-7/' "$T" >"$WORK/region.yaml"
expect 1 "unknown AWS region 'us-nowhere-7'" "$KBUNDLE" aws up --topology "$WORK/region.yaml"
sed 's/^  region: us-east-1/  region: Frankfurt/' "$T" >"$WORK/region2.yaml"
expect 3 "aws.region: 'Frankfurt' is not an AWS region name" "$KBUNDLE" aws up --topology "$WORK/region2.yaml"

sed 's/privateIP: 10.0.1.22/privateIP: 10.0.2.22/' "$T" >"$WORK/outside.yaml"
expect 3 "privateIP 10.0.2.22 is outside aws.subnetCIDR 10.0.1.0/24" "$KBUNDLE" aws up --topology "$WORK/outside.yaml"
sed 's/privateIP: 10.0.1.22/privateIP: 10.0.1.2/' "$T" >"$WORK/reserved.yaml"
expect 3 "is reserved by AWS" "$KBUNDLE" aws plan --topology "$WORK/reserved.yaml"
sed 's/^  adminCIDR:.*/  adminCidr: 0.0.0.0\/0/' "$T" >"$WORK/typo.yaml"
expect 3 "did you mean 'adminCIDR'" "$KBUNDLE" aws plan --topology "$WORK/typo.yaml"
expect 3 "no aws section" "$KBUNDLE" aws up --topology "$EXAMPLE"
expect 2 "run it with --yes" "$KBUNDLE" aws down --topology "$T"

# Nothing was created by any of the above.
[ "$(tagged_left "$T")" = "[]" ] || fail "a refused command created resources"
pass "wrong credentials, unknown region, IP outside the subnet and the rest refused clearly"
