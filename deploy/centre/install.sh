#!/bin/bash
# Install (or upgrade) the coldchain centre on a Debian 12 host: the hub as a systemd service,
# and the broker that `coldchain broker config` generated as another. deploy/README.md has
# the whole sequence.
#
#   sudo deploy/centre/install.sh site.yaml            install, or upgrade in place
#   sudo deploy/centre/install.sh site.yaml --role ingest --role web
#                      the hub running only these parts (coldchain hub --role: ingest,
#                      alerts, web; docs/availability.md, Roles as processes)
#   sudo deploy/centre/install.sh --uninstall          remove; says what it keeps
#   sudo deploy/centre/install.sh --standby [--vmagent URL --vmagent URL]
#                      the second machine (docs/availability.md): the broker only, from the
#                      first machine's /etc/coldchain/broker copied here first; with
#                      --vmagent, vmagent writing every reading to each VictoriaMetrics URL
#
# Options: --root DIR installs into DIR instead of / (an image, or a test); --source DIR is
# the coldchain source (default: this checkout); --grafana DIR also writes the Grafana
# dashboards and provisioning files there (coldchain dashboards build); --no-start enables
# the services without starting them.
#
# What it makes:
#   user coldchain-hub (system, no login)
#   /opt/coldchain/venv          the hub, from requirements/hub.lock
#   /etc/coldchain/site.yaml     the site config (root:coldchain-hub 0640)
#   /var/lib/coldchain-hub/      the hub's data (hub.db, the SQLite store, its broker and
#                                admin passwords): coldchain-hub 0750; kept on uninstall
#   coldchain-hub.service        the hub, hardened, Restart=always
#   coldchain-broker.service     mosquitto -c /etc/coldchain/broker/mosquitto.conf as the
#                                mosquitto user (Debian's mosquitto package), Restart=always;
#                                `systemctl reload` rereads certificates and the CRL
#   with mutual TLS (coldchain broker config --client-ca DIR, recorded in the data dir):
#   DIR                          the client CA: the hub issues and revokes gateways'
#                                certificates there (coldchain-hub:mosquitto 2750)
#   coldchain-broker-crl.path    reloads the broker whenever DIR/crl.pem changes (a revoke)
set -euo pipefail

ROOT=/
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONFIG=""
GRAFANA=""
UNINSTALL=0
START=1
STANDBY=0
VMAGENT=()
ROLES=()
PYTHON="${PYTHON:-python3}"
# shellcheck source=../common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="$2"; shift 2 ;;
        --source) SOURCE="$2"; shift 2 ;;
        --grafana) GRAFANA="$2"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --no-start) START=0; shift ;;
        --standby) STANDBY=1; shift ;;
        --vmagent) VMAGENT+=("$2"); shift 2 ;;
        --role)
            case "${2:-}" in ingest|alerts|web) ;; *) die "--role: ingest, alerts or web" ;; esac
            ROLES+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$CONFIG" ] || die "one site config"; CONFIG="$1"; shift ;;
    esac
done

ROOT="${ROOT%/}"  # "/" becomes "": paths below are "$ROOT/etc/..."
UNITS="$ROOT/etc/systemd/system"
VENV_DIR=/opt/coldchain/venv
DATA=/var/lib/coldchain-hub

if [ "$UNINSTALL" = 1 ]; then
    remove_units coldchain-hub.service coldchain-broker.service coldchain-broker-crl.path \
        coldchain-broker-reload.service coldchain-vmagent.service
    rm -rf "$ROOT/opt/coldchain"
    echo "removed: the coldchain-hub and coldchain-broker services, $VENV_DIR"
    echo "kept: $DATA (hub.db: alerts, audit trail, users; the store: the readings),"
    echo "      /etc/coldchain (the site config, the CA, the broker's identities) and the user"
    exit 0
fi

# --- units both machines may have ---------------------------------------------------------
write_broker_unit() {
cat > "$UNITS/coldchain-broker.service" <<'EOF'
# Written by coldchain's deploy/centre/install.sh: the broker coldchain broker config generated
# (disable Debian's own mosquitto.service, which would take the same port).
[Unit]
Description=coldchain broker (Mosquitto with the dynamic security plugin)
After=network-online.target
Wants=network-online.target
ConditionPathExists=/etc/coldchain/broker/mosquitto.conf

[Service]
ExecStart=/usr/sbin/mosquitto -c /etc/coldchain/broker/mosquitto.conf
ExecReload=/bin/kill -HUP $MAINPID
User=mosquitto
Group=mosquitto
Restart=always
RestartSec=5
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths=/var/lib/mosquitto /etc/coldchain/broker
PrivateTmp=yes
PrivateDevices=yes
CapabilityBoundingSet=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6

[Install]
WantedBy=multi-user.target
EOF
}

write_vmagent_unit() {
    local url urls=""
    for url in "${VMAGENT[@]}"; do
        [[ "$url" =~ ^https?://[^/[:space:]]+/?$ ]] \
            || die "--vmagent $url: give a VictoriaMetrics base URL, http://host:8428"
        urls+=" -remoteWrite.url=${url%/}/api/v1/write"
    done
    cat > "$UNITS/coldchain-vmagent.service" <<EOF
# Written by coldchain's deploy/centre/install.sh --standby: every reading the hub writes to it
# goes to each VictoriaMetrics, buffered on disk for one that is down (docs/store.md).
[Unit]
Description=coldchain vmagent: readings kept twice
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/vmagent -httpListenAddr=:8429 -remoteWrite.tmpDataPath=/var/lib/coldchain-vmagent -loggerLevel=WARN$urls
DynamicUser=yes
StateDirectory=coldchain-vmagent
Restart=always
RestartSec=5
TimeoutStopSec=60
PrivateDevices=yes
$(sandbox)

[Install]
WantedBy=multi-user.target
EOF
}

if [ "$STANDBY" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "run as root (sudo): it makes services"
    [ -f "$ROOT/etc/coldchain/broker/mosquitto.conf" ] \
        || die "copy the first machine's /etc/coldchain/broker here first (the same identities)"
    if grep -q '^mosquitto:' "$ROOT/etc/passwd"; then
        chown -R "$(id_of passwd mosquitto)" "$ROOT/etc/coldchain/broker"
    fi
    mkdir -p "$UNITS"
    write_broker_unit
    UNITS_MADE=(coldchain-broker.service)
    if [ ${#VMAGENT[@]} -gt 0 ]; then
        write_vmagent_unit
        UNITS_MADE+=(coldchain-vmagent.service)
    fi
    echo "standby: services ${UNITS_MADE[*]}"
    enable_units "$START" "${UNITS_MADE[@]}"
    exit 0
fi

[ -n "$CONFIG" ] || die "give the site config (coldchain config check it first)"
[ -f "$CONFIG" ] || die "$CONFIG: no such file"
[ -f "$SOURCE/requirements/hub.lock" ] || die "$SOURCE is not a coldchain source (--source)"
[ "$(id -u)" = 0 ] || die "run as root (sudo): it makes a system user and services"

# --- the system user --------------------------------------------------------------------
make_user coldchain-hub "$DATA"
uid="$(id_of passwd coldchain-hub)"
gid="$(id_of group coldchain-hub)"

# --- the hub's venv (upgraded in place) ---------------------------------------------------
make_venv "$SOURCE/requirements/hub.lock"
"$ROOT$VENV_DIR/bin/coldchain" config check "$CONFIG" >/dev/null \
    || die "$CONFIG does not pass coldchain config check: fix it first"
echo "hub $("$ROOT$VENV_DIR/bin/coldchain" --version) in $VENV_DIR"

# --- config and data ----------------------------------------------------------------------
install -d -m 0755 "$ROOT/etc/coldchain"
install -m 0640 -o 0 -g "$gid" "$CONFIG" "$ROOT/etc/coldchain/site.yaml"
install -d -m 0750 -o "$uid" -g "$gid" "$ROOT$DATA"
# what coldchain broker config left there as root (the hub's and the admin's passwords)
chown -R "$uid:$gid" "$ROOT$DATA"
if [ -d "$ROOT/etc/coldchain/broker" ] && grep -q '^mosquitto:' "$ROOT/etc/passwd"; then
    chown -R "$(id_of passwd mosquitto)" "$ROOT/etc/coldchain/broker"  # the plugin saves its state there
fi
# mutual TLS: the hub issues and revokes gateways' certificates with the client CA, the
# broker reads its certificate and CRL (group mosquitto, inherited by every new file)
CLIENT_CA=""
if [ -f "$ROOT$DATA/broker-client-ca" ]; then
    CLIENT_CA="$(head -n 1 "$ROOT$DATA/broker-client-ca")"
    [ -f "$ROOT$CLIENT_CA/ca.key" ] || die "$DATA/broker-client-ca names $CLIENT_CA, which holds no CA"
    chown -R "$uid" "$ROOT$CLIENT_CA"
    if grep -q '^mosquitto:' "$ROOT/etc/group"; then
        chgrp -R "$(id_of group mosquitto)" "$ROOT$CLIENT_CA"
    fi
    chmod 2750 "$ROOT$CLIENT_CA"
    chmod 0600 "$ROOT$CLIENT_CA/ca.key"
fi
if [ -n "$GRAFANA" ]; then
    "$ROOT$VENV_DIR/bin/coldchain" dashboards build "$CONFIG" --out "$ROOT$GRAFANA" >/dev/null
    echo "Grafana dashboards and provisioning in $GRAFANA"
fi

# --- systemd ------------------------------------------------------------------------------
mkdir -p "$UNITS"
ROLE_ARGS=""
for role in "${ROLES[@]}"; do ROLE_ARGS+=" --role $role"; done
cat > "$UNITS/coldchain-hub.service" <<EOF
# Written by coldchain's deploy/centre/install.sh; run it again to change.
[Unit]
Description=coldchain hub: ingest, store, alerts and SMS, web UI, API
After=network-online.target coldchain-broker.service
Wants=network-online.target

[Service]
ExecStart=$VENV_DIR/bin/coldchain hub /etc/coldchain/site.yaml --data-dir $DATA$ROLE_ARGS
User=coldchain-hub
Group=coldchain-hub
Restart=always
RestartSec=5
TimeoutStopSec=60
ReadWritePaths=$DATA${CLIENT_CA:+ $CLIENT_CA}
PrivateDevices=yes
$(sandbox)

[Install]
WantedBy=multi-user.target
EOF
write_broker_unit
UNITS_MADE=(coldchain-hub.service coldchain-broker.service)
if [ -n "$CLIENT_CA" ]; then
    cat > "$UNITS/coldchain-broker-crl.path" <<EOF
# Written by coldchain's deploy/centre/install.sh: a revoked gateway's certificate is refused
# as soon as coldchain (the hub's API, or coldchain gateway revoke) writes the new CRL.
[Unit]
Description=coldchain: reload the broker when the client CA's revocation list changes

[Path]
PathChanged=$CLIENT_CA/crl.pem
Unit=coldchain-broker-reload.service

[Install]
WantedBy=multi-user.target
EOF
    cat > "$UNITS/coldchain-broker-reload.service" <<'EOF'
# Written by coldchain's deploy/centre/install.sh, started by coldchain-broker-crl.path.
[Unit]
Description=coldchain: reload the broker (certificates and CRL)

[Service]
Type=oneshot
ExecStart=/bin/systemctl reload coldchain-broker.service
EOF
    UNITS_MADE+=(coldchain-broker-crl.path)
else
    rm -f "$UNITS/coldchain-broker-crl.path" "$UNITS/coldchain-broker-reload.service"
fi
echo "services ${UNITS_MADE[*]}"

enable_units "$START" "${UNITS_MADE[@]}"
