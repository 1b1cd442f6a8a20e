#!/usr/bin/env bash
# Build the bundled example image (Debian bookworm with Python 3) that the example jobs and the
# tests use. No container registry is needed: on Debian with root the root filesystem is made by
# mmdebstrap from Debian's own package archive and turned into an image by `docker import`.
# Elsewhere (a laptop with Docker Desktop) a plain `docker build` from python:3.11-slim is used.
#   LOCALPROC_EXAMPLE_IMAGE  image name (default localproc/example-python:bookworm)
#   --force                  rebuild even if the image exists
set -euo pipefail
image="${LOCALPROC_EXAMPLE_IMAGE:-localproc/example-python:bookworm}"
here="$(cd "$(dirname "$0")" && pwd)"
force=no
[ "${1:-}" = "--force" ] && force=yes

if [ "$force" = no ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "image: $image already present"
  exit 0
fi

if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "image: installing mmdebstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
  fi
  # Use this host's Debian sources, so the build reaches whatever archive (or mirror) it is set up for.
  sources=()
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sources=(/etc/apt/sources.list.d/debian.sources)
  elif [ -s /etc/apt/sources.list ]; then
    sources=(/etc/apt/sources.list)
  fi
  echo "image: building $image with mmdebstrap + docker import"
  start=$(date +%s)
  mmdebstrap --quiet --variant=minbase --include=python3 --mode=root \
      --aptopt='Acquire::Retries "3"' \
      bookworm - "${sources[@]}" \
    | docker import \
        -c 'ENV LANG=C.UTF-8' \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["python3"]' \
        - "$image" >/dev/null
  echo "image: $image built in $(( $(date +%s) - start )) s"
else
  echo "image: building $image with docker build"
  docker build -q -t "$image" "$here/../fixtures/images/example-python" >/dev/null
fi
docker run --rm "$image" python3 -c 'import sys; print("image: python", sys.version.split()[0], "works")'
