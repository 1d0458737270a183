#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet (as root, or through sudo),
# and does nothing when all are there. Used by setup.sh, test.sh and sweep.sh.
#   scripts/apt_ensure.sh WHO PACKAGE...      (WHO prefixes the "installing ..." line)
set -euo pipefail
who="$1"
shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "$who: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
