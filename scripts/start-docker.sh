#!/usr/bin/env bash
# Make sure a Docker engine answers. If none does and this is Debian with root, install Debian's
# docker.io package (when dockerd is missing) and start dockerd in the background.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  echo "docker: engine already answers"
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  echo "docker: no Docker engine answers. Start Docker (Docker Desktop, or 'sudo systemctl start docker') and run this again." >&2
  exit 4
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker: installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

# A dockerd that was killed leaves its pid file behind; a stale one must not block the start.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  rm -f "$pidfile"
fi

log=/var/log/localproc-dockerd.log
echo "docker: starting dockerd in the background (log: $log)"
# setsid: the engine must outlive this script and not get the terminal's signals.
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker: engine answers"
    exit 0
  fi
  sleep 1
done
echo "docker: dockerd did not answer within 60 s; see $log" >&2
tail -20 "$log" >&2 || true
exit 4
