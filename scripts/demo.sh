#!/usr/bin/env bash
# The main job on the example cluster, from a fresh machine: install, build,
# then generate one signed bundle per node of examples/aws-ha.yaml into demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh
kbundle=${KB_BUILD_DIR:-build}/cli/kbundle

echo; echo "== kbundle validate --topology examples/aws-ha.yaml"
"$kbundle" validate --topology examples/aws-ha.yaml
echo; echo "== (config-only bundles: binaries need \`kbundle fetch\`, which needs a network or an air-gap kit)"
echo "== kbundle gen --no-binaries --topology examples/aws-ha.yaml --state demo/state --out demo/bundles"
"$kbundle" gen --no-binaries --topology examples/aws-ha.yaml --state demo/state --out demo/bundles
echo; echo "== kbundle plan --no-binaries --topology examples/aws-ha.yaml --state demo/state (offline; exit 0: nothing left to change)"
"$kbundle" plan --no-binaries --topology examples/aws-ha.yaml --state demo/state
echo; echo "== kbundle inspect demo/bundles/worker-0.kbundle (no CA key, no etcd or service-account key)"
"$kbundle" inspect demo/bundles/worker-0.kbundle
echo; echo "== the same files as trees: kbundle gen ... --format dir --out demo/tree"
"$kbundle" gen --no-binaries --topology examples/aws-ha.yaml --state demo/state --out demo/tree --format dir | tail -2
echo; echo "== openssl checks a chain"
openssl verify -CAfile demo/state/ca/kubernetes-ca.crt demo/tree/worker-0/var/lib/kubelet/kubelet.crt
echo; echo "Run it again: the CAs, certificates and serials in demo/state are reused and the bundles come out byte-identical."
echo "Workstation kubeconfig: demo/bundles/admin.kubeconfig; bundle signing key: demo/bundles/bundle-signing.pub"
