#!/bin/sh
# Compiles every lock file of this folder from its .in file (run by `make lock`; docs/pins.md).
# dev.in (everything) is resolved first, for every Python from 3.10 on and every platform, and its result
# constrains the others, so that all of them pin the same version of each package. A version already in a
# lock file is kept unless UPGRADE is 1 (everything) or names packages.
set -eu
cd "$(dirname "$0")"
uv=${UV:-uv}
upgrade=
case "${UPGRADE:-}" in
  "") ;;
  1) upgrade=--upgrade ;;
  *) for package in $UPGRADE; do upgrade="$upgrade --upgrade-package $package"; done ;;
esac
compile() {
  "$uv" pip compile --quiet --universal --python-version 3.10 --generate-hashes \
    --custom-compile-command "make lock" "$@"
}
# shellcheck disable=SC2086 # $upgrade is a list of options
compile $upgrade -c oracle.txt dev.in -o dev.txt
for name in pip uv build install test docs; do
  compile -c dev.txt "$name.in" -o "$name.txt"
done
