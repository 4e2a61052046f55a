# Shared by deploy/pi/install.sh and deploy/centre/install.sh (sourced, not run).
# They set ROOT ("" for /), VENV_DIR and PYTHON before calling these.

die() { echo "install.sh: $*" >&2; exit 1; }

# live_systemd: 1 when installing into / on a machine that runs systemd, else 0
live_systemd() {
    if [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        echo 1
    else
        echo 0
    fi
}

# make_user NAME HOME [GROUP...]: a system user with no login and its own group (in ROOT,
# with useradd --prefix there); once
make_user() {
    local name="$1" home="$2"
    shift 2
    local prefix=() groups=()
    [ -n "$ROOT" ] && prefix=(--prefix "$ROOT")
    [ $# -gt 0 ] && groups=(--groups "$(IFS=,; echo "$*")")
    if ! grep -q "^$name:" "$ROOT/etc/passwd"; then
        useradd "${prefix[@]}" --system --no-create-home --home-dir "$home" \
            --shell /usr/sbin/nologin --user-group "${groups[@]}" "$name"
        echo "user $name${*:+ (in $*)}"
    fi
}

# id_of passwd|group NAME: the numeric id in ROOT's account files (chown by number: the
# names may exist only in ROOT)
id_of() {
    awk -F: -v n="$2" '$1 == n { print $3 }' "$ROOT/etc/$1"
}

# make_venv LOCKFILE: the venv at ROOT/VENV_DIR with LOCKFILE's pins and coldchain from
# SOURCE, upgraded in place
make_venv() {
    mkdir -p "$ROOT$(dirname "$VENV_DIR")"
    [ -x "$ROOT$VENV_DIR/bin/python" ] || "$PYTHON" -m venv "$ROOT$VENV_DIR"
    "$ROOT$VENV_DIR/bin/pip" install --quiet --disable-pip-version-check -r "$1"
    "$ROOT$VENV_DIR/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        --force-reinstall "$SOURCE"
}

# enable_units START UNIT...: enable (and with START=1 restart) on a live system; in ROOT,
# enable offline so they start at boot
enable_units() {
    local start="$1"
    shift
    if [ "$(live_systemd)" = 1 ]; then
        systemctl daemon-reload
        systemctl enable "$@"
        if [ "$start" = 1 ]; then
            systemctl restart "$@"
            echo "started: journalctl -u ${1%.service} -f"
        fi
    elif command -v systemctl >/dev/null; then
        systemctl --root="${ROOT:-/}" enable "$@" >/dev/null
        echo "enabled in ${ROOT:-/} (starts at boot)"
    fi
}

# remove_units UNIT...: stop, disable and delete
remove_units() {
    local u
    if [ "$(live_systemd)" = 1 ]; then
        systemctl disable --now "$@" 2>/dev/null || true
    fi
    for u in "$@"; do
        rm -f "$ROOT/etc/systemd/system/$u" "$ROOT/etc/systemd/system/multi-user.target.wants/$u"
    done
    if [ "$(live_systemd)" = 1 ]; then systemctl daemon-reload; fi
}

# sandbox: the systemd sandboxing every coldchain service gets (no privileges or
# capabilities, a read-only system, no home dirs, a private /tmp, no kernel or clock changes,
# IP and Unix sockets only), for a unit's [Service] section; each unit adds what it may write
sandbox() {
    cat <<'EOF'
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
UMask=0027
EOF
}
