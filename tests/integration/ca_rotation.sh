#!/usr/bin/env bash
# Issue 16, section 2: `kbundle rotate ca` for each CA through start -> gen -> advance -> gen ->
# advance -> gen -> advance (complete) -> gen. At every phase:
#  - every trust file of the CA (and, for kubernetes-ca, every kubeconfig's certificate-authority-data)
#    is one bundle: old CA, old+new, old+new, new, new;
#  - `openssl verify -CAfile <that bundle>` accepts every leaf of the phase AND every leaf of the
#    phase before (a rollout half done), and rejects the leaves two phases apart (advancing early);
#  - kubernetes-ca: real kubectl with every (distinct) kubeconfig of the phase authenticates against an
#    mTLS stand-in (mtls_apiserver_stand_in.py, serving the phase's kube-apiserver cert, demanding a
#    client cert from the phase's ca.crt), and against the stand-ins of the neighbouring phases.
# Refusals (exit 3, state untouched): advance before gen, abort after phase 1, unknown CA, a second
# rotation of the same CA, advance/abort with none in progress; swapped, missing or extra rotation
# files refused by gen naming the file.
source "$(dirname "$0")/lib.bash"
need openssl python3 sha256sum
kubectl version --client >/dev/null 2>&1 || skip "kubectl is not installed"
HERE=$(cd "$(dirname "$0")" && pwd)
S=$WORK/state
export HOME=$WORK/home KUBECACHEDIR=$WORK/kubecache  # kubectl writes nothing outside $WORK
mkdir -p "$HOME"
started=$(date +%s.%N)

gen() {
  rm -rf "$WORK/$1" "$WORK/$1".kc*
  "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$S" --out "$WORK/$1" --format dir >"$WORK/gen.log" 2>&1 ||
    { cat "$WORK/gen.log" >&2; fail "gen $1"; }
}
rotate() { "$KBUNDLE" rotate ca --topology "$EXAMPLE" --state "$S" "$@"; }
state_sum() { (cd "$S" && find . -type f ! -name .lock -exec sha256sum {} + | LC_ALL=C sort); }
# refused PATTERN ARGS...: `kbundle rotate ca ARGS` exits 3 naming PATTERN and changes nothing.
refused() {
  local pattern=$1 before
  shift
  before=$(state_sum)
  expect 3 "$pattern" rotate "$@"
  [ "$(state_sum)" = "$before" ] || fail "rotate $*: refused, but the state changed"
}
pem_count() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1"; }
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
# A kubeconfig's base64 field (kbundle writes one per line; kubectl itself reads them below).
kc_field() { sed -n "s/^ *$2: //p" "$1" | base64 -d; }

kubeconfigs() { find "$1" -name '*kubeconfig*' -type f ! -path '*.kc*' | sort; }
# kubeconfig_pems DIR FIELD TAG: FIELD of every kubeconfig in DIR as a PEM file (kept in DIR.TAG/), by name.
kubeconfig_pems() {
  local dir=$1 field=$2 tag=$3 kc i=0
  mkdir -p "$dir.$tag"
  while IFS= read -r kc; do
    i=$((i + 1))
    [ -s "$dir.$tag/$i.crt" ] || kc_field "$kc" "$field" >"$dir.$tag/$i.crt"
    echo "$dir.$tag/$i.crt"
  done < <(kubeconfigs "$dir")
}
# trust_files CA DIR: every file of DIR that is a trust bundle of CA (kubeconfig CA data extracted).
trust_files() {
  local ca=$1 dir=$2
  case $ca in
    kubernetes-ca)
      find "$dir" -path '*/var/lib/kubernetes/ca.crt' | sort
      kubeconfig_pems "$dir" certificate-authority-data kcca
      ;;
    etcd-ca) find "$dir" -path '*/etc/etcd/ca.crt' -o -path '*/var/lib/kubernetes/etcd-ca.crt' | sort ;;
    front-proxy-ca) find "$dir" -path '*/var/lib/kubernetes/front-proxy-ca.crt' | sort ;;
  esac
}
# leaves CA DIR: every certificate CA issued in DIR (kubeconfig client certs extracted).
leaves() {
  local ca=$1 dir=$2
  case $ca in
    kubernetes-ca)
      find "$dir" \( -path '*/var/lib/kubernetes/kube-apiserver.crt' -o -path '*/apiserver-kubelet-client.crt' \
        -o -path '*/kbundle-bootstrap.crt' -o -path '*/var/lib/kubelet/kubelet.crt' \) | sort
      kubeconfig_pems "$dir" client-certificate-data kcleaf
      ;;
    etcd-ca) find "$dir" \( -path '*/etc/etcd/server.crt' -o -path '*/etc/etcd/peer.crt' -o -path '*/apiserver-etcd-client.crt' \) | sort ;;
    front-proxy-ca) find "$dir" -path '*/front-proxy-client.crt' | sort ;;
  esac
}

# The one bundle every trust file of CA holds in phase directory DIR, checked to hold WANT CAs.
BUNDLE=
one_bundle() {
  local ca=$1 dir=$2 want=$3 first="" f n=0
  while IFS= read -r f; do
    n=$((n + 1))
    [ -z "$first" ] && first=$f
    cmp -s "$first" "$f" || fail "$ca $dir: trust files differ: $first vs $f"
  done < <(trust_files "$ca" "$WORK/$dir")
  [ "$n" -gt 0 ] || fail "$ca $dir: no trust file"
  [ "$(pem_count "$first")" = "$want" ] || fail "$ca $dir: the trust bundle holds $(pem_count "$first") CAs, want $want"
  BUNDLE=$first
  TRUST_FILES=$n
}
# verify_all BUNDLE DIR CA: every leaf of CA in DIR chains to BUNDLE.
verify_all() {
  local bundle=$1 dir=$2 ca=$3 out
  mapfile -t ls < <(leaves "$ca" "$WORK/$dir")
  [ "${#ls[@]}" -gt 0 ] || fail "$ca $dir: no leaves"
  out=$(openssl verify -CAfile "$bundle" "${ls[@]}" 2>&1) || { echo "$out" >&2; fail "$ca: leaves of $dir do not chain to $bundle"; }
  LEAVES=${#ls[@]}
}
# verify_none BUNDLE DIR CA: no leaf of CA in DIR chains to BUNDLE (what advancing early breaks).
verify_none() {
  local bundle=$1 dir=$2 ca=$3 l
  while IFS= read -r l; do
    if openssl verify -CAfile "$bundle" "$l" >/dev/null 2>&1; then fail "$ca: $l of $dir chains to $bundle (two phases apart)"; fi
  done < <(leaves "$ca" "$WORK/$dir")
}

# The mTLS stand-ins for kubernetes-ca: one per phase, serving control-0's apiserver cert of the phase.
declare -A PORT
serve() {
  local phase=$1 d=$WORK/$1/control-0/var/lib/kubernetes
  python3 "$HERE/mtls_apiserver_stand_in.py" "$d/kube-apiserver.crt" "$d/kube-apiserver.key" "$d/ca.crt" "$WORK/port.$phase" \
    2>"$WORK/server.$phase.log" &
  local pid=$!
  cleanup "kill $pid"
  for _ in $(seq 100); do [ -s "$WORK/port.$phase" ] && break; sleep 0.05; done
  [ -s "$WORK/port.$phase" ] || { cat "$WORK/server.$phase.log" >&2; fail "stand-in of $phase did not start"; }
  PORT[$phase]=$(cat "$WORK/port.$phase")
}
# The distinct kubeconfigs of a phase (the shared ones are the same file on every node).
distinct_kubeconfigs() {
  local kc
  declare -A seen=()
  while IFS= read -r kc; do
    local h
    h=$(sha256sum <"$kc" | cut -c1-64)
    [ -n "${seen[$h]:-}" ] && continue
    seen[$h]=1
    echo "$kc"
  done < <(kubeconfigs "$1")
}
# kubectl_ok PHASE-OF-KUBECONFIGS PHASE-OF-SERVER: every distinct kubeconfig authenticates.
KUBECTL_CALLS=0
kubectl_ok() {
  local kc out
  while IFS= read -r kc; do
    out=$(kubectl --kubeconfig "$kc" --server "https://127.0.0.1:${PORT[$2]}" --request-timeout 10s get --raw /healthz 2>&1) ||
      { echo "$out" >&2; fail "kubectl with $kc ($1) against the stand-in of $2"; }
    [ "$out" = ok ] || fail "kubectl with $kc ($1) against $2: '$out'"
    KUBECTL_CALLS=$((KUBECTL_CALLS + 1))
  done < <(distinct_kubeconfigs "$WORK/$1")
}
kubectl_fails() {
  local kcs kc
  mapfile -t kcs < <(distinct_kubeconfigs "$WORK/$1")
  kc=${kcs[0]}
  if kubectl --kubeconfig "$kc" --server "https://127.0.0.1:${PORT[$2]}" --request-timeout 10s get --raw /healthz >/dev/null 2>&1; then
    fail "kubectl with $kc ($1) against the stand-in of $2 succeeded (two phases apart)"
  fi
}

# Unknown CA names (also with --json), and flags that contradict each other: refused, nothing written.
gen p0
for bad in etcd ETCD-CA "etcd-ca " ../etcd-ca kubernetes-ca/x "" signing-key encryption-key $'etcd-ca\n'; do
  refused "unknown CA" --ca "$bad"
  refused '"action": "refused"' --ca "$bad" --json --advance
done
before=$(state_sum)
rotate --ca etcd-ca --advance --abort >"$WORK/both.log" 2>&1 && fail "--advance with --abort accepted"
grep -q "excludes" "$WORK/both.log" || { cat "$WORK/both.log" >&2; fail "--advance --abort: no clear message"; }
[ "$(state_sum)" = "$before" ] || fail "--advance --abort changed the state"

summary=()
for ca in kubernetes-ca etcd-ca front-proxy-ca; do
  rm -rf "$S" "$WORK"/p[0-9]*
  gen p0
  old_fp=$(fp "$S/ca/$ca.crt")
  refused "no rotation of $ca is in progress; start one with" --ca "$ca" --advance
  refused "no rotation of $ca is in progress" --ca "$ca" --abort

  # Start, abort in phase 1 (allowed: nothing was signed by the new CA), start again.
  expect 0 "started the rotation of $ca: phase 1/3" rotate --ca "$ca"
  [ -f "$S/rotation/$ca.crt" ] && [ "$(stat -c %a "$S/rotation/$ca.key")" = 600 ] || fail "$ca: rotation files missing or not 0600"
  expect 0 "dropped the rotation of $ca" rotate --ca "$ca" --abort
  [ ! -e "$S/rotation/$ca.crt" ] || fail "$ca: abort left the new CA behind"
  rotate --ca "$ca" --json >"$WORK/start.json" || fail "$ca: start --json"
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["action"]=="started" and j["phase"]==1 and j["lastPhase"]==3 and not j["generated"], j' \
    "$WORK/start.json" || fail "$ca: start --json output"
  new_crt=$WORK/new-$ca.crt
  cp "$S/rotation/$ca.crt" "$new_crt"

  # Refusals in phase 1 before gen.
  refused "phase 1/3 of the rotation of $ca has not been generated yet; run \`kbundle gen" --ca "$ca" --advance
  refused "a rotation of $ca is already in progress (phase 1/3" --ca "$ca"
  rotate --ca "$ca" --advance --json >"$WORK/refused.json" 2>/dev/null && fail "$ca: advance --json before gen accepted"
  grep -q '"action": "refused"' "$WORK/refused.json" || fail "$ca: --json refusal not reported as such"

  # Swapped, missing and extra rotation files: gen refuses naming the file, state and out untouched.
  for damage in swapped missing extra; do
    cp -a "$S" "$WORK/state.keep"
    case $damage in
      swapped) openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$S/rotation/$ca.key" \
        -subj "/CN=$ca" -days 30 -out "$S/rotation/$ca.crt" 2>/dev/null; named=rotation/$ca.crt ;;
      missing) rm "$S/rotation/$ca.key"; named=rotation/$ca.key ;;
      extra) cp "$S/rotation/$ca.crt" "$S/rotation/other-ca.crt"; named=rotation/other-ca.crt ;;
    esac
    before=$(state_sum)
    expect 1 "$S/$named: damaged state" "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$S" --out "$WORK/p0" --format dir
    [ "$(state_sum)" = "$before" ] || fail "$ca $damage: gen changed the state"
    expect 1 "$S/$named: damaged state" rotate --ca "$ca" --advance
    rm -rf "$S" && mv "$WORK/state.keep" "$S"
  done

  # Phase 1: trust old+new (old first), leaves unchanged.
  gen p1
  one_bundle "$ca" p0 1 && b0=$BUNDLE
  one_bundle "$ca" p1 2 && b1=$BUNDLE
  subjects=$(openssl crl2pkcs7 -nocrl -certfile "$b1" | openssl pkcs7 -print_certs -noout | grep '^subject')
  [ "$(echo "$subjects" | head -1)" = "subject=CN = $ca" ] && echo "$subjects" | tail -1 | grep -q "CN = $ca 20" ||
    fail "$ca: phase 1 bundle is not old then new: $subjects"
  verify_all "$b1" p1 "$ca" && verify_all "$b1" p0 "$ca"
  plan_out=$("$KBUNDLE" plan --no-binaries --topology "$EXAMPLE" --state "$S" 2>&1 || true)
  echo "$plan_out" | grep -q "rotation $ca: phase 1/3 (generated)" || { echo "$plan_out" >&2; fail "$ca: plan does not show phase 1"; }
  echo "$plan_out" | grep -q -- "--advance: phase 2: every certificate" || fail "$ca: plan does not say what advancing changes"

  # Phase 2: every leaf reissued by the new CA; trust still both.
  expect 0 "$ca: phase 1/3 -> 2/3" rotate --ca "$ca" --advance
  refused "phase 2/3: certificates or data made with the new material are out there, so it can no longer be dropped" --ca "$ca" --abort
  refused "phase 2/3 of the rotation of $ca has not been generated yet" --ca "$ca" --advance
  "$KBUNDLE" plan --json --no-binaries --topology "$EXAMPLE" --state "$S" >"$WORK/plan.json" 2>&1 || true
  python3 - "$WORK/plan.json" "$ca" <<'PY' || fail "$ca: plan --json of phase 2"
import json, sys
j = json.load(open(sys.argv[1]))
r = j["rotations"]
assert len(r) == 1 and r[0]["name"] == sys.argv[2] and r[0]["phase"] == 2 and r[0]["lastPhase"] == 3 and not r[0]["generated"], r
reasons = {c["reason"] for n in j["nodes"] for c in n["certificates"]} | {c["reason"] for c in j["sharedCertificates"]}
assert reasons == {"CA rotation: %s phase 2" % sys.argv[2]}, reasons
PY
  gen p2
  one_bundle "$ca" p2 2 && b2=$BUNDLE
  cmp -s "$b1" "$b2" || fail "$ca: the trust bundle changed in phase 2"
  verify_all "$new_crt" p2 "$ca"  # issued by the new CA alone
  verify_all "$b2" p2 "$ca" && verify_all "$b2" p1 "$ca"
  verify_none "$b0" p2 "$ca"  # a node still in phase 0 could not verify phase 2: why phase 1 goes everywhere first
  if [ "$ca" = kubernetes-ca ]; then
    for cp in control-0 control-1 control-2; do
      d=$WORK/p2/$cp/var/lib/kubernetes
      [ "$(pem_count "$d/ca-signing.crt")" = 1 ] && cmp -s "$d/ca-signing.crt" "$new_crt" || fail "$cp: ca-signing.crt is not the new CA alone"
      [ "$(openssl x509 -in "$d/ca-signing.crt" -noout -pubkey | sha256sum)" = "$(openssl pkey -in "$d/ca.key" -pubout | sha256sum)" ] ||
        fail "$cp: ca.key does not match ca-signing.crt"
      grep -q -- "--cluster-signing-cert-file=/var/lib/kubernetes/ca-signing.crt" "$WORK/p2/$cp/etc/systemd/system/kube-controller-manager.service" ||
        fail "$cp: controller-manager does not sign with ca-signing.crt"
    done
  fi

  # Phase 3: only the new CA is trusted.
  expect 0 "$ca: phase 2/3 -> 3/3" rotate --ca "$ca" --advance
  gen p3
  one_bundle "$ca" p3 1 && b3=$BUNDLE
  cmp -s "$b3" "$new_crt" || fail "$ca: phase 3 trusts something else than the new CA"
  verify_all "$b3" p3 "$ca" && verify_all "$b3" p2 "$ca"
  verify_none "$b3" p1 "$ca"  # phase 1 leaves are refused once the old CA is gone: why phase 2 goes everywhere first

  # Complete: the new CA is the state's CA, the rotation files and record are gone.
  expect 0 "completed the rotation of $ca: the new CA" rotate --ca "$ca" --advance
  [ "$(fp "$S/ca/$ca.crt")" = "$(fp "$new_crt")" ] && [ "$(fp "$new_crt")" != "$old_fp" ] || fail "$ca: ca/$ca.crt is not the new CA"
  # (encryption.json is not a rotation's file: it records the encryption key in use, always there.)
  left=$(ls -A "$S/rotation" | grep -vx encryption.json || true)
  [ -z "$left" ] || fail "$ca: rotation files left: $left"
  refused "no rotation of $ca is in progress" --ca "$ca" --advance
  gen p4
  one_bundle "$ca" p4 1 && b4=$BUNDLE
  cmp -s "$b4" "$b3" || fail "$ca: completing changed the trust bundle"
  verify_all "$b4" p4 "$ca" && verify_all "$b4" p3 "$ca"
  [ -z "$(find "$WORK/p4" -name ca-signing.crt)" ] || fail "$ca: ca-signing.crt still shipped after completion"
  grep -q -- "--cluster-signing-cert-file=/var/lib/kubernetes/ca.crt" "$WORK/p4/control-0/etc/systemd/system/kube-controller-manager.service" ||
    fail "$ca: the controller-manager flag did not return to ca.crt"

  if [ "$ca" = kubernetes-ca ]; then
    for p in p0 p1 p2 p3 p4; do serve $p; done
    for p in p0 p1 p2 p3 p4; do kubectl_ok $p $p; done
    # A rollout half done: kubeconfigs of a phase against the apiserver of the next one and back.
    for pair in "p0 p1" "p1 p2" "p2 p3" "p3 p4"; do
      set -- $pair
      kubectl_ok "$1" "$2"
      kubectl_ok "$2" "$1"
    done
    kubectl_fails p0 p2  # old-only trust vs the new serving cert
    kubectl_fails p1 p3  # an old client cert vs new-only client CA
  fi
  summary+=("$ca: $TRUST_FILES trust files, $LEAVES leaves per phase")
done
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
pass "3 CAs rotated through 3 phases + completion; ${summary[*]}; $KUBECTL_CALLS kubectl calls; $(printf %.1f "$elapsed") s"
