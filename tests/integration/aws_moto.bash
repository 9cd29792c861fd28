# Shared by the aws_*, publish_s3/retry and installer_instance_identity tests (sourced after lib.bash):
# a private moto_server on 127.0.0.1 (run_moto), with signature checking on and credentials created
# in it (start_moto), a topology with an aws section. Never talks to a real AWS endpoint: every
# AWS_ENDPOINT_URL points at the local moto.

command -v moto_server >/dev/null 2>&1 || skip "moto_server is not installed (pip install 'moto[server]')"
need curl python3 ssh-keygen

# Nothing from the caller's AWS set-up may leak in (profiles, real endpoints, real keys).
for v in $(env | sed -n 's/^\(AWS_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export HOME=$WORK/home
mkdir -p "$HOME"

# run_moto [VAR=VALUE...]: a moto_server on a free loopback port with that environment, stopped at
# exit; sets MOTO_URL, MOTO_PORT and MOTO_PID once it answers.
run_moto() {
  MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  MOTO_URL=http://127.0.0.1:$MOTO_PORT
  env "$@" moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  cleanup "kill $MOTO_PID 2>/dev/null; wait $MOTO_PID 2>/dev/null"
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$MOTO_URL/moto-api/" && return 0
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$WORK/moto.log" >&2; fail "moto_server exited"; }
    sleep 0.1
  done
  fail "moto_server did not answer within 10 s"
}

# start_moto: run_moto with signature checking, and exports AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# of an IAM user.
start_moto() {
  # Requests after the first 3 (the IAM set-up below) must carry a valid SigV4 signature
  # of a known access key with a policy that allows the action.
  run_moto INITIAL_NO_AUTH_ACTION_COUNT=3
  local iam=(curl -sS --fail-with-body --aws-sigv4 "aws:amz:us-east-1:iam" --user bootstrap:bootstrap "$MOTO_URL/")
  "${iam[@]}" -d 'Action=CreateUser&Version=2010-05-08&UserName=kbundle' >/dev/null || fail "moto: CreateUser"
  local policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
  "${iam[@]}" --data-urlencode "PolicyDocument=$policy" \
    -d 'Action=PutUserPolicy&Version=2010-05-08&UserName=kbundle&PolicyName=all' >/dev/null || fail "moto: PutUserPolicy"
  local key
  key=$("${iam[@]}" -d 'Action=CreateAccessKey&Version=2010-05-08&UserName=kbundle') || fail "moto: CreateAccessKey"
  AWS_ACCESS_KEY_ID=$(sed -n 's:.*<AccessKeyId>\(.*\)</AccessKeyId>.*:\1:p' <<<"$key")
  AWS_SECRET_ACCESS_KEY=$(sed -n 's:.*<SecretAccessKey>\(.*\)</SecretAccessKey>.*:\1:p' <<<"$key")
  [ -n "$AWS_ACCESS_KEY_ID" ] && [ -n "$AWS_SECRET_ACCESS_KEY" ] || fail "moto: no access key in: $key"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  export AWS_ENDPOINT_URL=$MOTO_URL
}

# make_topology FILE: the example cluster plus an aws section for moto's us-east-1.
make_topology() {
  ssh-keygen -q -t ed25519 -N '' -C kbundle-test -f "$WORK/id_ed25519" >/dev/null
  cp "$EXAMPLE" "$1"
  cat >>"$1" <<YAML

aws:
  region: us-east-1
  vpcCIDR: 10.0.0.0/16
  subnetCIDR: 10.0.1.0/24
  instanceTypes: {controlPlane: t3.medium, worker: t3.large}
  image:
    name: "ubuntu/images/hvm-ssd/ubuntu-*-amd64-server-*"   # moto ships a few Canonical images
    owner: "099720109477"
  sshPublicKeyFile: $WORK/id_ed25519.pub
  adminCIDR: 203.0.113.0/24
YAML
}

# status_json TOPOLOGY -> prints `kbundle aws status --json`
status_json() { "$KBUNDLE" aws status --topology "$1" --json; }

# jget JSON EXPR: evaluates a Python expression over the parsed JSON `j`.
jget() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# tagged_count: resources of any kind still tagged for cluster kthw (EC2 and ELBv2), via the status.
tagged_left() {
  local j
  j=$(status_json "$1")
  jget "$j" '[k for k in ("vpc","subnet","internetGateway","routeTable","loadBalancer","targetGroup") if j[k]] + [i["id"] for i in j["instances"] + j["strayInstances"]] + list(j["securityGroups"]) + (["keyPair"] if j["keyPair"] else [])'
}
