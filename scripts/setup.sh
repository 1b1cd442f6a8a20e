#!/usr/bin/env bash
# One command that makes this machine ready to run localproc:
#   1. installs the package (with the test tools when --test is given),
#   2. makes sure a Docker engine answers (installs and starts Debian's docker.io when none does
#      and this is Debian as root),
#   3. builds the bundled example image without any container registry.
# Safe to run again: every step skips what is already in place.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

extras=""
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]" ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

echo "setup: installing localproc${extras} from $root"
python3 -m pip install --quiet --disable-pip-version-check -e "${root}${extras}"

"$here/start-docker.sh"
"$here/build-example-image.sh"
echo "setup: done. Try: localproc run fixtures/jobs/quickstart.json --s3-root fixtures/s3"
