# shellcheck shell=bash
# Start the machine services the tests need, if they are not already running.

ensure_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return 0; fi
  echo "starting Postgres"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null || return 1
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || return 1
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && return 0; sleep 1; done
  echo "Postgres did not start" >&2; return 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  echo "starting Redis"
  if ! command -v redis-server >/dev/null; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null || return 1
  fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || return 1
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "Redis did not start" >&2; return 1
}

# Debian's docker.io; dockerd without a bridge or iptables rules: build containers use
# network mode host or none (see docs/architecture.md).
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null; then
    echo "installing docker.io and docker-compose"
    apt-get update -qq && apt-get install -y -qq docker.io docker-compose >/dev/null || return 1
  fi
  echo "starting dockerd"
  mkdir -p /var/log
  nohup dockerd --bridge=none --iptables=false >/var/log/forgeline-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "dockerd did not start; see /var/log/forgeline-dockerd.log" >&2; return 1
}

# HAProxy 2.6+ (Debian's package, in /usr/sbin): the production front door and the traffic
# proxy CodeDeploy drives (services/forgeline/codedeploy/traffic/).
ensure_haproxy() {
  if command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; then return 0; fi
  ensure_debian_packages haproxy
}

# Debian packages some tests drive for real, e.g. debootstrap (build images, and the worker
# image's base when no registry is reachable).
ensure_debian_packages() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}
