#!/bin/bash
# Install (or upgrade, or remove) a coldchain gateway on Raspberry Pi OS / Debian 12 from the
# bundle `coldchain gateway CONFIG provision ID --out FILE` made at the centre.
#
#   sudo coldchain-gw-meilin/install.sh                 from the bundle, unpacked: it carries
#                                                       this script and the agent's wheel
#   sudo deploy/pi/install.sh gw-meilin.tar.gz          from a coldchain checkout
#   sudo deploy/pi/install.sh --uninstall               remove; says what it keeps
#
# Options: --root DIR installs into DIR instead of / (an image being prepared, or a test);
# --source DIR is the coldchain source to install (default: the wheel beside this script in
# a bundle, else this checkout); --no-start enables the service without starting it.
#
# What it makes:
#   user coldchain (system, no login, in group dialout for the RS-485 adapters)
#   /opt/coldchain/venv          the agent, from requirements/agent.lock (no web stack)
#   /etc/coldchain/              the bundle: site.yaml, profiles/, broker-password,
#                                message-key, ca.crt, client.crt and client.key (mutual
#                                TLS); root:coldchain, 0750 / 0640
#   /var/lib/coldchain/          the outbox: coldchain:coldchain 0750; kept on upgrade and
#                                on uninstall (it may hold readings not yet delivered)
#   /etc/systemd/system/coldchain-agent.service    Type=notify with the watchdog, hardened
#   /etc/systemd/journald.conf.d/coldchain.conf    journald limits that spare the SD card
set -euo pipefail

ROOT=/
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE=""
BUNDLE=""
UNINSTALL=0
START=1
PYTHON="${PYTHON:-python3}"
if [ -f "$HERE/common.sh" ]; then  # in a bundle
    # shellcheck source=/dev/null
    . "$HERE/common.sh"
else
    # shellcheck source=../common.sh
    . "$HERE/../common.sh"
fi

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="$2"; shift 2 ;;
        --source) SOURCE="$2"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --no-start) START=0; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$BUNDLE" ] || die "one bundle at a time"; BUNDLE="$1"; shift ;;
    esac
done

ROOT="${ROOT%/}"  # "/" becomes "": paths below are "$ROOT/etc/..."
WHEEL="$(find "$HERE" -maxdepth 1 -name 'coldchain-*.whl' | head -n 1)"
if [ -z "$SOURCE" ] && [ -n "$WHEEL" ]; then  # a bundle: its own wheel and lock file
    SOURCE="$WHEEL"
    LOCK="$HERE/agent.lock"
else
    SOURCE="${SOURCE:-$(cd "$HERE/../.." && pwd)}"
    LOCK="$SOURCE/requirements/agent.lock"
fi
[ -z "$BUNDLE" ] && [ -f "$HERE/site.yaml" ] && BUNDLE="$HERE"  # run from inside a bundle
UNIT="$ROOT/etc/systemd/system/coldchain-agent.service"
JOURNAL="$ROOT/etc/systemd/journald.conf.d/coldchain.conf"
VENV_DIR=/opt/coldchain/venv

if [ "$UNINSTALL" = 1 ]; then
    remove_units coldchain-agent.service
    rm -f "$JOURNAL"
    rm -rf "$ROOT/opt/coldchain" "$ROOT/etc/coldchain"
    echo "removed: the coldchain-agent service, $VENV_DIR, /etc/coldchain (config and secrets)"
    echo "kept: /var/lib/coldchain (the outbox: readings not yet delivered to the centre)"
    echo "      and the system user coldchain; remove them by hand once the centre has all"
    exit 0
fi

[ -n "$BUNDLE" ] || die "give the gateway's bundle (coldchain gateway ... provision ID --out FILE)"
[ -e "$BUNDLE" ] || die "$BUNDLE: no such file"
[ -f "$LOCK" ] || die "$SOURCE is not a coldchain source (--source)"
[ "$(id -u)" = 0 ] || die "run as root (sudo): it makes a system user and a service"

if [ -d "$BUNDLE" ]; then  # unpacked already
    TOP="$(cd "$BUNDLE" && pwd)"
else
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    tar -xzf "$BUNDLE" -C "$WORK" --no-same-owner || die "$BUNDLE is not a coldchain bundle"
    TOP="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'coldchain-*' | head -n 1)"
fi
[ -n "$TOP" ] && [ -f "$TOP/site.yaml" ] || die "$BUNDLE is not a coldchain bundle"
GATEWAY="${TOP##*/coldchain-}"
echo "gateway $GATEWAY into ${ROOT:-/}"

# --- the system user --------------------------------------------------------------------
make_user coldchain /var/lib/coldchain dialout
uid="$(id_of passwd coldchain)"
gid="$(id_of group coldchain)"

# --- the agent's venv (upgraded in place) -------------------------------------------------
make_venv "$LOCK"
echo "agent $("$ROOT$VENV_DIR/bin/coldchain" --version) in $VENV_DIR"

# --- the bundle: config and secrets, readable by the agent only --------------------------
install -d -m 0750 -o 0 -g "$gid" "$ROOT/etc/coldchain"
rm -rf "$ROOT/etc/coldchain/profiles"
install -d -m 0750 -o 0 -g "$gid" "$ROOT/etc/coldchain/profiles"
for f in site.yaml broker-password message-key ca.crt client.crt client.key; do
    [ -f "$TOP/$f" ] && install -m 0640 -o 0 -g "$gid" "$TOP/$f" "$ROOT/etc/coldchain/$f"
done
for f in "$TOP"/profiles/*.yaml; do
    [ -e "$f" ] && install -m 0640 -o 0 -g "$gid" "$f" "$ROOT/etc/coldchain/profiles/"
done

# --- the outbox: kept as it is on an upgrade ---------------------------------------------
install -d -m 0750 -o "$uid" -g "$gid" "$ROOT/var/lib/coldchain"

# --- systemd ------------------------------------------------------------------------------
mkdir -p "$(dirname "$UNIT")" "$(dirname "$JOURNAL")"
cat > "$UNIT" <<EOF
# Written by coldchain's deploy/pi/install.sh for gateway $GATEWAY; run it again to change.
[Unit]
Description=coldchain agent, gateway $GATEWAY
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=$VENV_DIR/bin/coldchain agent run /etc/coldchain/site.yaml --gateway $GATEWAY --profiles /etc/coldchain/profiles --data-dir /var/lib/coldchain
User=coldchain
Group=coldchain
SupplementaryGroups=dialout
# a hung agent (its loop blocked, or its outbox stuck on the card) stops pinging: restarted
WatchdogSec=60
Restart=always
RestartSec=5
TimeoutStopSec=30
# hardening: it reads /etc/coldchain, writes only its outbox, talks to the network and
# the serial adapters (/dev/ttyUSB*, so no PrivateDevices), and has no privileges at all
ReadWritePaths=/var/lib/coldchain
$(sandbox)

[Install]
WantedBy=multi-user.target
EOF
cat > "$JOURNAL" <<'EOF'
# Written by coldchain's deploy/pi/install.sh: the journal writes less to the SD card.
[Journal]
Storage=persistent
SystemMaxUse=64M
SystemMaxFileSize=8M
MaxRetentionSec=1month
SyncIntervalSec=5min
RateLimitIntervalSec=30s
RateLimitBurst=1000
EOF
echo "service coldchain-agent, journald limits"

if [ "$(live_systemd)" = 1 ]; then
    systemctl restart systemd-journald || true
fi
enable_units "$START" coldchain-agent.service
