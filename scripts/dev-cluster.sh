#!/usr/bin/env bash
# The local data center (roadmap phase 0) on a workstation with Docker: a kind cluster wired to
# the docker-compose registry (registry:2 on 127.0.0.1:5000), the images built and pushed there,
# ingress-nginx, kube-prometheus-stack, MinIO, PostgreSQL and RabbitMQ installed with Helm, then
# the platform chart, then the `k8s` test suite against it.
#
#   ./scripts/dev-cluster.sh            # everything (idempotent: re-run to rebuild and upgrade)
#   ./scripts/dev-cluster.sh delete     # remove the kind cluster (the registry keeps its images)
#   DRY_RUN=1 ./scripts/dev-cluster.sh  # print every command instead of running it
#
# Needs docker (with compose), kind, kubectl, helm and uv on PATH. Knobs: CLUSTER (kubeserve),
# TAG (dev), REGISTRY_PORT (5000), SKIP_TESTS=1. Written state: .dev-cluster/ (passwords, values,
# kubeconfig) - keep it out of git (it is in .gitignore).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${CLUSTER:-kubeserve}"
TAG="${TAG:-dev}"
REGISTRY_PORT="${REGISTRY_PORT:-5000}"
REGISTRY_CONTAINER="${REGISTRY_CONTAINER:-kubeserve-registry}"
REGISTRY="localhost:${REGISTRY_PORT}"
STATE="${STATE:-.dev-cluster}"
DRY_RUN="${DRY_RUN:-}"
SERVICES=(gateway auth registry builder deployer)

say() { printf '[dev-cluster] %s\n' "$*" >&2; }

run() {  # run a command, or print it under DRY_RUN
  if [ -n "$DRY_RUN" ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

need() {
  [ -n "$DRY_RUN" ] && return 0
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { say "missing: $tool (see docs/kubernetes.md)"; exit 1; }
  done
}

secret() {  # a URL-safe random secret kept in $STATE/<name> across runs
  local file="$STATE/$1"
  [ -s "$file" ] || { mkdir -p "$STATE"; openssl rand -hex 16 >"$file"; chmod 600 "$file"; }
  cat "$file"
}

kind_config() {  # containerd resolves localhost:5000 to the registry container on kind's network
  cat <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
  - |-
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
nodes:
  - role: control-plane
    labels:
      ingress-ready: "true"
    extraPortMappings:
      - {containerPort: 80, hostPort: 80, listenAddress: "127.0.0.1"}
      - {containerPort: 443, hostPort: 443, listenAddress: "127.0.0.1"}
EOF
}

registry_up() {
  say "image registry: docker compose up -d image-registry (127.0.0.1:${REGISTRY_PORT})"
  run docker compose up -d image-registry
}

cluster_up() {
  mkdir -p "$STATE"
  kind_config >"$STATE/kind.yaml"
  if [ -z "$DRY_RUN" ] && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    say "kind cluster $CLUSTER exists"
  else
    run kind create cluster --name "$CLUSTER" --config "$STATE/kind.yaml" \
      --kubeconfig "$STATE/kubeconfig"
  fi
  # Each node: localhost:5000 means the registry container, reached over kind's network.
  local dir="/etc/containerd/certs.d/${REGISTRY}"
  local nodes
  if [ -n "$DRY_RUN" ]; then nodes="${CLUSTER}-control-plane"; else nodes=$(kind get nodes --name "$CLUSTER"); fi
  for node in $nodes; do
    run docker exec "$node" mkdir -p "$dir"
    run docker exec "$node" sh -c "printf '[host.\"http://${REGISTRY_CONTAINER}:5000\"]\n' > ${dir}/hosts.toml"
  done
  run docker network connect kind "$REGISTRY_CONTAINER" || true
  # KEP-1755: tell tools where the local registry is.
  run kubectl --kubeconfig "$STATE/kubeconfig" apply -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: local-registry-hosting, namespace: kube-public}
data:
  localRegistryHosting.v1: |
    host: "${REGISTRY}"
EOF
}

images() {
  for svc in "${SERVICES[@]}"; do
    run docker build -f images/platform/Dockerfile --target "$svc" -t "${REGISTRY}/kubeserve/${svc}:${TAG}" .
    run docker push "${REGISTRY}/kubeserve/${svc}:${TAG}"
  done
  run docker build -f images/base/Dockerfile -t "${REGISTRY}/kubeserve/runtime-base:${TAG}" .
  run docker push "${REGISTRY}/kubeserve/runtime-base:${TAG}"
}

helm_k() { run helm --kubeconfig "$STATE/kubeconfig" "$@"; }

addons() {
  helm_k repo add ingress-nginx https://kubernetes.github.io/ingress-nginx --force-update
  helm_k repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
  helm_k repo add minio https://charts.min.io/ --force-update
  helm_k upgrade --install ingress-nginx ingress-nginx/ingress-nginx -n ingress-nginx --create-namespace \
    --set controller.hostPort.enabled=true --set controller.service.type=NodePort \
    --set-string controller.nodeSelector.ingress-ready=true --wait
  helm_k upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
    -n monitoring --create-namespace --set grafana.sidecar.dashboards.searchNamespace=ALL --wait
  helm_k upgrade --install minio minio/minio -n minio --create-namespace --set mode=standalone \
    --set replicas=1 --set persistence.size=10Gi --set resources.requests.memory=512Mi \
    --set rootUser=kubeserve --set rootPassword="$(secret s3.pass)" \
    --set 'buckets[0].name=kubeserve,buckets[0].policy=none' --wait
  helm_k upgrade --install postgresql oci://registry-1.docker.io/bitnamicharts/postgresql -n data \
    --create-namespace --set auth.username=kubeserve --set auth.database=kubeserve \
    --set auth.password="$(secret pg.pass)" --wait
  helm_k upgrade --install rabbitmq oci://registry-1.docker.io/bitnamicharts/rabbitmq -n data \
    --set auth.username=kubeserve --set auth.password="$(secret mq.pass)" --wait
}

platform_values() {
  cat <<EOF
image: {registry: "${REGISTRY}", tag: "${TAG}", pullPolicy: Always}
secrets: {internalSecret: "$(secret internal.secret)$(secret internal.secret)"}
externalDatabase: {host: postgresql.data.svc.cluster.local, password: "$(secret pg.pass)"}
externalRabbitmq: {host: rabbitmq.data.svc.cluster.local, password: "$(secret mq.pass)"}
externalS3:
  endpoint: http://minio.minio.svc.cluster.local:9000
  bucket: kubeserve
  accessKeyId: kubeserve
  secretAccessKey: "$(secret s3.pass)"
gateway:
  ingress: {enabled: true, hostname: kubeserve.localtest.me}
deployer:
  kubernetes:
    runtimeImage: ${REGISTRY}/kubeserve/runtime-base:${TAG}
    ingressHostname: kubeserve.localtest.me
    objectStoreNamespace: minio
serviceMonitor: {enabled: true, labels: {release: kube-prometheus-stack}}
prometheusRule: {enabled: true}
EOF
}

platform() {
  [ -s "$STATE/jwt.pem" ] || run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$STATE/jwt.pem"
  platform_values >"$STATE/values.yaml"
  helm_k upgrade --install kubeserve charts/kubeserve -n kubeserve --create-namespace \
    -f "$STATE/values.yaml" --set-file secrets.jwtPrivateKey="$STATE/jwt.pem" --wait --timeout 10m
}

k8s_tests() {
  [ -n "${SKIP_TESTS:-}" ] && { say "SKIP_TESTS set: not running tests/k8s"; return; }
  run env KUBECONFIG="$STATE/kubeconfig" KUBESERVE_E2E_PROBE_IMAGE="${REGISTRY}/kubeserve/runtime-base:${TAG}" \
    uv run --no-sync pytest tests/k8s -m k8s -q
}

main() {
  case "${1:-up}" in
    up)
      need docker kind kubectl helm uv openssl
      registry_up; cluster_up; images; addons; platform; k8s_tests
      say "done: http://kubeserve.localtest.me  (KUBECONFIG=$STATE/kubeconfig)";;
    delete) need kind; run kind delete cluster --name "$CLUSTER";;
    *) say "usage: $0 [up|delete]"; exit 2;;
  esac
}

main "$@"
