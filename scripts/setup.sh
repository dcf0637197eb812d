#!/bin/sh
# Sets up everything `make demo` and `make test` need on a fresh Debian/Ubuntu
# machine, as root: Debian packages, Open vSwitch running (userspace datapath:
# no kernel module is needed), and the project's venv. Idempotent and quick when
# everything is already in place.
set -eu

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------
need=""
command -v ovs-vsctl >/dev/null 2>&1 || need="$need openvswitch-switch"
command -v mnexec >/dev/null 2>&1 || need="$need mininet"
command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v iperf3 >/dev/null 2>&1 || need="$need iperf3"
# cso net turns veth TX checksum offload off (TCP over the userspace datapath needs it).
command -v ethtool >/dev/null 2>&1 || need="$need ethtool"
command -v ss >/dev/null 2>&1 || need="$need iproute2"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v sqlite3 >/dev/null 2>&1 || need="$need sqlite3"
"$PYTHON" -m venv --help >/dev/null 2>&1 || need="$need python3-venv"
if [ -n "$need" ]; then
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages:$need (run as root to install them)" >&2
        exit 1
    fi
    log "installing Debian packages:$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# --- Open vSwitch ----------------------------------------------------------
if [ "$(id -u)" = 0 ] && ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
    log "starting Open vSwitch"
    /usr/share/openvswitch/scripts/ovs-ctl start >/dev/null 2>&1 \
        || /usr/share/openvswitch/scripts/ovs-ctl start
fi

# --- venv --------------------------------------------------------------------
stamp="$VENV/.cso-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt setup.cfg ] && [ "$stamp" -nt pyproject.toml ] \
        && [ "$stamp" -nt scripts/setup.sh ]; then
    exit 0
fi
log "preparing $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip="$VENV/bin/python -m pip --disable-pip-version-check -q"
# setuptools < 68: ryu 4.34's setup.py uses easy_install.get_script_args, gone
# in 68; both ryu and this project are built against it without isolation.
$pip install 'setuptools>=64,<68' wheel
$VENV/bin/python -c 'import ryu' 2>/dev/null || $pip install --no-build-isolation 'ryu==4.34'
$pip install --no-build-isolation -e '.[test]'
touch "$stamp"
log "ready"
