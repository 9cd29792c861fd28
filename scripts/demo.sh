#!/usr/bin/env bash
# The main job on the example cluster, from a fresh machine: install, build,
# then generate every node of examples/aws-ha.yaml into demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh
kbundle=${KB_BUILD_DIR:-build}/generator/kbundle

echo; echo "== kbundle validate"
"$kbundle" validate --topology examples/aws-ha.yaml
echo; echo "== kbundle gen (state in demo/state, output in demo/out)"
"$kbundle" gen --topology examples/aws-ha.yaml --state demo/state --out demo/out
echo; echo "== what control-0 gets"
(cd demo/out/control-0 && find . -type f | sort | sed 's|^\./|  /|')
echo; echo "== what worker-0 gets (no CA key, no etcd or service-account key)"
(cd demo/out/worker-0 && find . -type f | sort | sed 's|^\./|  /|')
echo; echo "== openssl checks a chain"
openssl verify -CAfile demo/state/ca/kubernetes-ca.crt demo/out/worker-0/var/lib/kubelet/kubelet.crt
echo; echo "Run it again: the CAs and certificates in demo/state are reused. Admin kubeconfig: demo/out/admin.kubeconfig"
