#!/usr/bin/env bash
# Installs the Debian packages hazelog's checks and lab need, only those missing.
# Why each: libsystemd-dev + pkg-config build systemd-python; a JRE runs Hazelcast members;
# maven fetches the Hazelcast jar and builds the MapStore; vagrant, vagrant-lxc, lxc and sudo
# (vagrant-lxc runs `sudo lxc-...` even as root) run the hosts; mmdebstrap builds their box;
# wrk drives the benchmark; nft checks the firewall ruleset; postgresql gives the MapStore tests
# and the integration tests a throwaway database server (they run initdb and pg_ctl
# themselves; the package's own cluster is never used); chromium (headless) loads the /status
# page in its browser test.
set -euo pipefail

packages=(libsystemd-dev pkg-config maven vagrant vagrant-lxc lxc sudo mmdebstrap wrk
          openssh-client iproute2 rsync nftables postgresql chromium)
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "system-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
