#!/usr/bin/env bash
# Installs the Debian packages Ratchet builds, tests and benchmarks with.
# Idempotent and quick when everything is already there: apt is only called for
# packages that dpkg does not report as installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libsqlite3-dev sqlite3 libpq-dev tzdata
  postgresql  # the tests' private cluster (scripts/pg-cluster.sh)
  pgbouncer   # a fleet behind a transaction pooler (scripts/pgbouncer.sh)
  libboost-dev libssl-dev libsodium-dev
  libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev
  clang libclang-rt-14-dev
  procps
  zsh groff-base
  chromium  # the dashboard's browser test (tests/dashboard)
  # dispatch-py's tests and its test server (../shared/interop/setup.sh lists the same)
  python3 python3-dev gcc python3-aiohttp python3-tblib python3-typing-extensions
  python3-cryptography python3-pytest python3-fastapi python3-httpx python3-flask
  python3-uvicorn python3-requests
)
# Node.js 20+ and npm drive that test. Machines of this project come with
# them; Debian's own packages (Node.js 18) are the fallback when there is none.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
