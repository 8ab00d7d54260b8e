#!/usr/bin/env bash
# The README's two commands:   bash run.sh demo   |   bash run.sh test
# On a fresh Debian/Ubuntu machine with Node/npm it installs what is missing first:
# Deno 2.9.6 from npm, liburing2 from apt (without liburing the module falls back to the
# sync backend, and tests that need io_uring are ignored, or fail under REQUIRE_URING=1), and
# libisal2 (ISA-L: hardware CRC32C; optional, the module computes CRC32C in TypeScript without it).
set -euo pipefail
cd "$(dirname "$0")"
DENO_VERSION=2.9.6

need_deno() {
  if command -v deno >/dev/null 2>&1; then DENO=deno; return; fi
  echo "run.sh: installing Deno $DENO_VERSION from npm" >&2
  if npm install -g "deno@$DENO_VERSION" >/dev/null 2>&1 && command -v deno >/dev/null 2>&1; then
    DENO=deno
  else
    npm install --no-save --prefix .deno "deno@$DENO_VERSION" >/dev/null
    DENO="$PWD/.deno/node_modules/.bin/deno"
  fi
}

need_liburing() {
  if PATH="$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null | grep -q 'liburing\.so\.2'; then return; fi
  echo "run.sh: installing liburing2 from apt" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq liburing2 >/dev/null ||
      echo "run.sh: could not install liburing2; the sync backend will be used" >&2
  else
    echo "run.sh: no apt-get; install liburing 2.x yourself for the io_uring backend" >&2
  fi
}

need_isal() {
  if PATH="$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null | grep -q 'libisal\.so\.2'; then return; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing libisal2 from apt (hardware CRC32C)" >&2
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq libisal2 >/dev/null ||
      echo "run.sh: could not install libisal2; CRC32C runs in TypeScript" >&2
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo) need_deno; need_liburing; need_isal; exec "$DENO" task demo "$@" ;;
  test) need_deno; need_liburing; need_isal; exec "$DENO" task test "$@" ;;
  bench) need_deno; need_liburing; need_isal; exec "$DENO" task bench "$@" ;;
  *) echo "usage: bash run.sh demo|test|bench [args]" >&2; exit 2 ;;
esac
