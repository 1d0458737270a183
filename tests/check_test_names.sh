#!/usr/bin/env bash
# Every Catch2 test name must survive catch_discover_tests and Catch's own command line:
# a name that starts with '-' is read as an option (Catch prints its help and exits 0, so the
# test "passes" without running), ';' splits it in CMake, an unbalanced '[' or ']' glues the
# later tests on (balanced brackets are escaped by catch_discover_tests and run fine).
#   tests/check_test_names.sh BINARY...
set -uo pipefail
bad=0
for bin in "$@"; do
  while IFS= read -r name; do
    open=${name//[^\[]/}; close=${name//[^\]]/}
    case "$name" in
      -*|*\;*) echo "$(basename "$bin"): unsafe test name: $name" >&2; bad=1; continue ;;
    esac
    [ ${#open} -eq ${#close} ] || { echo "$(basename "$bin"): unbalanced brackets in test name: $name" >&2; bad=1; }
  done < <("$bin" --list-test-names-only)
done
[ $bad -eq 0 ] && echo "all test names are safe for ctest"
exit $bad
