#!/usr/bin/env bash
# The tools tests/engine_nodes.py needs to start extra Docker engines ("nodes") in network and
# mount namespaces of their own: iproute2 (ip netns, veth, bridge), iptables, util-linux
# (nsenter, unshare), and OpenSSH (the ssh:// tests run an sshd on a node). Installs what is
# missing (Debian, root); safe to run again.
set -euo pipefail
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
{ command -v nsenter && command -v unshare; } >/dev/null 2>&1 || missing+=(util-linux)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
if [ ${#missing[@]} -eq 0 ]; then
  echo "engine nodes: tools present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  echo "engine nodes: missing ${missing[*]}; install them (root, Debian) to run the remote-engine tests" >&2
  exit 4
fi
echo "engine nodes: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
