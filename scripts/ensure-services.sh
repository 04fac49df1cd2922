#!/usr/bin/env bash
# Start PostgreSQL and RabbitMQ on 127.0.0.1 when they do not answer (Debian-style machine, as
# root; see ../shared/ENV.md). Idempotent: a service that answers is left alone.
# Override with KUBESERVE_TEST_POSTGRES_URL / KUBESERVE_TEST_AMQP_URL to use other servers.
set -euo pipefail

say() { printf '[ensure-services] %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {  # host port seconds
  for _ in $(seq 1 "$3"); do port_open "$1" "$2" && return 0; sleep 1; done
  return 1
}

ensure_postgres() {
  if [ -n "${KUBESERVE_TEST_POSTGRES_URL:-}" ]; then say "PostgreSQL: using KUBESERVE_TEST_POSTGRES_URL"; return; fi
  if port_open 127.0.0.1 5432; then say "PostgreSQL: answering on 127.0.0.1:5432"; return; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "PostgreSQL: not installed; installing postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  say "PostgreSQL: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 127.0.0.1 5432 60 || { say "PostgreSQL did not come up"; exit 1; }
  # Trust auth on loopback is what the fixtures expect on a test machine.
  if ! psql -h 127.0.0.1 -U postgres -tAc 'select 1' >/dev/null 2>&1; then
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    say "PostgreSQL: enabling trust auth for 127.0.0.1 in $hba"
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
}

ensure_rabbitmq() {
  if [ -n "${KUBESERVE_TEST_AMQP_URL:-}" ]; then say "RabbitMQ: using KUBESERVE_TEST_AMQP_URL"; return; fi
  if port_open 127.0.0.1 5672; then say "RabbitMQ: answering on 127.0.0.1:5672"; return; fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    say "RabbitMQ: not installed; installing rabbitmq-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  say "RabbitMQ: starting"
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached || true
  rabbitmqctl wait --timeout 60 "/var/lib/rabbitmq/mnesia/rabbit@$(hostname -s).pid" >/dev/null 2>&1 || true
  wait_port 127.0.0.1 5672 60 || { say "RabbitMQ did not come up"; exit 1; }
}

# The observability tests run a real Prometheus and promtool (Debian's package starts no daemon).
ensure_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    say "prometheus: $(prometheus --version 2>&1 | head -n1)"; return
  fi
  say "prometheus: not installed; installing prometheus (promtool included)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
}

# tests/deploy lints scripts/*.sh (scripts/dev-cluster.sh included) with shellcheck.
ensure_shellcheck() {
  if command -v shellcheck >/dev/null 2>&1; then say "shellcheck: present"; return; fi
  say "shellcheck: not installed; installing shellcheck"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
}

ensure_postgres
ensure_rabbitmq
ensure_prometheus
ensure_shellcheck
