#!/usr/bin/env bash
# Usage: scripts/promtool.sh DIR
# Puts DIR/promtool, Prometheus's checker, taken from Debian's `prometheus` package: downloaded
# and unpacked, never installed (installing would start a Prometheus server here). The tests
# check the prometheus role's config and alert rules with it. Idempotent.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
[ -x "$dir/promtool" ] && exit 0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# As root, apt would hand the download to its sandbox user, who cannot write here.
download() { apt-get download -qq -o APT::Sandbox::User=root prometheus >/dev/null 2>&1; }
if ! download; then
    apt-get update -qq
    download
fi
dpkg-deb -x prometheus_*.deb root
install -m 0755 root/usr/bin/promtool "$dir/promtool"
echo "promtool: $dir/promtool ($("$dir/promtool" --version 2>&1 | head -1))" >&2
