#!/usr/bin/env bash
# Make Podman's Docker-compatible API answer on the rootful socket, so that localproc (and its
# tests) can use Podman as the engine: DOCKER_HOST=unix:///run/podman/podman.sock.
#   1. installs Debian's podman with netavark + aardvark-dns (Debian 12's network stack for
#      Podman 4: a bridge per network, DNS by name between containers of a user network) when
#      podman is missing and this is Debian as root;
#   2. starts `podman system service` in the background as a process of its own (PID file
#      /run/podman/localproc-service.pid, log /var/log/localproc-podman.log), unless the socket
#      already answers; where root cannot raise its resource limits to Podman's defaults, with a
#      configuration of its own that lowers them (see below);
#   3. copies the example image from Docker into Podman's storage (`docker save | podman load`),
#      building it first with scripts/build-example-image.sh when Docker has none.
#   --stop   stops the service this script started (by its PID) and exits.
# The running dockerd is left alone: Podman keeps its own storage (/var/lib/containers), its own
# networks (10.88.0.0/16 and 10.89.x.0/24, apart from Docker's 172.17.0.0/16 and its pools) and
# its own iptables chains (NETAVARK_*).
# Safe to run again: every step skips what is already in place.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
image="${LOCALPROC_EXAMPLE_IMAGE:-localproc/example-python:bookworm}"
socket=/run/podman/podman.sock
pidfile=/run/podman/localproc-service.pid
log=/var/log/localproc-podman.log
conf=/run/podman/localproc-containers.conf

answers() {
  curl --silent --fail --max-time 5 --unix-socket "$socket" http://d/_ping >/dev/null 2>&1
}

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    echo "podman: stopped the API service (pid $(cat "$pidfile"))"
  fi
  rm -f "$pidfile"
  exit 0
elif [ -n "${1:-}" ]; then
  echo "usage: scripts/setup-podman.sh [--stop]" >&2
  exit 2
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  if answers; then
    echo "podman: API service already answers at $socket"
    exit 0
  fi
  echo "podman: no Podman API answers at $socket. As root: 'podman system service --time=0 unix://$socket &'; rootless: 'podman system service --time=0 &' (socket \$XDG_RUNTIME_DIR/podman/podman.sock)." >&2
  exit 4
fi

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v netavark >/dev/null 2>&1 || [ -x /usr/lib/podman/netavark ] || missing+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || command -v aardvark-dns >/dev/null 2>&1 || missing+=(aardvark-dns)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "podman: installing Debian's ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

backend="$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || true)"
if [ "$backend" != netavark ]; then
  echo "podman: warning: Podman uses the '$backend' network backend, not netavark; peers still resolve through /etc/hosts, DNS by name may not" >&2
fi

start_service() {
  mkdir -p "$(dirname "$socket")"
  rm -f "$socket"
  # setsid: the service must outlive this script and not get the terminal's signals.
  # --time=0: it never exits for being idle. Started in the socket's folder: Debian 12's conmon
  # writes a file named `oom` into its working directory when a container is killed for memory.
  (cd "$(dirname "$socket")" && exec setsid nohup podman system service --time=0 \
    "unix://$socket" >"$log" 2>&1 </dev/null) &
  echo $! >"$pidfile"
  for _ in $(seq 1 60); do
    answers && return 0
    sleep 0.5
  done
  echo "podman: the API service did not answer within 30 s; see $log" >&2
  tail -20 "$log" >&2 || true
  exit 4
}

# The hard limit of open files (or processes) the service runs with.
service_limit() {
  awk -v what="$1" '$0 ~ "^Max " what {print $(NF-1)}' "/proc/$(cat "$pidfile")/limits"
}

if answers; then
  echo "podman: API service already answers at $socket"
else
  # A service that was killed leaves its pid file and socket behind: neither may block a start.
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    rm -f "$pidfile"
  fi
  echo "podman: starting the API service in the background (log: $log)"
  [ -f "$conf" ] && export CONTAINERS_CONF="$conf"
  start_service
  # Podman gives every container 1048576 open files and processes unless told otherwise; where
  # root may not raise its limits that far (no CAP_SYS_RESOURCE, as in some VMs and CI
  # sandboxes) no container can start. Then the service gets a configuration of its own (only
  # it reads it) whose default limits are the ones it has itself.
  nofile="$(service_limit "open files")"
  nproc="$(service_limit processes)"
  capabilities="$(awk '/^CapEff/ {print $2}' /proc/self/status)"
  if [ ! -f "$conf" ] && (( ((16#$capabilities) >> 24 & 1) == 0 )); then  # 24: CAP_SYS_RESOURCE
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
      "$nofile" "$nofile" "$nproc" "$nproc" >"$conf"
    kill "$(cat "$pidfile")"
    while answers; do sleep 0.2; done
    echo "podman: restarting it with open files $nofile and processes $nproc per container ($conf)"
    export CONTAINERS_CONF="$conf"
    start_service
  fi
  echo "podman: API service answers at $socket (pid $(cat "$pidfile"))"
fi
[ -f "$conf" ] && export CONTAINERS_CONF="$conf"

if podman image exists "$image"; then
  echo "podman: image $image already present"
else
  "$here/build-example-image.sh" >/dev/null
  echo "podman: copying $image from Docker"
  docker save "$image" | podman load -q >/dev/null
fi
podman run --rm "$image" python3 -c 'import sys; print("podman: python", sys.version.split()[0], "works")'
