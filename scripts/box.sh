#!/usr/bin/env bash
# Usage: scripts/box.sh
# Builds the Debian 12 box for Vagrant's lxc provider with mmdebstrap and adds it as
# hazelog/bookworm. The hosts have no route out, so the box carries every package the roles
# would otherwise fetch. Cached: the box records the sha256 of this recipe, and a box with the
# same recipe is not built again. A failed or interrupted build leaves no half box behind.
set -euo pipefail

BOX_NAME=hazelog/bookworm
SUITE=bookworm
PACKAGES=(
    systemd systemd-sysv dbus libpam-systemd openssh-server sudo ca-certificates
    iproute2 iputils-ping procps less
    python3 python3-venv python3-apt
    openjdk-17-jre-headless
    nftables
)

repo=$(cd "$(dirname "$0")/.." && pwd)
recipe_sha=$(cat "$0" "$repo"/scripts/box-files/* | sha256sum | cut -d' ' -f1)
vagrant_home=${VAGRANT_HOME:-$HOME/.vagrant.d}
installed="$vagrant_home/boxes/${BOX_NAME//\//-VAGRANTSLASH-}/0/lxc/recipe.sha256"

log() { echo "box: $*" >&2; }

if [ -f "$installed" ] && [ "$(cat "$installed")" = "$recipe_sha" ]; then
    log "$BOX_NAME is up to date"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    log "building the box needs root (mmdebstrap makes device nodes and owners): sudo make box"
    exit 1
fi
for tool in mmdebstrap vagrant; do
    command -v "$tool" >/dev/null || { log "$tool is missing: make system-deps"; exit 1; }
done
# Vagrant swaps it for a fresh per-machine key on the first `vagrant up`.
insecure_key=$( (find /usr/share/rubygems-integration /opt/vagrant -path '*/keys/vagrant.pub' \
    2>/dev/null || true) | head -n 1)
[ -n "$insecure_key" ] || { log "Vagrant's insecure public key (keys/vagrant.pub) is missing"; exit 1; }

work=$(mktemp -d /var/tmp/hazelog-box.XXXXXX)
# An interrupted build exits through the EXIT trap too: nothing half-built stays behind, and the
# box is added only once it is whole.
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP
rootfs=$work/rootfs

log "building $BOX_NAME (Debian $SUITE, ${#PACKAGES[@]} packages) in $work"
# Hooks run on the controller with the rootfs as $1.
mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash --groups sudo vagrant' \
    --customize-hook='echo "vagrant ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/vagrant"' \
    --customize-hook='chmod 0440 "$1/etc/sudoers.d/vagrant"' \
    --customize-hook="install -d -m 0700 -o 1000 -g 1000 \"\$1/home/vagrant/.ssh\"" \
    --customize-hook="install -m 0600 -o 1000 -g 1000 '$insecure_key' \"\$1/home/vagrant/.ssh/authorized_keys\"" \
    --customize-hook="cp '$repo/scripts/box-files/ssh-host-keys.service' \"\$1/etc/systemd/system/\"" \
    --customize-hook='chroot "$1" systemctl enable ssh-host-keys.service systemd-networkd.service' \
    --customize-hook='chroot "$1" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    --customize-hook='rm -f "$1/etc/hostname"; : > "$1/etc/machine-id"' \
    --customize-hook='printf "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" > "$1/etc/hosts"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$SUITE" "$rootfs"

log "packing"
# vagrant-lxc unpacks the rootfs with --strip-components=2: it must be ./rootfs/...
tar --numeric-owner -czf "$work/rootfs.tar.gz" -C "$work" ./rootfs
rm -rf "$rootfs"
printf '{"provider": "lxc", "version": "1.0.0"}\n' > "$work/metadata.json"
printf 'lxc.include = /usr/share/lxc/config/common.conf\nlxc.arch = amd64\n' \
    > "$work/lxc-config"
echo "$recipe_sha" > "$work/recipe.sha256"
tar -czf "$work/hazelog.box" -C "$work" metadata.json lxc-config rootfs.tar.gz recipe.sha256
vagrant box add --force --name "$BOX_NAME" --provider lxc "$work/hazelog.box" >&2
log "added $BOX_NAME ($(du -h "$work/hazelog.box" | cut -f1))"
