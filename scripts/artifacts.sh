#!/usr/bin/env bash
# Usage: scripts/artifacts.sh DIR
# Puts into DIR what the hosts install without internet access:
#   DIR/hazelcast-5.7.0.jar     from Maven Central via `mvn dependency:copy`, checked against the
#                               checksum recorded in artifacts/hazelcast.sha256;
#   DIR/postgresql-42.7.4.jar   the PostgreSQL JDBC driver the members' MapStore uses, checked
#                               against artifacts/postgresql.sha256;
#   DIR/hazelog-mapstore.jar    hazelog's MapStore (mapstore/), built by Maven without its tests
#                               (`make mapstore-test` runs them against a throwaway PostgreSQL);
#   DIR/wheelhouse/             wheels of hazelog (the services: pyproject.toml + src/) and its
#                               runtime dependencies for CPython 3.11 on Linux x86_64 (Debian
#                               12), plus requirements.txt pinning them. The controller's tools
#                               (hazelog-tools, tools/) and their dependencies stay out of it.
# Idempotent: a verified jar is not fetched again, the MapStore jar is rebuilt only when
# mapstore/ changed, and the wheelhouse only when what goes into hazelog's wheel
# (pyproject.toml, README.md, src/) changed (or the building Python did). Set PYTHON to build
# with another interpreter than the repo's .venv.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
python=${PYTHON:-$repo/.venv/bin/python}

hazelcast_version=5.7.0
postgresql_version=42.7.4

log() { echo "artifacts: $*" >&2; }

# jar_verified JAR CHECKSUMS: the jar is in DIR and matches its recorded checksum.
jar_verified() {
    [ -f "$dir/$1" ] && (cd "$dir" && sha256sum --check --status "$2")
}

ensure_maven() {
    command -v mvn >/dev/null 2>&1 && return
    if [ "$(id -u)" -ne 0 ]; then
        log "mvn is missing; run as root, or: sudo apt-get install -y maven"
        exit 1
    fi
    log "installing Debian's maven"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends maven >/dev/null
}

# maven ARGS...: quiet on success (Maven 3.8 prints stray colour codes even with -q -B), all of
# it on failure.
maven() {
    local output
    if ! output=$(mvn -q -B "$@" 2>&1); then
        printf '%s\n' "$output" >&2
        log "mvn $* failed"
        exit 1
    fi
}

# fetch_jar GROUP:ARTIFACT:VERSION CHECKSUMS
fetch_jar() {
    local coordinates=$1 checksums=$2 jar
    jar=$(cut -d: -f2 <<<"$coordinates")-$(cut -d: -f3 <<<"$coordinates").jar
    if jar_verified "$jar" "$checksums"; then
        return
    fi
    ensure_maven
    rm -f "$dir/$jar"
    log "fetching $coordinates"
    maven dependency:copy "-Dartifact=$coordinates" "-DoutputDirectory=$dir"
    if ! jar_verified "$jar" "$checksums"; then
        # Never leave an unverified jar where a later run (or a role) would pick it up.
        mv "$dir/$jar" "$dir/$jar.rejected" 2>/dev/null || true
        log "$jar does not match $checksums (kept as $jar.rejected); not using it"
        exit 1
    fi
    log "$dir/$jar verified"
}

build_mapstore() {
    local jar=$dir/hazelog-mapstore.jar stamp
    stamp=$(cd "$repo" && find mapstore/pom.xml mapstore/src -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
    if [ -f "$jar" ] && [ "$(cat "$jar.stamp" 2>/dev/null)" = "$stamp" ]; then
        return
    fi
    ensure_maven
    log "building the MapStore jar"
    maven -f "$repo/mapstore/pom.xml" -DskipTests package
    cp "$repo/mapstore/target/hazelog-mapstore.jar" "$jar.new"
    mv "$jar.new" "$jar"
    echo "$stamp" > "$jar.stamp"
    log "$jar built"
}

# What goes into hazelog's wheel: copied to a scratch directory and built there, so the build
# never writes into the repo and never packs a stale build/lib. tools/ is not among them: the
# hosts get the services only.
sources=(pyproject.toml README.md src)

# Everything that goes into the wheels, and the interpreter that picks the dependency wheels.
source_stamp() {
    {
        "$python" -c 'import sys; print(sys.implementation.cache_tag, sys.platform)'
        cd "$repo"
        find "${sources[@]}" -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*' \
            -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

build_wheelhouse() {
    local wheelhouse=$dir/wheelhouse stamp new tmp
    stamp=$(source_stamp)
    if [ -f "$wheelhouse/.stamp" ] && [ "$(cat "$wheelhouse/.stamp")" = "$stamp" ]; then
        return
    fi
    log "building the wheelhouse with $python"
    # Build next to the old one and swap, so a failed build leaves the previous wheelhouse
    # and no stale mix of versions.
    new=$(mktemp -d "$dir/wheelhouse.new.XXXXXX")
    tmp=$(mktemp -d)
    trap "rm -rf '$new' '$tmp'" EXIT
    mkdir "$tmp/hazelog"
    tar -C "$repo" --exclude=__pycache__ --exclude='*.egg-info' -cf - "${sources[@]}" \
        | tar -C "$tmp/hazelog" -xf -
    "$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$new" "$tmp/hazelog"
    # Pins for `pip install --no-index --find-links wheelhouse -r requirements.txt`: a wheel's
    # file name starts with its distribution name and version.
    for wheel in "$new"/*.whl; do
        basename "$wheel" | awk -F- '{print $1 "==" $2}'
    done | LC_ALL=C sort > "$new/requirements.txt"
    # Prove the wheelhouse is complete: install it into a fresh venv with no index.
    "$python" -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
        --find-links "$new" -r "$new/requirements.txt"
    "$tmp/venv/bin/hazelog" --version >/dev/null
    echo "$stamp" > "$new/.stamp"
    rm -rf "$wheelhouse"
    mv "$new" "$wheelhouse"
    rm -rf "$tmp"
    trap - EXIT
    log "$wheelhouse: $(grep -c . "$wheelhouse/requirements.txt") wheels"
}

fetch_jar "com.hazelcast:hazelcast:$hazelcast_version" "$repo/artifacts/hazelcast.sha256"
fetch_jar "org.postgresql:postgresql:$postgresql_version" "$repo/artifacts/postgresql.sha256"
build_mapstore
build_wheelhouse
