#!/usr/bin/env bash
# Makes sure what the tests talk to is installed and running: MariaDB (127.0.0.1:3306, root
# without a password), Redis (127.0.0.1:6379), NATS (127.0.0.1:4222), and the programs the
# tests start themselves: redis-server, mariadbd, nginx, Chromium (/usr/bin/chromium), Node.js,
# espeak-ng (the voice transcription tests speak a sentence with it) and moto_server (a local
# S3 for the file-store tests, from PyPI).
# Installs with apt-get when something is missing; fails loudly when it cannot.
set -euo pipefail

apt_updated=
need_package() { # need_package <command-or-path> <debian package>...
  local probe=$1; shift
  if command -v "$probe" >/dev/null 2>&1 || [ -x "$probe" ]; then return 0; fi
  echo "services: installing $* ..."
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "services: $what did not come up" >&2
  exit 1
}

need_package redis-server redis-server
need_package mariadbd mariadb-server
need_package mariadb mariadb-client
need_package /usr/bin/chromium chromium
need_package nginx nginx-light
need_package /usr/sbin/nats-server nats-server
need_package mariadb-install-db mariadb-server
need_package node nodejs
need_package npm npm
need_package espeak-ng espeak-ng

if ! command -v moto_server >/dev/null 2>&1; then
  echo "services: installing moto[server] ..."
  need_package pip3 python3-pip
  python3 -m pip install --quiet 'moto[server]' 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages 'moto[server]'
fi
command -v moto_server >/dev/null 2>&1 || { echo "services: moto_server is not on PATH" >&2; exit 1; }

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping

if ! mariadb -h 127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1; then
  echo "services: starting mariadb"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
fi
wait_for mariadb mariadb -h 127.0.0.1 -uroot -e 'SELECT 1'
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 4222; then
  echo "services: starting nats"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222
fi
wait_for nats port_open 4222
echo "services: redis, mariadb, nats, nginx, chromium, node, espeak-ng and moto are ready"
