#!/usr/bin/env bash
# Checks the Helm chart (charts/voice-operator), each step failing the run:
#
#   1. the chart's CRDs are byte-for-byte those in crds/;
#   2. every value values.schema.json declares is in values.yaml, commented;
#   3. `helm lint --strict` with ci/test-values.yaml (few values) and
#      ci/all-values.yaml (ingress, ServiceMonitor, secrets.create,
#      watchNamespace and the rest on);
#   4. `helm template` of both, and of test-values.yaml with the dashboard
#      on (dashboard.enabled=true);
#   5. renders that must fail do, with their message: no publicUrl (the
#      template's `required`), no ElevenLabs key, a termination grace too
#      short for the action log's flush, values the schema refuses;
#   6. on a real kube-apiserver + etcd (scripts/kube-tools.sh --start): the
#      CRDs created, NOTES.txt rendered by `helm install --dry-run`, and both
#      renders through `kubectl apply --dry-run=server --validate=strict`, so
#      every field meets the Kubernetes API's own schemas; then, from the
#      objects as the API server returns them, the default render holds no
#      dashboard object and the dashboard renders exactly one dashboard
#      Deployment (1 replica, strategy Recreate, on a PVC of the render).
#
#   scripts/chart-check.sh            # run every check
#   scripts/chart-check.sh --tools    # only build (or find) helm and kubectl
#
# helm is compiled from its Go module (helm.sh/helm/v3), kubectl from the same
# k8s.io/kubernetes version as kube-apiserver; nothing prebuilt is downloaded.
# Measured on 2 cores: helm ~1.5 min cold (module downloads included);
# kubectl ~25 s once kube-apiserver has been built (the Go build cache holds
# most of its packages). Both are cached outside the repository:
#   helm:    ${VOICE_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-operator}/helm/<HELM_VERSION>/helm
#   kubectl: next to kube-apiserver in scripts/kube-tools.sh's cache (--kubectl)
# Progress goes to stderr; a summary of what was checked to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0   # latest helm.sh/helm/v3 on the proxy; its go.mod: go 1.26.0, client-go v0.37.0
HELM_K8S_MINOR=37      # the Kubernetes minor its client-go matches (helm's Makefile derives it the same way)

TOOLS=${VOICE_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-operator}
HELM_DIR=$TOOLS/helm/$HELM_VERSION
HELM=$HELM_DIR/helm
CHART=charts/voice-operator
RELEASE=voice-operator
NAMESPACE=voice-system

log() { printf '[chart-check] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

CHECKED=()
passed() { CHECKED+=("$*"); log "ok: $*"; }

build_helm() {
  if [[ ! -x $HELM ]]; then
    command -v go >/dev/null || die "go not found in PATH (needed to build helm)"
    mkdir -p "$HELM_DIR"
    exec 8>"$HELM_DIR/.lock"
    flock 8
    [[ -x $HELM ]] || compile_helm
    # Unlock now: the kube-apiserver and etcd started below would inherit the
    # open lock file and hold the lock while they run.
    exec 8>&-
  fi
  # On every use, not only after the build: a helm that fails this stays
  # cached (a rebuild takes minutes), so a later run must not trust it.
  "$HELM" version --short >/dev/null \
    || die "$HELM does not run. It stays cached (rm $HELM to rebuild it)"
}

compile_helm() {
  local t0=$SECONDS scratch
  scratch=$(mktemp -d "$HELM_DIR/build.XXXXXX")
  log "building helm $HELM_VERSION from helm.sh/helm/v3 (a few minutes on a cold Go cache)"
  # The same -X settings as helm's Makefile: without the Kubernetes version
  # helm would lint and render against its built-in default of an old minor.
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  if ! GOBIN=$scratch GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
      go install -trimpath -ldflags="$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2; then
    rm -rf "$scratch"; die "building helm failed"
  fi
  # a rename within HELM_DIR: no run ever finds a half-written helm
  mv -f "$scratch/helm" "$HELM"
  rm -rf "$scratch"
  log "helm built in $((SECONDS - t0))s: $HELM"
}

build_tools() {
  build_helm
  KUBE_BIN=$(bash scripts/kube-tools.sh --kubectl | tail -1)
  KUBECTL=$KUBE_BIN/kubectl
  [[ -x $KUBECTL ]] || die "scripts/kube-tools.sh --kubectl did not leave $KUBECTL"
}

if [[ ${1:-} == --tools ]]; then
  build_tools
  echo "$HELM"
  echo "$KUBECTL"
  exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument: $1 (only --tools)"

command -v python3 >/dev/null || die "python3 not found (checks values.yaml comments)"
build_tools
KUBECTL_VERSION=$("$KUBECTL" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1)
log "helm $("$HELM" version --template '{{.Version}}'), kubectl $KUBECTL_VERSION"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chart-check.XXXXXX")
CLUSTER=$WORK/cluster
cleanup() {
  bash scripts/kube-tools.sh --stop "$CLUSTER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# 1. The chart's CRD is the generated one (tests/crd.rs checks that the
#    top-level file is what `voice-operator crd` prints).
for crd in voiceagents.io_voiceagents.yaml voiceagents.io_voiceagenttemplates.yaml; do
  cmp -s "crds/$crd" "$CHART/crds/$crd" \
    || die "$CHART/crds/$crd differs from crds/$crd; copy it: cp crds/$crd $CHART/crds/"
  passed "chart CRD is identical to crds/$crd"
done

# 2. Every value the schema declares is in values.yaml, with a comment right
#    above it. (The schema's additionalProperties: false makes lint refuse
#    the opposite: a value the schema does not know.)
python3 - "$CHART/values.yaml" "$CHART/values.schema.json" <<'PY' || die "values.yaml and values.schema.json disagree (above)"
import json, re, sys

def declared(node, prefix=()):
    for key, sub in node.get("properties", {}).items():
        yield prefix + (key,)
        yield from declared(sub, prefix + (key,))

wanted = set(declared(json.load(open(sys.argv[2]))))
seen, bare, stack, prev = set(), [], [], ""
for line in open(sys.argv[1]):
    text = line.rstrip("\n")
    if not text.strip():
        continue
    m = re.match(r"^( *)([A-Za-z][\w.-]*):", text)
    if m:
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        path = tuple(k for _, k in stack)
        if path in wanted:
            seen.add(path)
            # a section rule ("# -- Access ---") does not document the key under it
            if not prev.lstrip().startswith("#") or prev.lstrip().startswith("# --"):
                bare.append(".".join(path))
    prev = text
errors = [f"no comment above {p}" for p in bare]
errors += [f"{'.'.join(p)} is in the schema but not in values.yaml" for p in sorted(wanted - seen)]
for e in errors:
    print(f"[chart-check] {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
passed "every value in values.schema.json is in values.yaml with a comment"

# 3. Lint, strictly, with few values and with everything on.
for values in test-values all-values; do
  "$HELM" lint --strict "$CHART" -n "$NAMESPACE" -f "$CHART/ci/$values.yaml" >"$WORK/lint-$values.log" 2>&1 \
    || { cat "$WORK/lint-$values.log" >&2; die "helm lint --strict -f ci/$values.yaml failed"; }
  passed "helm lint --strict -f ci/$values.yaml"
done

render() { # $1 = output file, rest = helm template arguments
  local out=$1; shift
  "$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" "$@" >"$out"
}

# 4. Renders: the one with few values, and the one with ingress,
#    ServiceMonitor, secrets.create, watchNamespace and the rest on.
render "$WORK/default.yaml" -f "$CHART/ci/test-values.yaml" || die "helm template -f ci/test-values.yaml failed"
passed "helm template -f ci/test-values.yaml: $(grep -c '^kind:' "$WORK/default.yaml") objects"
render "$WORK/all.yaml" -f "$CHART/ci/all-values.yaml" || die "helm template -f ci/all-values.yaml failed"
for kind in Ingress ServiceMonitor Secret Role; do
  grep -q "^kind: $kind\$" "$WORK/all.yaml" || die "ci/all-values.yaml rendered no $kind"
done
grep -q '^kind: ClusterRole$' "$WORK/all.yaml" && die "watchNamespace is set but a ClusterRole was rendered"
passed "helm template -f ci/all-values.yaml: $(grep -c '^kind:' "$WORK/all.yaml") objects (Ingress, ServiceMonitor, Secret, namespaced RBAC)"
render "$WORK/dashboard.yaml" -f "$CHART/ci/test-values.yaml" --set dashboard.enabled=true \
  || die "helm template -f ci/test-values.yaml --set dashboard.enabled=true failed"
passed "helm template -f ci/test-values.yaml --set dashboard.enabled=true: $(grep -c '^kind:' "$WORK/dashboard.yaml") objects"

# 5. Renders that must fail, each with its own message.
must_fail() { # $1 = what, $2 = expected message, rest = helm template arguments
  local what=$1 expected=$2; shift 2
  if render "$WORK/refused.yaml" "$@" 2>"$WORK/refused.err"; then
    die "$what: the render succeeded but must fail"
  fi
  grep -qF -- "$expected" "$WORK/refused.err" \
    || { cat "$WORK/refused.err" >&2; die "$what: failed without the message '$expected'"; }
  passed "$what: refused with '$expected'"
}
must_fail "render without publicUrl" "publicUrl is required" \
  -f "$CHART/ci/test-values.yaml" --set publicUrl=
must_fail "render without the ElevenLabs API key" "ELEVENLABS_API_KEY is required" \
  -f "$CHART/ci/test-values.yaml" --set secrets.elevenlabsApiKey.name=
must_fail "render without the custom-LLM secret" "VOICE_OPERATOR_LLM_SECRET is required" \
  -f "$CHART/ci/test-values.yaml" --set secrets.llmSecret.name=
render "$WORK/unauthenticated.yaml" -f "$CHART/ci/test-values.yaml" --set secrets.llmSecret.name= --set allowUnauthenticatedLlm=true \
  || die "helm template with allowUnauthenticatedLlm=true and no custom-LLM secret failed"
grep -q 'VOICE_OPERATOR_ALLOW_UNAUTHENTICATED_LLM' "$WORK/unauthenticated.yaml" \
  || die "allowUnauthenticatedLlm=true did not set VOICE_OPERATOR_ALLOW_UNAUTHENTICATED_LLM"
passed "without the custom-LLM secret the chart renders only with allowUnauthenticatedLlm=true"
must_fail "terminationGracePeriodSeconds not above the flush time" "must exceed preStopSleepSeconds + actionLog.shutdownGraceSecs" \
  -f "$CHART/ci/test-values.yaml" --set terminationGracePeriodSeconds=25
must_fail "tenantStore outside its enum" "values don't meet the specifications of the schema" \
  -f "$CHART/ci/test-values.yaml" --set tenantStore=postgres
must_fail "a value the schema does not know" "additional properties 'replicas' not allowed" \
  -f "$CHART/ci/test-values.yaml" --set replicas=3
must_fail "the dashboard without the Kinesis action log" "dashboard.enabled needs actionLog.sink=kinesis" \
  -f "$CHART/ci/test-values.yaml" --set dashboard.enabled=true --set actionLog.sink=jsonl
must_fail "a price per credit without its currency" "/pricing/pricePerCredit" \
  -f "$CHART/ci/test-values.yaml" --set-string pricing.pricePerCredit=0.00018

# 6. Both renders against a real kube-apiserver: the CRDs applied for real,
#    then every object through server-side dry-run with strict field
#    validation (unknown or duplicate fields are errors, not warnings).
#    ServiceMonitor is checked against ci/servicemonitor-crd.yaml, a minimal
#    structural stand-in for the Prometheus Operator CRD.
log "starting kube-apiserver + etcd"
export KUBECONFIG
KUBECONFIG=$(bash scripts/kube-tools.sh --start "$CLUSTER" | tail -1)
k() { "$KUBECTL" --request-timeout=30s "$@"; }
k create -f "$CHART/crds/voiceagents.io_voiceagents.yaml" >/dev/null
k create -f "$CHART/crds/voiceagents.io_voiceagenttemplates.yaml" >/dev/null
k create -f "$CHART/ci/servicemonitor-crd.yaml" >/dev/null
k wait --for=condition=Established --timeout=60s \
  crd/voiceagents.voiceagents.io crd/voiceagenttemplates.voiceagents.io \
  crd/servicemonitors.monitoring.coreos.com >/dev/null
passed "CRDs accepted and Established (voiceagents, voiceagenttemplates, ServiceMonitor stand-in)"
k create namespace "$NAMESPACE" >/dev/null
k create namespace voice-tenants >/dev/null   # watchNamespace/adminNamespace of ci/all-values.yaml
# Discovery of the new CRDs can lag their Established condition.
for _ in $(seq 1 30); do
  k api-resources --api-group=monitoring.coreos.com -o name 2>/dev/null | grep -q servicemonitors && break
  sleep 1
done
# NOTES.txt, which `helm template` leaves out: helm's own dry-run install
# renders it (and maps every object through the API server's discovery).
for values in test-values all-values; do
  "$HELM" install "$RELEASE" "$CHART" -n "$NAMESPACE" --dry-run=client -f "$CHART/ci/$values.yaml" \
    >"$WORK/install-$values.txt" 2>&1 \
    || { cat "$WORK/install-$values.txt" >&2; die "helm install --dry-run -f ci/$values.yaml failed"; }
  for route in webhook post-call conversation-init "llm/<businessId>/<locationId>"; do
    grep -qF "https://voice.example.com/api/elevenlabs/$route" "$WORK/install-$values.txt" \
      || die "NOTES.txt (ci/$values.yaml) does not show <publicUrl>/api/elevenlabs/$route"
  done
done
grep -qF "port-forward svc/$RELEASE-dashboard" "$WORK/install-all-values.txt" \
  || die "NOTES.txt (ci/all-values.yaml, dashboard on) does not say how to open the dashboard"
grep -q "dashboard" "$WORK/install-test-values.txt" \
  && die "NOTES.txt (ci/test-values.yaml) speaks of a dashboard that is off"
passed "helm install --dry-run: NOTES.txt gives the four ElevenLabs URLs (publicUrl with and without a trailing /), and the dashboard's only when it is on"
for render in default all dashboard; do
  if ! k apply --dry-run=server --validate=strict -f "$WORK/$render.yaml" >"$WORK/apply-$render.log" 2>&1; then
    cat "$WORK/apply-$render.log" >&2
    die "kubectl apply --dry-run=server --validate=strict refused the $render render"
  fi
  passed "kubectl apply --dry-run=server --validate=strict ($render render): $(grep -c 'server dry run' "$WORK/apply-$render.log") objects accepted by kube-apiserver"
  # The same objects as JSON, as the API server would store them.
  k apply --dry-run=server -f "$WORK/$render.yaml" -o json >"$WORK/server-$render.json" \
    || die "kubectl apply --dry-run=server -o json ($render render) failed"
done

# The dashboard's objects: none unless dashboard.enabled; with it, one
# Deployment of one replica that is replaced (Recreate), on a PVC of the
# render; the operator's Service, PDB and NetworkPolicy do not select it.
python3 - "$WORK" <<'PY' || die "the dashboard's objects are not as they must be (above)"
import json, sys

work = sys.argv[1]

def objects(render):
    data = json.load(open(f"{work}/server-{render}.json"))
    return data["items"] if data.get("kind") == "List" else [data]

def dashboard(obj):
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "dashboard"

def selector(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "Service":
        return spec.get("selector")
    if obj["kind"] == "PodDisruptionBudget":
        return spec["selector"].get("matchLabels")
    if obj["kind"] == "NetworkPolicy":
        return spec["podSelector"].get("matchLabels")
    return None

errors = []
for render, enabled in (("default", False), ("all", True), ("dashboard", True)):
    items = objects(render)
    mine = [o for o in items if dashboard(o)]
    if not enabled:
        if mine:
            names = [o["kind"] + "/" + o["metadata"]["name"] for o in mine]
            errors.append(f"{render}: dashboard objects rendered while it is off: {names}")
        continue
    deployments = [o for o in mine if o["kind"] == "Deployment"]
    if len(deployments) != 1:
        errors.append(f"{render}: {len(deployments)} dashboard Deployments, not 1")
        continue
    spec = deployments[0]["spec"]
    if spec.get("replicas") != 1:
        errors.append(f"{render}: the dashboard has {spec.get('replicas')} replicas, not 1")
    if spec.get("strategy", {}).get("type") != "Recreate":
        errors.append(f"{render}: the dashboard's strategy is {spec.get('strategy')}, not Recreate")
    pod = spec["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
    pvcs = [o["metadata"]["name"] for o in mine if o["kind"] == "PersistentVolumeClaim"]
    if len(pvcs) != 1 or claims != pvcs:
        errors.append(f"{render}: the dashboard mounts the claims {claims}; the render holds the PVCs {pvcs}")
    container = pod["containers"][0]
    if container["args"][:1] != ["dashboard"]:
        errors.append(f"{render}: the dashboard's container runs {container['args']}")
    for probe in ("readinessProbe", "livenessProbe"):
        if container.get(probe, {}).get("httpGet", {}).get("path") != "/dashboard":
            errors.append(f"{render}: the dashboard's {probe} is not GET /dashboard")
    operator = [o for o in items if o["kind"] == "Deployment" and not dashboard(o)][0]["spec"]["template"]["spec"]
    if (pod["securityContext"] != operator["securityContext"]
            or container["securityContext"] != operator["containers"][0]["securityContext"]):
        errors.append(f"{render}: the dashboard's security context differs from the operator's")
    labels = spec["template"]["metadata"]["labels"]
    for o in items:
        wanted = None if dashboard(o) else selector(o)
        if wanted and all(labels.get(k) == v for k, v in wanted.items()):
            errors.append(f"{render}: {o['kind']}/{o['metadata']['name']} of the operator selects the dashboard's pod")
    env = {e["name"] for e in container.get("env", [])}
    needed = {"KINESIS_STREAM_NAME", "AWS_REGION"}
    if render == "all":  # the one with an admin token and an AWS_* extraEnv
        needed |= {"VOICE_OPERATOR_ADMIN_TOKEN", "AWS_STS_REGIONAL_ENDPOINTS"}
    if not needed <= env:
        errors.append(f"{render}: the dashboard's environment lacks {sorted(needed - env)}")
    if "TWILIO_AUTH_TOKEN" in env:
        errors.append(f"{render}: the dashboard's pod gets the operator's other extraEnv (TWILIO_AUTH_TOKEN)")
for e in errors:
    print(f"[chart-check] {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
passed "dashboard objects: none by default; with dashboard.enabled one Deployment (replicas 1, Recreate, probes on /dashboard, the operator's security context, the stream's settings and the admin token) on its PVC, selected by none of the operator's Service, PDB or NetworkPolicy"

echo "chart-check: all ${#CHECKED[@]} checks passed (helm $HELM_VERSION, kubectl $KUBECTL_VERSION)"
for c in "${CHECKED[@]}"; do echo "  ok  $c"; done
