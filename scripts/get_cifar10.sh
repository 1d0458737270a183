#!/usr/bin/env bash
# Downloads CIFAR-10's binary version, checks its md5 and unpacks it:
#   TARGET/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin
# No internet? The project can generate a CIFAR-shaped synthetic stand-in instead
# (common/synthetic_cifar10.h): fine for timings, not for accuracies.
set -euo pipefail

readonly URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
readonly MD5="c32a1d4ab5d03f1284b67883e8d87530"
readonly FILES="data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin"

usage() {
  cat <<USAGE
usage: $(basename "$0") [-h] [TARGET_DIR]

Downloads CIFAR-10 (binary version, 163 MB) from
  $URL
checks its md5 ($MD5) and unpacks it into TARGET_DIR/cifar-10-batches-bin
(TARGET_DIR defaults to ./data). Does nothing if the six .bin files are already there.
Fails within about 10 seconds when the server cannot be reached.
USAGE
}

die() { echo "get_cifar10.sh: $*" >&2; exit 1; }

while getopts ":h" opt; do
  case "$opt" in
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -le 1 ]] || { usage >&2; exit 2; }
target="${1:-./data}"
out="$target/cifar-10-batches-bin"

have_all=1
for f in $FILES; do [[ -f "$out/$f" ]] || have_all=0; done
if [[ $have_all -eq 1 ]]; then
  echo "CIFAR-10 already in $out"
  exit 0
fi

mkdir -p "$target" || die "cannot create $target"
archive="$target/cifar-10-binary.tar.gz"
partial="$archive.part"
trap 'rm -f "$partial"' EXIT

if [[ -f "$archive" ]] && echo "$MD5  $archive" | md5sum -c --status -; then
  echo "using the archive already at $archive"
else
  echo "downloading $URL"
  if command -v curl >/dev/null 2>&1; then
    curl --fail --location --connect-timeout 10 \
         --progress-bar -o "$partial" "$URL" ||
      die "download failed (no internet, or the server is down). Fetch $URL by other means
and put it at $archive, then run this again; or use the synthetic stand-in (common/synthetic_cifar10.h)."
  elif command -v wget >/dev/null 2>&1; then
    wget --connect-timeout=10 --tries=1 --progress=bar:force -O "$partial" "$URL" ||
      die "download failed (no internet, or the server is down). Fetch $URL by other means
and put it at $archive, then run this again; or use the synthetic stand-in (common/synthetic_cifar10.h)."
  else
    die "neither curl nor wget is installed (apt-get install curl)"
  fi
  echo "$MD5  $partial" | md5sum -c --status - ||
    die "md5 of the download is $(md5sum "$partial" | cut -d' ' -f1), expected $MD5: the
download is damaged; run this again"
  mv "$partial" "$archive"
fi

echo "unpacking into $target"
tar -xzf "$archive" -C "$target" || die "cannot unpack $archive"
for f in $FILES; do
  [[ -f "$out/$f" ]] || die "$out/$f is missing after unpacking $archive"
done
rm -f "$archive"
echo "CIFAR-10 is in $out"
