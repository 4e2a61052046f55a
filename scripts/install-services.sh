#!/usr/bin/env bash
# Install the Debian packages the tests talk to, if their binaries (or files) are missing.
# Usage: scripts/install-services.sh mosquitto [victoria-metrics chromium ...]
set -euo pipefail
declare -A binary=(
  [mosquitto]=/usr/sbin/mosquitto
  [victoria-metrics]=/usr/bin/victoria-metrics
  [chromium]=/usr/bin/chromium
  [docker-compose]=/usr/bin/docker-compose
  [fonts-wqy-microhei]=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
)
missing=()
for pkg in "$@"; do
  if [ "$pkg" = postgresql ]; then  # the server's binaries live under its major version
    compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=("$pkg")
    continue
  fi
  [ -e "${binary[$pkg]:-/nonexistent}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing test services: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts the packaged daemons; the tests start their own on free ports instead.
