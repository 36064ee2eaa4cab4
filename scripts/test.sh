#!/usr/bin/env bash
# Runs every test, including those against the local AWS emulator and a
# real kube-apiserver.
#
# Installs moto (the AWS emulator, from PyPI) into a cached virtualenv on
# first use and starts it on a free loopback port; builds kube-apiserver and
# etcd from Go modules on first use (scripts/kube-tools.sh, cached) and
# starts them on loopback; builds kubectl (same cache) and tools/gitops-status
# (kstatus and Argo CD's Lua, scripts/gitops-status.sh, cached) for the
# GitOps status tests; runs `cargo test`; stops both whatever happens.
# The dashboard page's test drives a headless Chromium: Debian's chromium
# and chromium-driver packages, which .ci/run installs (this script only
# says so up front when they are missing; the test then fails naming them).
# Extra arguments go to `cargo test`: a test-name filter runs one area, for
# example `scripts/test.sh controller::` (the unit tests of src/controller
# and the integration tests of tests/it/controller).
set -euo pipefail

cd "$(dirname "$0")/.."
cache="${VOICE_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-operator}"
venv="$cache/moto-venv"
moto="$venv/bin/moto_server"

if [ ! -x "$moto" ]; then
  echo "test.sh: installing moto[server] into $venv" >&2
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'moto[server]>=5,<6'
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t moto.XXXXXX.log)
kube_dir=$(mktemp -d -t kube-test.XXXXXX)
"$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() {
  kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null
  scripts/kube-tools.sh --stop "$kube_dir" 2>/dev/null
  rm -rf "$log" "$kube_dir"
}
trap cleanup EXIT

for _ in $(seq 1 150); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 $moto_pid 2>/dev/null; then cat "$log" >&2; echo "test.sh: moto failed to start" >&2; exit 1; fi
  sleep 0.1
done
echo "test.sh: AWS emulator (moto) on http://127.0.0.1:$port" >&2

if [ ! -x "${VOICE_OPERATOR_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}" ]; then
  echo "test.sh: no chromedriver: the dashboard's browser test will fail; install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2
fi

# What GitOps tools see of a VoiceAgent (tests/it/controller/gitops.rs):
# kubectl for `kubectl wait`, and kstatus and Argo CD's Lua VM from Go modules.
kube_bin=$(scripts/kube-tools.sh --kubectl | tail -1)
export VOICE_OPERATOR_TEST_KUBECTL="$kube_bin/kubectl"
VOICE_OPERATOR_TEST_GITOPS_STATUS=$(scripts/gitops-status.sh | tail -1)
export VOICE_OPERATOR_TEST_GITOPS_STATUS

kubeconfig=$(scripts/kube-tools.sh --start "$kube_dir" | tail -1)
echo "test.sh: kube-apiserver and etcd on loopback; kubeconfig $kubeconfig" >&2
export VOICE_OPERATOR_TEST_KUBECONFIG="$kubeconfig"

export VOICE_OPERATOR_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
export VOICE_OPERATOR_TEST_MOTO_SERVER="$moto"
# Keep the SDK from reading a developer's real AWS setup.
# and never ask the EC2 metadata endpoint: tests talk to loopback only.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL

cargo test --locked "$@"
