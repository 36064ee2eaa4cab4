#!/usr/bin/env bash
# Build (once) and cache a real kube-apiserver and etcd for controller
# integration tests (the envtest approach: a real API server on loopback,
# no kubelet, no controller-manager).
#
# Both binaries are compiled from Go modules fetched through the Go module
# proxy; nothing prebuilt is downloaded.
#
#   KUBE_BIN=$(scripts/kube-tools.sh | tail -1)   # build if needed, print bin dir
#   scripts/kube-tools.sh --verify                  # also smoke-test the cached binaries
#   scripts/kube-tools.sh --start DIR               # start etcd + kube-apiserver on
#                                                   # loopback; last line: DIR/kubeconfig
#   scripts/kube-tools.sh --stop DIR                # stop what --start started
#   scripts/kube-tools.sh --kubectl                 # also build kubectl (same module
#                                                   # version) into the bin dir
#
# Cache: ${VOICE_OPERATOR_TOOLS:-$HOME/.cache/voice-operator}/kube/<KUBE_VERSION>/bin/
# The last stdout line is always the absolute bin dir; progress goes to stderr.
# A cold build takes ~4-7 min on 2 cores (measured: etcd 35-60 s, kube-apiserver
# 3-5.5 min; module downloads included); a warm Go build cache makes it seconds.
# Built binaries are cached before their smoke test: if it fails, the next run
# tests them again rather than building them again.
#
# ---------------------------------------------------------------------------
# Flag set verified with these versions (see smoke_test below, which runs it):
#
#   etcd --name=test --data-dir=$DIR/etcd \
#        --listen-client-urls=http://127.0.0.1:$ETCD_PORT \
#        --advertise-client-urls=http://127.0.0.1:$ETCD_PORT \
#        --listen-peer-urls=http://127.0.0.1:$PEER_PORT \
#        --initial-advertise-peer-urls=http://127.0.0.1:$PEER_PORT \
#        --initial-cluster=test=http://127.0.0.1:$PEER_PORT \
#        --unsafe-no-fsync=true --log-level=warn
#
#   kube-apiserver \
#        --etcd-servers=http://127.0.0.1:$ETCD_PORT \
#        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
#        --endpoint-reconciler-type=none \
#        --secure-port=$API_PORT \
#        --cert-dir=$DIR/apiserver-certs \
#        --tls-cert-file=$DIR/serving.crt --tls-private-key-file=$DIR/serving.key \
#        --client-ca-file=$DIR/ca.crt \
#        --token-auth-file=$DIR/tokens.csv \
#        --authorization-mode=RBAC \
#        --service-account-issuer=https://127.0.0.1:$API_PORT \
#        --service-account-key-file=$DIR/sa.pub \
#        --service-account-signing-key-file=$DIR/sa.key \
#        --service-cluster-ip-range=10.0.0.0/24 \
#        --disable-admission-plugins=ServiceAccount \
#        --allow-privileged=true
#
# --endpoint-reconciler-type=none is required with a loopback advertise address
# (1.37 refuses 127.0.0.1 with the default lease reconciler: "may not be in the
# loopback range"); it only means the default/kubernetes Endpoints stay empty.
#
# Auth files (all made with openssl, see gen_auth_files):
#   ca.crt/ca.key          throwaway CA (CN=voice-operator-test-ca)
#   serving.crt/key        server cert signed by the CA, SAN IP:127.0.0.1,DNS:localhost
#   admin.crt/key          client cert CN=admin, O=system:masters (cluster-admin via RBAC)
#   tokens.csv             "$TOKEN,admin,admin,system:masters" (static bearer token)
#   sa.key/sa.pub          RSA key pair for service-account tokens
# A client trusts ca.crt and authenticates either with
#   Authorization: Bearer $TOKEN            or   client cert admin.crt/admin.key
# e.g. curl --cacert ca.crt -H "Authorization: Bearer $TOKEN" https://127.0.0.1:$API_PORT/readyz
# ---------------------------------------------------------------------------
set -euo pipefail

KUBE_VERSION=v1.37.2       # k8s.io/kubernetes; its go.mod says go 1.26.0
ETCD_VERSION=v3.6.16       # go.etcd.io/etcd/server/v3; go.mod says go 1.26.0
MIN_GO=1.26.0              # max of the two go directives above

TOOLS_ROOT=${VOICE_OPERATOR_TOOLS:-$HOME/.cache/voice-operator}
KUBE_DIR=$TOOLS_ROOT/kube/$KUBE_VERSION
BIN_DIR=$KUBE_DIR/bin

log() { printf '[kube-tools] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

VERIFY=0
KUBECTL=0
ACTION=build
CLUSTER_DIR=""
while (( $# )); do
  case $1 in
    --verify) VERIFY=1 ;;
    --kubectl) KUBECTL=1 ;;
    --start|--stop)
      ACTION=${1#--}; shift
      [[ $# -gt 0 ]] || die "--$ACTION needs a directory"
      CLUSTER_DIR=$1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done

have_bins() { [[ -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/etcd ]]; }
# kubectl is only built when asked for (--kubectl): the tests do not need it.
have_wanted() { have_bins && { (( ! KUBECTL )) || [[ -x $BIN_DIR/kubectl ]]; }; }

# Present while etcd and kube-apiserver in BIN_DIR have not passed
# smoke_test. Binaries are installed before their smoke test, because a
# rebuild takes minutes and a loaded machine can fail the test of good
# binaries; this makes the next run test them again before using them.
SMOKE_PENDING=$BIN_DIR/.smoke-pending

# ---------------------------------------------------------------------------
# Smoke test: etcd + kube-apiserver on loopback, check /readyz and /apis.
# ---------------------------------------------------------------------------
USED_PORTS=""
# Ports below the kernel's ephemeral range: one inside it can be the local end
# of a client connection or of its TIME-WAIT, which the probe below takes for
# free but etcd cannot bind ("address already in use" failed smoke tests).
PORT_LOW=10000 PORT_HIGH=32767
if { read -r eph_low _ </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null; then
  if (( eph_low > PORT_LOW + 1000 )); then PORT_HIGH=$((eph_low - 1)); else PORT_LOW=20000 PORT_HIGH=49999; fi
fi
free_port() { # sets FREE_PORT (not via $(...), so USED_PORTS survives)
  local p
  for _ in $(seq 1 200); do
    p=$(( (RANDOM * 2 + RANDOM % 2) % (PORT_HIGH - PORT_LOW + 1) + PORT_LOW ))
    [[ " $USED_PORTS " == *" $p "* ]] && continue
    # connection refused => nothing listens there
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+=" $p"; FREE_PORT=$p; return 0
    fi
  done
  die "no free port found"
}

gen_auth_files() { # $1 = dir
  local d=$1
  ( cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=voice-operator-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout serving.key -out serving.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost" > serving.ext
    openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out serving.crt -days 3650 -extfile serving.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=admin" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out admin.crt -days 3650 -extfile admin.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    openssl rand -hex 24 > token
    printf '%s,admin,admin,"system:masters"\n' "$(cat token)" > tokens.csv
    chmod 600 ./*.key tokens.csv token
  )
}

# How long each request check may keep failing after /readyz said ok: a
# loaded 2-core machine can take seconds more to answer the rest, and checks
# that had one try each failed a fresh CI run (its rerun passed).
ANSWER_WAIT=60
STATUS="" BODY="" CLUSTER_PIDS=""

# GET $API_URL$2, TLS checked against our CA; $1 = state dir, rest = curl
# arguments. Sets BODY and STATUS (000 when nothing answered within 5 s).
# The body is matched in the shell, not piped to `grep -q`: grep quitting
# early makes curl fail on the closed pipe, and pipefail reports the check
# as failed although it matched.
get() {
  local d=$1 path=$2 out; shift 2
  out=$(curl -s --max-time 5 --cacert "$d/ca.crt" -w '\n%{http_code}' "$@" "$API_URL$path") || true
  STATUS=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
as_admin_token() { local d=$1 path=$2; shift 2; get "$d" "$path" -H "Authorization: Bearer $(cat "$d/token")" "$@"; }

readyz_ok() { as_admin_token "$1" /readyz; [[ $STATUS == 200 && $BODY == ok ]]; }
apis_ok() { as_admin_token "$1" /apis; [[ $STATUS == 200 && $BODY == *'"APIGroupList"'* ]]; }
# client certificate (system:masters)
cert_ok() {
  get "$1" /api/v1/namespaces/default --cert "$1/admin.crt" --key "$1/admin.key"
  [[ $STATUS == 200 && $BODY == *'"Namespace"'* ]]
}
# anonymous must not be authorized for resources under RBAC
anonymous_refused() { get "$1" /api/v1/namespaces; [[ $STATUS == 401 || $STATUS == 403 ]]; }

# Runs check "$3" (with the remaining arguments) every 0.5 s until it passes,
# for at most $2 seconds, and gives up as soon as etcd or kube-apiserver
# (CLUSTER_PIDS) has exited. $1 names the check in the log.
retry() {
  local what=$1 limit=$2 t0=$SECONDS tries=0 pid; shift 2
  while :; do
    for pid in $CLUSTER_PIDS; do
      kill -0 "$pid" 2>/dev/null || { log "$what: a process exited early"; return 1; }
    done
    tries=$((tries + 1))
    if "$@"; then
      log "$what ok after ~$((SECONDS - t0))s (try $tries)"
      return 0
    fi
    (( SECONDS - t0 < limit )) || break
    sleep 0.5
  done
  log "$what still failing after $((SECONDS - t0))s ($tries tries; last answer: HTTP $STATUS $(tr -s '[:space:]' ' ' <<<"${BODY:0:300}"))"
  return 1
}

# Starts etcd and kube-apiserver from bin dir $1 with state in dir $2, waits
# for /readyz and then /apis, and writes $2/kubeconfig (bearer token, our CA).
# Sets API_URL and CLUSTER_PIDS; returns 1 if the server did not become ready.
start_cluster() {
  local bin=$1 d=$2 etcd_pid api_pid
  local etcd_port peer_port api_port
  free_port; etcd_port=$FREE_PORT
  free_port; peer_port=$FREE_PORT
  free_port; api_port=$FREE_PORT
  gen_auth_files "$d"
  local token; token=$(cat "$d/token")

  log "etcd on 127.0.0.1:$etcd_port, kube-apiserver on 127.0.0.1:$api_port (logs in $d)"
  "$bin/etcd" --name=test --data-dir="$d/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="test=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true --log-level=warn >"$d/etcd.log" 2>&1 &
  etcd_pid=$!

  "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --secure-port="$api_port" \
    --cert-dir="$d/apiserver-certs" \
    --tls-cert-file="$d/serving.crt" --tls-private-key-file="$d/serving.key" \
    --client-ca-file="$d/ca.crt" \
    --token-auth-file="$d/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$api_port" \
    --service-account-key-file="$d/sa.pub" \
    --service-account-signing-key-file="$d/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true >"$d/apiserver.log" 2>&1 &
  api_pid=$!
  echo "$api_pid $etcd_pid" >"$d/pids"

  API_URL="https://127.0.0.1:$api_port"
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters:"
    echo "- name: voice-operator-test"
    echo "  cluster:"
    echo "    server: $API_URL"
    echo "    certificate-authority: $d/ca.crt"
    echo "users:"
    echo "- name: admin"
    echo "  user:"
    echo "    token: $token"
    echo "contexts:"
    echo "- name: voice-operator-test"
    echo "  context:"
    echo "    cluster: voice-operator-test"
    echo "    user: admin"
    echo "    namespace: default"
    echo "current-context: voice-operator-test"
  } >"$d/kubeconfig"
  chmod 600 "$d/kubeconfig"

  CLUSTER_PIDS="$api_pid $etcd_pid"
  retry "readyz" 120 readyz_ok "$d" || return 1
  # Every client starts with discovery, and a loaded machine (2 busy cores)
  # can say ready a while before it answers /apis.
  retry "/apis (bearer token)" "$ANSWER_WAIT" apis_ok "$d"
}

stop_cluster() { # $1 = dir given to start_cluster
  local pid
  [[ -f $1/pids ]] || return 0
  for pid in $(cat "$1/pids"); do kill "$pid" 2>/dev/null || true; done
  for pid in $(cat "$1/pids"); do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$1/pids"
}

smoke_test() { # $1 = dir holding kube-apiserver and etcd
  local bin=$1 d ok=0 rc=1
  d=$(mktemp -d "${TMPDIR:-/tmp}/kube-smoke.XXXXXX")
  start_cluster "$bin" "$d" && ok=1

  if (( ok )); then
    rc=0
    # (start_cluster has had /apis answered: bearer token, strict TLS against our CA)
    retry "client-cert request" "$ANSWER_WAIT" cert_ok "$d" || rc=1
    retry "anonymous request refused (401/403)" "$ANSWER_WAIT" anonymous_refused "$d" || rc=1
    as_admin_token "$d" /version
    log "server /version gitVersion=$(sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' <<<"$BODY")"
  fi

  stop_cluster "$d"

  if (( rc == 0 )); then
    rm -rf "$d"
    log "smoke test passed"
  else
    log "smoke test FAILED; last apiserver log lines:"
    tail -n 30 "$d/apiserver.log" >&2 || true
    log "etcd log: $d/etcd.log"
  fi
  return "$rc"
}

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------
check_go() {
  command -v go >/dev/null || die "go not found in PATH"
  local have; have=$(go env GOVERSION); have=${have#go}
  log "$(go version); GOPROXY=$(go env GOPROXY)"
  if [[ $(printf '%s\n%s\n' "$MIN_GO" "$have" | sort -V | head -1) != "$MIN_GO" ]]; then
    die "need go >= $MIN_GO (have $have); install a newer Go or set GOTOOLCHAIN=go$MIN_GO+auto"
  fi
}

build_etcd() { # $1 = scratch dir, $2 = output file
  local src=$1/etcd
  mkdir -p "$src"
  cat >"$src/go.mod" <<EOF
module voice-operator.local/etcd-build

go $MIN_GO

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat >"$src/main.go" <<'EOF'
// Equivalent of etcd's own main package (go.etcd.io/etcd/v3/main.go).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  log "building etcd $ETCD_VERSION"
  ( cd "$src" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
      go build -trimpath -ldflags="-s -w" -o "$2" . ) >&2
}

build_kube_cmd() { # $1 = scratch dir, $2 = command (kube-apiserver, kubectl), $3 = output file
  local src=$1/$2
  mkdir -p "$src"
  # k8s.io/kubernetes replaces its staging modules (k8s.io/api, client-go, ...)
  # with ./staging/... paths, which do not exist in the module zip, and a
  # dependency's replace directives are ignored anyway. So our wrapper module
  # maps each of them to its published v0.<minor>.<patch> tag instead.
  local kmod
  kmod=$(cd "$src" && GOFLAGS="" go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f $kmod ]] || die "could not download k8s.io/kubernetes@$KUBE_VERSION"
  local staging_version="v0.${KUBE_VERSION#v1.}"
  # staging modules that k8s.io/kubernetes actually requires (sample-* ones are
  # replaced but not required, and not all are on the proxy)
  local mods
  mods=$(awk '
    /^require[[:space:]]*\(/ {inreq=1; next}
    /^replace[[:space:]]*\(/ {inrep=1; next}
    /^\)/ {inreq=0; inrep=0; next}
    inreq && $1 ~ /^k8s\.io\// {req[$1]=1}
    inrep && $2 == "=>" && $3 ~ /^\.\/staging\// {st[$1]=1}
    END {for (m in st) if (m in req) print m}' "$kmod" | sort)
  [[ -n $mods ]] || die "found no staging modules in $kmod"
  {
    echo "module voice-operator.local/$2-build"
    echo
    echo "go $MIN_GO"
    echo
    echo "godebug default=go${MIN_GO%.*}"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    for m in $mods; do echo "	$m => $m $staging_version"; done
    echo ")"
  } >"$src/go.mod"
  log "building $2 $KUBE_VERSION ($(echo "$mods" | wc -l) staging modules at $staging_version); this takes a while"
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  ( cd "$src" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
      go build -trimpath -ldflags="$ld" -o "$3" "k8s.io/kubernetes/cmd/$2" ) >&2
}

main() {
  if [[ $ACTION == stop ]]; then stop_cluster "$CLUSTER_DIR"; return 0; fi
  if [[ $ACTION == start ]]; then
    build >/dev/null
    mkdir -p "$CLUSTER_DIR"
    CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
    if ! start_cluster "$BIN_DIR" "$CLUSTER_DIR"; then
      tail -n 30 "$CLUSTER_DIR/apiserver.log" >&2 || true
      stop_cluster "$CLUSTER_DIR"
      die "could not start the test cluster"
    fi
    echo "$CLUSTER_DIR/kubeconfig"
    return 0
  fi
  build
}

build() {
  if (( ! VERIFY )) && have_wanted && [[ ! -e $SMOKE_PENDING ]]; then
    if (( KUBECTL )); then check_kubectl; fi
    echo "$BIN_DIR"; return 0
  fi
  command -v openssl >/dev/null || die "openssl not found (needed for the smoke test)"
  command -v curl >/dev/null || die "curl not found (needed for the smoke test)"
  mkdir -p "$KUBE_DIR"
  # one builder at a time (parallel test runs may call this script)
  exec 9>"$KUBE_DIR/.lock"
  flock 9

  if ! have_wanted; then
    check_go
    SCRATCH=$(mktemp -d "$KUBE_DIR/build.XXXXXX")
    trap 'rm -rf "$SCRATCH"' EXIT
    mkdir -p "$SCRATCH/bin" "$BIN_DIR"
    if ! have_bins; then build_server "$SCRATCH"; fi
    if (( KUBECTL )) && [[ ! -x $BIN_DIR/kubectl ]]; then
      local t0=$SECONDS
      build_kube_cmd "$SCRATCH" kubectl "$SCRATCH/bin/kubectl"
      log "kubectl built in $((SECONDS - t0))s"
      install_bin "$SCRATCH/bin/kubectl" kubectl
    fi
  fi

  if (( VERIFY )) || [[ -e $SMOKE_PENDING ]]; then
    if ! smoke_test "$BIN_DIR"; then
      touch "$SMOKE_PENDING"
      die "etcd and kube-apiserver in $BIN_DIR failed the smoke test (above). They stay cached: the next run tests them again without building them (rm -r $BIN_DIR to rebuild)"
    fi
    rm -f "$SMOKE_PENDING"
  fi
  if (( KUBECTL )); then check_kubectl; fi
  # Unlock now: --start's etcd and kube-apiserver would inherit the open lock
  # file and hold the lock for as long as they run.
  exec 9>&-
  echo "$BIN_DIR"
}

build_server() { # $1 = scratch dir; builds and installs whichever of etcd, kube-apiserver is missing
  local scratch=$1
  local t0=$SECONDS
  # before installing, so that no run finds new binaries without it
  touch "$SMOKE_PENDING"
  if [[ ! -x $BIN_DIR/etcd ]]; then
    build_etcd "$scratch" "$scratch/bin/etcd"
    log "etcd built in $((SECONDS - t0))s"
    install_bin "$scratch/bin/etcd" etcd
  fi
  local t1=$SECONDS
  if [[ ! -x $BIN_DIR/kube-apiserver ]]; then
    build_kube_cmd "$scratch" kube-apiserver "$scratch/bin/kube-apiserver"
    log "kube-apiserver built in $((SECONDS - t1))s"
    install_bin "$scratch/bin/kube-apiserver" kube-apiserver
  fi
  log "installed into $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
}

# Through a temporary name in BIN_DIR, so the rename is atomic and no run
# ever finds a half-written binary under the real name.
install_bin() { # $1 = built file, $2 = name in BIN_DIR
  mv -f "$1" "$BIN_DIR/$2.tmp"
  mv -f "$BIN_DIR/$2.tmp" "$BIN_DIR/$2"
}

# On every use, not only after its build: a kubectl that fails this stays
# cached like the server binaries.
check_kubectl() {
  "$BIN_DIR/kubectl" version --client >/dev/null \
    || die "$BIN_DIR/kubectl does not run. It stays cached (rm $BIN_DIR/kubectl to rebuild it)"
}

main
