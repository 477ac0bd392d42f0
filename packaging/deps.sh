#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages Chatto needs, only those missing. Called by `make run` (profile "run") and
# `make test` (profile "test"). Needs root or sudo when something is missing; does nothing otherwise.
set -eu

profile=${1:-run}

run_pkgs="build-essential pkg-config libmicrohttpd-dev libnats-dev libwslay-dev libsodium-dev libcjson-dev
          libinih-dev nettle-dev libcurl4-openssl-dev libvips-dev nats-server"
test_pkgs="$run_pkgs libcmocka-dev python3 curl groff man-db wrk chromium fonts-noto-color-emoji nginx lintian fakeroot dpkg-dev systemd prometheus
           clang libclang-rt-dev"

case "$profile" in
run) want=$run_pkgs ;;
test) want=$test_pkgs ;;
*) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

# Node.js for the browser tests: the machine's own if it has one (NodeSource ships npm inside nodejs, and
# asking apt for Debian's npm beside it fails), else Debian's nodejs and npm
if [ "$profile" = test ] && ! command -v node >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi

if [ -n "$missing" ]; then
    echo "deps: installing Debian packages:$missing"
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "deps: missing packages:$missing; run this script as root or install them with apt-get" >&2
        exit 1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

# playwright-core for the browser tests (it drives Debian's chromium), the nats client for the object-store
# interoperability tests, s3rver with the AWS SDK's SigV4 signer for the S3 tests, and LiveKit's server SDK (and
# client, the source of the vendored web copy) for the calls tests, pinned by
# test/browser/package-lock.json
if [ "$profile" = test ]; then
    dir=$(cd "$(dirname "$0")/../test/browser" && pwd)
    need=""
    for m in playwright-core nats s3rver @smithy/signature-v4 @aws-crypto/sha256-js livekit-server-sdk livekit-client; do
        [ -d "$dir/node_modules/$m" ] || need="$need $m"
    done
    if [ -n "$need" ]; then
        echo "deps: installing npm packages into test/browser (missing:$need)"
        (cd "$dir" && npm ci --no-audit --no-fund --silent)
    fi
fi
