#!/bin/sh
# Entrypoint of every KubeServe model runtime container.
#  1. a manifest of presigned URLs (the kubernetes backend: no credentials in the pod) or an
#     s3:// artifact: download it (model, requirements.txt, wheelhouse/) into a writable dir;
#  2. requirements.txt: install only what the image lacks, from the version's wheelhouse
#     (pip --no-index) when there is one, into $KUBESERVE_PACKAGES_DIR (an emptyDir: the root
#     filesystem is read-only), put first on PYTHONPATH so it shadows the image's copies;
#  3. exec the server, so it is PID 1's direct replacement and receives SIGTERM.
#
# Environment (all optional except a model):
#   KUBESERVE_ARTIFACT_MANIFEST  presigned-URL manifest (kubeserve_runtime.presigned); wins
#                           over KUBESERVE_MODEL_URI, which then only names the version
#   KUBESERVE_MODEL_URI     s3://bucket/prefix or a local path (default: $MODEL_DIR)
#   MODEL_DIR               local artifact directory (default /models; for s3: /tmp/model)
#   WHEELHOUSE_DIR          wheels for the requirements (default $MODEL_DIR/wheelhouse)
#   KUBESERVE_PACKAGES_DIR  where missing packages go (default /tmp/kubeserve-packages)
#   KUBESERVE_MODEL_NAME, KUBESERVE_MODEL_VERSION, KUBESERVE_DEPLOYMENT_ID,
#   KUBESERVE_HOST (default 0.0.0.0), KUBESERVE_PORT (default 8080),
#   KUBESERVE_MAX_BATCH_SIZE, KUBESERVE_MAX_BATCH_WAIT_MS, KUBESERVE_MODEL_THREADS
# Extra arguments are passed to `python -m kubeserve_runtime`.
set -eu

PYTHON="${PYTHON:-python}"
MODEL_URI="${KUBESERVE_MODEL_URI:-${MODEL_DIR:-/models}}"

if [ -n "${KUBESERVE_ARTIFACT_MANIFEST:-}" ]; then
  MODEL_DIR="${MODEL_DIR:-/tmp/model}"
  echo "start.sh: fetching the files of $KUBESERVE_ARTIFACT_MANIFEST into $MODEL_DIR" >&2
  "$PYTHON" -m kubeserve_runtime.presigned "$KUBESERVE_ARTIFACT_MANIFEST" "$MODEL_DIR"
  MODEL_URI="$MODEL_DIR"
fi

case "$MODEL_URI" in
  s3://*)
    MODEL_DIR="${MODEL_DIR:-/tmp/model}"
    echo "start.sh: fetching $MODEL_URI into $MODEL_DIR" >&2
    "$PYTHON" -m kubeserve_runtime.loaders fetch "$MODEL_URI" "$MODEL_DIR" >/dev/null
    MODEL_URI="$MODEL_DIR"
    ;;
  *)
    MODEL_DIR="${MODEL_DIR:-$MODEL_URI}"
    [ -f "$MODEL_DIR" ] && MODEL_DIR="$(dirname "$MODEL_DIR")"
    ;;
esac

WHEELHOUSE_DIR="${WHEELHOUSE_DIR:-$MODEL_DIR/wheelhouse}"
PACKAGES_DIR="${KUBESERVE_PACKAGES_DIR:-/tmp/kubeserve-packages}"

if [ -f "$MODEL_DIR/requirements.txt" ]; then
  mkdir -p "$PACKAGES_DIR"
  PYTHONPATH="$PACKAGES_DIR${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONPATH
  if [ -d "$WHEELHOUSE_DIR" ]; then
    "$PYTHON" -m kubeserve_runtime.requirements install "$MODEL_DIR/requirements.txt" \
      --target "$PACKAGES_DIR" --wheelhouse "$WHEELHOUSE_DIR" >&2
  else
    "$PYTHON" -m kubeserve_runtime.requirements install "$MODEL_DIR/requirements.txt" \
      --target "$PACKAGES_DIR" >&2
  fi
fi

exec "$PYTHON" -m kubeserve_runtime \
  --model "$MODEL_URI" \
  --name "${KUBESERVE_MODEL_NAME:-model}" \
  --version "${KUBESERVE_MODEL_VERSION:-v1}" \
  --host "${KUBESERVE_HOST:-0.0.0.0}" \
  --port "${KUBESERVE_PORT:-8080}" \
  "$@"
