#!/usr/bin/env bash
# Install, upgrade, roll back or remove the gate daemon on a Raspberry Pi (64-bit Raspberry Pi
# OS bookworm; a 32-bit userland is refused) or a 64-bit Debian 12. Run as root.
# `install.sh --help` tells everything; docs/install.md is the technician's procedure.
#
# Layout it makes (every path below is prefixed with --root DIR when given):
#   /opt/gate/releases/<version>-<UTC time>-<hash>/   one release: app/ (a copy of the source),
#                                                     venv/ (--system-site-packages), RELEASE stamp
#   /opt/gate/current  -> releases/<name>             switched atomically (ln -sfn + mv -T)
#   /opt/gate/previous -> releases/<name>             what --rollback goes back to
#   /opt/gate/venv -> current/venv, /opt/gate/app -> current/app   (fixed links through current)
#   /usr/local/bin/gate -> /opt/gate/venv/bin/gate    for the technician (`gate selftest`)
#   /etc/gate/             0750 root:gate  gate.yaml (0640 root:gate), gate.example.yaml,
#                                          mqtt-ca.pem, mqtt-client.pem (0640 root:gate),
#                                          mqtt-client.key, mqtt-password (0600 gate:gate)
#   /var/lib/gate/         0750 gate:gate  the outbox (unsent check-ins): never touched but by --purge
#   /etc/systemd/system/gate.service (+ multi-user.target.wants link when enabled)
#
# Decisions where the issue was silent (also in --help):
# - An existing /etc/gate/gate.yaml is never replaced wholesale. Flags given on a re-run update
#   only the keys they own (each flag's keys are listed in --help), line by line, through the
#   release's own `gate config set`; comments, hand edits and every other key are kept. Any
#   change is shown as a diff and the old file is kept as gate.yaml.bak. A file whose owned keys
#   cannot be edited safely (flow style, multi-line values) is refused with a message and left
#   alone. Without such flags the file is not touched.
# - Without --device-id, site.device_id is written as null: the daemon derives it at each start
#   from the CPU serial (else /etc/machine-id), the value `gate device-id` prints here, and a
#   cloned SD card then does not share the MQTT client id of its original.
# - The userland must be 64-bit (asked of the Python interpreter, not the kernel); the apt
#   packages are checked before anything changes. --bundle installs offline: no apt, pip only
#   from the bundle's verified wheels.
# - A rollback pins its release (/opt/gate/rolled-back) until an install with --upgrade.
# - --purge asks before deleting an outbox (unsent check-ins), or needs --yes without a terminal.
# - A new release is made only when the source differs (sha256 over its files) from the current
#   release; a source equal to another kept release switches back to that one. The new release's
#   `gate config check` must accept the config before anything is switched or written.
# - systemctl runs only on a live system (no --root, systemd running). The unit is enabled (with
#   a plain symlink under --root or without systemd) and started or restarted when something
#   changed, but only when the release has a venv (not with --skip-packages).
# - Under --root the gate user and groups are written into DIR/etc/passwd and DIR/etc/group
#   (and shadow/gshadow when present) only if those files exist there; otherwise that step is
#   skipped with a note. Ownership is set only when running as root.
set -euo pipefail
umask 022

PROG=install.sh
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ID_RE='^[A-Za-z0-9_-]{1,64}$'
USERNAME_RE='^[A-Za-z0-9._@+-]{1,128}$'
HOST_RE='^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$'
KEEP_RELEASES=3
# numpy and Pillow come from Debian, as picamera2 needs them (pip keeps them: the project's
# floors are these versions); tzdata for site.timezone on minimal images.
APT_REQUIRED=(python3 python3-venv python3-numpy python3-pil libzbar0 ca-certificates tzdata)
APT_WHERE_AVAILABLE=(python3-picamera2 python3-lgpio)

OPT=/opt/gate
ETC=/etc/gate
VAR=/var/lib/gate
UNIT=/etc/systemd/system/gate.service
WANTS_DIR=/etc/systemd/system/multi-user.target.wants
BIN_LINK=/usr/local/bin/gate
CONFIG=$ETC/gate.yaml
CA_DEST=$ETC/mqtt-ca.pem
CERT_DEST=$ETC/mqtt-client.pem
KEY_DEST=$ETC/mqtt-client.key
PASSWORD_DEST=$ETC/mqtt-password

usage() {
    cat <<'EOF'
Usage: install.sh [OPTIONS]           install or upgrade the gate daemon (run as root)
       install.sh --bundle FILE [OPTIONS]   the same, offline, from a bundle (scripts/bundle)
       install.sh --rollback          switch back to the previous release
       install.sh --uninstall [--purge [--yes]]

First install (all four required; on a re-run each one given updates only its own keys):
  --venue ID             site.venue_id            IDs: 1-64 of A-Z a-z 0-9 _ -
  --gate ID              site.gate_id
  --province CODE        site.province
  --broker HOST[:PORT]   mqtt.host, mqtt.port (default 8883, or 1883 with --plain) and
                         mqtt.transport (tls, or plain with --plain); [IPv6]:PORT works
Optional:
  --device-id ID         site.device_id. Default: null, which the daemon resolves at each start
                         to the CPU serial (/proc/cpuinfo Serial, the device tree serial-number),
                         else /etc/machine-id; the value is printed. Never copy it to another gate.
  --plain                plain TCP to the broker, only with --broker (clears the TLS file keys)
  --ca FILE              broker CA (PEM) -> /etc/gate/mqtt-ca.pem, mqtt.ca_file; default: the
                         system's trusted CAs
  --cert FILE --key FILE client certificate and key -> /etc/gate/mqtt-client.pem and
                         mqtt-client.key (key 0600 gate), mqtt.cert_file and mqtt.key_file
  --username USER        mqtt.username (1-128 of A-Z a-z 0-9 . _ @ + -)
  --password-file FILE   first line = MQTT password -> /etc/gate/mqtt-password (0600 gate),
                         mqtt.password_file; needs --username
  --source DIR           checkout to install (default: the one this script is in)
  --bundle FILE          install offline from a bundle made by scripts/bundle (the file or
                         its unpacked folder): its checksums are verified, its source is the
                         release and pip takes only its wheels (no network). The apt packages
                         must be there already; missing ones are named with the command that
                         brings them, and nothing is changed (exit 1)
  --upgrade              after --rollback, switch to this source again: a rolled-back gate
                         stays on its release until an install with --upgrade
  --root DIR             install into a staging root: every path is prefixed with DIR; no apt,
                         no systemctl (the unit is enabled by a symlink); the gate user and
                         groups are added to DIR/etc/passwd and DIR/etc/group only if those
                         exist; needs --skip-packages (a venv made there would not run)
  --skip-packages        no apt and no pip: releases get no venv, the config is not checked and
                         the service is not started (tests, or a staging tree)
  --dry-run              print every action, change nothing
  --rollback             current release <-> previous release (config and data untouched), then
                         restart; the previous release must accept the config
  --uninstall            stop and disable the service, remove the unit, /opt/gate and the gate
                         command; keep /etc/gate, /var/lib/gate (unsent check-ins) and the user
  --purge                with --uninstall: also remove /etc/gate, /var/lib/gate and the gate user;
                         when an outbox is there it asks first (type yes), or refuses without
                         a terminal
  --yes                  with --purge: delete the unsent check-ins without asking
  -h, --help             this text

Supported: 64-bit Raspberry Pi OS bookworm Lite (Pi Zero 2 W, 3, 4, 5) and 64-bit Debian 12.
The userland decides, as the Python interpreter reports it (not uname -m): a 32-bit userland
is refused before anything is changed (flash Raspberry Pi OS Lite (64-bit)).

What it does: apt packages (python3, python3-venv, python3-numpy, python3-pil, libzbar0,
ca-certificates, tzdata; python3-picamera2 and python3-lgpio where apt has them; checked
first, installed with apt-get unless --bundle or --root); groups gpio and video and the system user gate in them;
a release in /opt/gate/releases/ (copy of the source and a venv with --system-site-packages
holding the pip-installed release), switched to atomically, the previous one kept for
--rollback (at most 3 kept); /etc/gate/gate.yaml from the flags (only site and mqtt keys, every
other key at its default; gate.example.yaml beside it lists them all) 0640 root:gate; secrets
0600 gate; /var/lib/gate 0750 gate:gate; the unit, enabled and (re)started; `gate config check`.

Re-runs: idempotent, the same flags change nothing. A changed source makes a new release;
the config and /var/lib/gate are kept. After --rollback a re-run keeps the rolled-back release
(flags still update the config) until --upgrade. Two runs on one system (or one --root) never
overlap: the second waits for the first. An existing gate.yaml is never overwritten: flags given
update only their keys (diff shown, old file kept as gate.yaml.bak), hand edits are kept.
Environment: GATE_PYTHON (default /usr/bin/python3) is the Python the venvs are made from
(its pointer size decides 32/64-bit); without a release venv (--skip-packages) it runs the
source's own `gate config set` and `gate device-id`, so it needs the gate's dependencies.
GATE_INSTALL_LOCK_WAIT_S (default 600): how long a run waits for another one.
GATE_DEVICE_MODEL (default /proc/device-tree/model): the board; on a Raspberry Pi the camera
and GPIO packages (python3-picamera2, python3-lgpio) are required, not only wanted.
Exit status: 0 done, 1 failed (the message says why and what to do: missing apt packages,
a 32-bit userland, a bundle that fails its checksums, a file that cannot be written...),
2 bad usage.
EOF
}

# ----- output ------------------------------------------------------------------------------

DRY_RUN=0
CHANGES=0
say() { printf '%s\n' "$*"; }
note() { printf 'note: %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}
usage_error() {
    printf '%s: error: %s\n(%s --help tells the options)\n' "$PROG" "$*" "$PROG" >&2
    exit 2
}

# change DESCRIPTION CMD [ARG...]: one action; printed, and done unless --dry-run.
change() {
    local what=$1
    shift
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" -eq 1 ]; then
        say "would: $what"
    else
        say "+ $what"
        "$@" || die "failed: $what"
    fi
}

# ----- flags -------------------------------------------------------------------------------

MODE=install
PURGE=0 YES=0 UPGRADE=0 BUNDLE="" BUNDLE_DIR="" WHEELS=""
R=""
SOURCE=""
SKIP_PACKAGES=0
VENUE="" GATE_ID="" PROVINCE="" BROKER="" DEVICE_ID="" PLAIN=0
CA="" CERT="" KEY="" MQTT_USER="" PASSWORD_FILE=""
GIVEN_CONFIG_FLAGS=()

need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
}

parse_flags() {
    while [ "$#" -gt 0 ]; do
        case "$1" in
        --venue | --gate | --province | --broker | --device-id | --ca | --cert | --key | \
            --username | --password-file | --root | --source | --bundle)
            need_value "$@"
            case "$1" in
            --venue) VENUE=$2 ;;
            --gate) GATE_ID=$2 ;;
            --province) PROVINCE=$2 ;;
            --broker) BROKER=$2 ;;
            --device-id) DEVICE_ID=$2 ;;
            --ca) CA=$2 ;;
            --cert) CERT=$2 ;;
            --key) KEY=$2 ;;
            --username) MQTT_USER=$2 ;;
            --password-file) PASSWORD_FILE=$2 ;;
            --root) R=$2 ;;
            --source) SOURCE=$2 ;;
            --bundle) BUNDLE=$2 ;;
            esac
            case "$1" in --root | --source | --bundle) ;; *) GIVEN_CONFIG_FLAGS+=("$1") ;; esac
            shift 2
            ;;
        --venue=* | --gate=* | --province=* | --broker=* | --device-id=* | --ca=* | --cert=* | \
            --key=* | --username=* | --password-file=* | --root=* | --source=* | --bundle=*)
            local name=${1%%=*} value=${1#*=}
            shift
            parse_flags "$name" "$value"
            ;;
        --plain)
            PLAIN=1
            GIVEN_CONFIG_FLAGS+=(--plain)
            shift
            ;;
        --skip-packages) SKIP_PACKAGES=1 && shift ;;
        --dry-run) DRY_RUN=1 && shift ;;
        --rollback | --uninstall)
            [ "$MODE" = install ] || [ "$MODE" = "${1#--}" ] ||
                usage_error "--rollback and --uninstall exclude each other"
            MODE=${1#--}
            shift
            ;;
        --purge) PURGE=1 && shift ;;
        --yes) YES=1 && shift ;;
        --upgrade) UPGRADE=1 && shift ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) usage_error "unknown option: $1" ;;
        esac
    done
}

check_id() { # FLAG VALUE
    [[ $2 =~ $ID_RE ]] ||
        usage_error "$1 '$2': an id is 1 to 64 characters of A-Z a-z 0-9 _ - (nothing else)"
}

check_pem() { # FLAG FILE PATTERN
    if [ ! -f "$2" ] || [ ! -r "$2" ]; then usage_error "$1 $2: no such readable file"; fi
    grep -Eq -- "$3" "$2" || usage_error "$1 $2: not a PEM file (no '$3' line)"
}

BROKER_HOST="" BROKER_PORT=""
validate_flags() {
    if [ "$PURGE" -eq 1 ] && [ "$MODE" != uninstall ]; then
        usage_error "--purge goes with --uninstall"
    fi
    if [ "$YES" -eq 1 ] && [ "$PURGE" -eq 0 ]; then usage_error "--yes goes with --purge"; fi
    if [ "$MODE" != install ] && [ "$UPGRADE$BUNDLE" != 0 ]; then
        usage_error "--upgrade and --bundle go with an install, not --$MODE"
    fi
    if [ -n "$BUNDLE" ]; then
        [ -z "$SOURCE" ] || usage_error "--bundle brings its own source: no --source with it"
        [ -e "$BUNDLE" ] || usage_error "--bundle $BUNDLE: no such file or folder"
        [ "$SKIP_PACKAGES" -eq 0 ] || usage_error "--bundle installs packages: no --skip-packages"
    fi
    if [ "$MODE" != install ] && [ "${#GIVEN_CONFIG_FLAGS[@]}" -gt 0 ]; then
        usage_error "--$MODE takes no config flags (${GIVEN_CONFIG_FLAGS[*]})"
    fi
    if [ -n "$R" ]; then
        [[ $R == /* ]] || usage_error "--root $R: give an absolute path"
        [ -d "$R" ] || usage_error "--root $R: no such directory"
        R=$(cd "$R" && pwd -P)
        [ "$R" != / ] || R=""
    fi
    [ "$MODE" = install ] || return 0
    if [ -n "$VENUE" ]; then check_id --venue "$VENUE"; fi
    if [ -n "$GATE_ID" ]; then check_id --gate "$GATE_ID"; fi
    if [ -n "$PROVINCE" ]; then check_id --province "$PROVINCE"; fi
    if [ -n "$DEVICE_ID" ]; then check_id --device-id "$DEVICE_ID"; fi
    if [ -n "$BROKER" ]; then
        local host=$BROKER port=""
        if [[ $BROKER =~ ^\[([0-9A-Fa-f:.]+)\](:([0-9]+))?$ ]]; then
            host=${BASH_REMATCH[1]} port=${BASH_REMATCH[3]}
        elif [[ $BROKER == *:* ]]; then
            host=${BROKER%:*} port=${BROKER##*:}
            [[ $host =~ $HOST_RE && $port =~ ^[0-9]+$ ]] ||
                usage_error "--broker $BROKER: expected HOST or HOST:PORT (IPv6: [ADDRESS]:PORT)"
        elif ! [[ $host =~ $HOST_RE ]]; then
            usage_error "--broker $BROKER: not a host name or address"
        fi
        if [ -n "$port" ]; then
            if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$((10#$port))" -lt 1 ] || [ "$((10#$port))" -gt 65535 ]; then
                usage_error "--broker $BROKER: port must be 1-65535"
            fi
            port=$((10#$port))
        fi
        BROKER_HOST=$host BROKER_PORT=$port
    fi
    if [ "$PLAIN" -eq 1 ]; then
        [ -n "$BROKER" ] || usage_error "--plain goes with --broker (it sets the transport)"
        [ -z "$CA$CERT$KEY" ] || usage_error "--plain excludes --ca, --cert and --key (TLS files)"
    fi
    if [ -n "$CERT" ] && [ -z "$KEY" ]; then usage_error "--cert needs --key"; fi
    if [ -n "$KEY" ] && [ -z "$CERT" ]; then usage_error "--key needs --cert"; fi
    if [ -n "$PASSWORD_FILE" ] && [ -z "$MQTT_USER" ]; then
        usage_error "--password-file needs --username"
    fi
    if [ -n "$MQTT_USER" ] && ! [[ $MQTT_USER =~ $USERNAME_RE ]]; then
        usage_error "--username '$MQTT_USER': 1 to 128 of A-Z a-z 0-9 . _ @ + -"
    fi
    if [ -n "$CA" ]; then check_pem --ca "$CA" '^-----BEGIN CERTIFICATE-----'; fi
    if [ -n "$CERT" ]; then check_pem --cert "$CERT" '^-----BEGIN CERTIFICATE-----'; fi
    if [ -n "$KEY" ]; then check_pem --key "$KEY" '^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----'; fi
    if [ -n "$PASSWORD_FILE" ]; then
        if [ ! -f "$PASSWORD_FILE" ] || [ ! -r "$PASSWORD_FILE" ]; then
            usage_error "--password-file $PASSWORD_FILE: no such readable file"
        fi
        [ -n "$(head -n 1 "$PASSWORD_FILE")" ] ||
            usage_error "--password-file $PASSWORD_FILE: the first line (the password) is empty"
    fi
    [ -n "$BUNDLE" ] || check_source
}

# check_source: SOURCE (default: this script's checkout) is a gate checkout.
check_source() {
    SOURCE=${SOURCE:-$(cd "$SCRIPT_DIR/.." && pwd -P)}
    [ -d "$SOURCE" ] || usage_error "--source $SOURCE: no such directory"
    SOURCE=$(cd "$SOURCE" && pwd -P)
    local required
    for required in pyproject.toml gate/__init__.py systemd/gate.service config/gate.example.yaml; do
        [ -f "$SOURCE/$required" ] || usage_error "--source $SOURCE: not a gate checkout (no $required)"
    done
    grep -q '^name = "gate"$' "$SOURCE/pyproject.toml" ||
        usage_error "--source $SOURCE: pyproject.toml is not the gate project's"
}

# ----- helpers -----------------------------------------------------------------------------

p() { printf '%s%s' "$R" "$1"; } # the path on this machine of a path of the installed system

TMP=""
cleanup() { if [ -n "$TMP" ]; then rm -rf "$TMP"; fi; }
trap cleanup EXIT

IS_ROOT=0
[ "$(id -u)" -ne 0 ] || IS_ROOT=1

systemd_live() { [ -z "$R" ] && [ -d /run/systemd/system ]; }

yaml_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# Numeric ids of the accounts, resolved after ensure_accounts ("" when unknown).
GATE_UID="" GATE_GID=""
resolve_ids() {
    GATE_UID="" GATE_GID=""
    if [ -n "$R" ]; then
        if [ -f "$R/etc/passwd" ]; then
            GATE_UID=$(awk -F: '$1 == "gate" { print $3; exit }' "$R/etc/passwd")
        fi
        if [ -f "$R/etc/group" ]; then
            GATE_GID=$(awk -F: '$1 == "gate" { print $3; exit }' "$R/etc/group")
        fi
    else
        GATE_UID=$(getent passwd gate | cut -d: -f3) || true
        GATE_GID=$(getent group gate | cut -d: -f3) || true
    fi
}

owner_ids() { # LABEL (root:root, root:gate, gate:gate) -> uid:gid, or "" when not settable
    [ "$IS_ROOT" -eq 1 ] || return 0
    case "$1" in
    root:root) printf '0:0' ;;
    root:gate) if [ -n "$GATE_GID" ]; then printf '0:%s' "$GATE_GID"; fi ;;
    gate:gate) if [ -n "$GATE_UID" ] && [ -n "$GATE_GID" ]; then printf '%s:%s' "$GATE_UID" "$GATE_GID"; fi ;;
    esac
}

set_meta() { # PATH MODE OWNER_IDS
    chmod "$2" "$1"
    if [ -n "$3" ]; then chown -h "$3" "$1"; fi
}

# fix_meta PATH MODE LABEL: the mode and owner of an existing path, changed only if they differ.
fix_meta() {
    local path=$1 mode=$2 label=$3 ids current
    ids=$(owner_ids "$label")
    current=$(stat -c %a "$path")
    if [ "$((8#$current))" -ne "$((8#$mode))" ]; then
        change "chmod $mode $path (was $current)" chmod "$mode" "$path"
    fi
    if [ -n "$ids" ] && [ "$(stat -c %u:%g "$path")" != "$ids" ]; then
        change "chown $label $path" chown "$ids" "$path"
    fi
}

ensure_dir() { # PATH MODE LABEL: one of the gate's directories, created or corrected
    if [ -d "$1" ]; then
        fix_meta "$@"
    else
        change "create $1/ ($2 $3)" make_dir "$1" "$2" "$(owner_ids "$3")"
    fi
}
system_dir() { # PATH: a system directory, created (0755 root:root) if missing, else left alone
    if [ ! -d "$1" ]; then change "create $1/ (0755 root:root)" make_dir "$1" 0755 "$(owner_ids root:root)"; fi
}
make_dir() {
    mkdir -p "$1"
    set_meta "$@"
}

# install_file SOURCE DEST MODE LABEL: DEST gets SOURCE's content (atomically), MODE and owner.
# Sets FILE_CHANGED=1 when the content changed.
FILE_CHANGED=0
install_file() {
    local src=$1 dest=$2 mode=$3 label=$4
    FILE_CHANGED=0
    if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s "$src" "$dest"; then
        fix_meta "$dest" "$mode" "$label"
        return 0
    fi
    FILE_CHANGED=1
    local verb=write
    if [ -e "$dest" ]; then verb=replace; fi
    change "$verb $dest ($mode $label)" copy_file "$src" "$dest" "$mode" "$(owner_ids "$label")"
}
copy_file() { # called in `install_file ... && ...`, where set -e is off: every step checked
    local tmp
    tmp="$(dirname "$2")/.$(basename "$2").new.$$"
    cp "$1" "$tmp" && set_meta "$tmp" "$3" "$4" && mv -f -T "$tmp" "$2" && return 0
    rm -f "$tmp"
    die "cannot copy $1 to $2 (cannot move a copy there: is something in the way?)"
}

# switch_link LINK TARGET: point LINK at TARGET (relative or absolute) by an atomic rename.
switch_link() {
    local link=$1 target=$2
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then return 0; fi
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        die "$link exists and is not a symlink: move it away, then run again"
    fi
    change "point $link -> $target" replace_link "$link" "$target"
}
replace_link() {
    local tmp
    tmp="$(dirname "$1")/.$(basename "$1").new.$$"
    ln -sfn "$2" "$tmp"
    mv -T "$tmp" "$1"
}

remove_path() { # PATH [WHAT]
    if [ -e "$1" ] || [ -L "$1" ]; then
        change "remove ${2:-$1}" rm -rf -- "$1"
    fi
}

# ----- packages ----------------------------------------------------------------------------

apt_installed() { # in the dpkg database of the system being installed (DIR/var/lib/dpkg under --root)
    dpkg-query --admindir="$(p /var/lib/dpkg)" -W -f='${Status}' "$1" 2>/dev/null |
        grep -q "install ok installed"
}
apt_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

# On a Raspberry Pi the camera and GPIO packages are required too: without them the gate
# would run out of service (camera_missing, gpio_unavailable), and an offline (--bundle)
# install could not fetch them later.
on_a_pi() {
    grep -qas "Raspberry Pi" "${GATE_DEVICE_MODEL:-/proc/device-tree/model}"
}
missing_required() { # the required apt packages not installed, one per line
    local package required=("${APT_REQUIRED[@]}")
    if on_a_pi; then required+=("${APT_WHERE_AVAILABLE[@]}"); fi
    for package in "${required[@]}"; do
        apt_installed "$package" || printf '%s\n' "$package"
    done
}

# apt_or_fail WHAT CMD [ARG...]: an apt command with its output kept aside; on failure the
# packages and the command that brings them are named (exit 1), never apt's own exit status.
apt_or_fail() {
    local what=$1
    shift
    if ! "$@" >"$TMP/apt.log" 2>&1; then
        sed 's/^/    apt: /' "$TMP/apt.log" | tail -n 8 >&2
        die "$what failed (network? apt sources?): run 'sudo $what' by hand, then this again"
    fi
}

# check_packages: before anything changes, the apt packages the gate needs. Where apt cannot
# be used (--bundle: no network; --root: another system) missing ones are a refusal.
check_packages() {
    [ "$SKIP_PACKAGES" -eq 0 ] || return 0
    local missing=""
    if [ -n "$R" ] && [ ! -f "$(p /var/lib/dpkg/status)" ]; then
        note "no dpkg database in $R: apt packages not checked"
    else
        missing=$(missing_required | tr '\n' ' ')
        missing=${missing% }
    fi
    if [ -n "$missing" ] && { [ -n "$R" ] || [ -n "$BUNDLE" ]; }; then
        die "missing apt packages: $missing. Install them first (with network: sudo apt-get update && sudo apt-get install -y $missing), then run this again; nothing was changed"
    fi
    # A venv records its own path and this machine's Python: made under --root, it would not
    # run on the gate.
    [ -z "$R" ] || die "--root builds no venv (it would point at $R): add --skip-packages, and run install.sh on the gate itself for one; nothing was changed"
    [ -z "$missing" ] || command -v apt-get >/dev/null ||
        die "apt-get not found and missing: $missing (this is for Raspberry Pi OS / Debian 12)"
}

ensure_packages() {
    if [ -n "$R" ] || [ "$SKIP_PACKAGES" -eq 1 ] || [ -n "$BUNDLE" ]; then
        if [ "$SKIP_PACKAGES" -eq 1 ]; then note "apt skipped (--skip-packages)"; fi
        if [ -n "$R" ]; then note "apt not run (--root)"; fi
        if [ -n "$BUNDLE" ]; then note "apt not run (--bundle: offline)"; fi
        return 0
    fi
    local missing=() package
    mapfile -t missing < <(missing_required)
    if [ "${#missing[@]}" -gt 0 ]; then
        change "apt-get update" apt_or_fail "apt-get update" apt-get update -qq
    fi
    on_a_pi || for package in "${APT_WHERE_AVAILABLE[@]}"; do # on a Pi: required, above
        if apt_installed "$package"; then continue; fi
        if apt_candidate "$package"; then
            missing+=("$package")
        else
            note "$package: not in this system's apt sources (fine off a Raspberry Pi)"
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        change "apt-get install ${missing[*]}" apt_or_fail "apt-get install ${missing[*]}" \
            env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# check_userland: the gate runs on a 64-bit userland only (no armv7l wheels for zxing-cpp,
# cffi, cbor2, pyyaml, numpy, pillow: a 32-bit Pi would compile for an hour, or have no
# decoder). Decided by the interpreter the venv is made from, not by the kernel: a Pi 4 running
# 32-bit Raspberry Pi OS has a 64-bit kernel (uname -m says aarch64) under an armhf userland.
USERLAND=""
check_userland() {
    local python=${GATE_PYTHON:-/usr/bin/python3} bits
    if [ ! -x "$python" ]; then
        [ "$SKIP_PACKAGES" -eq 1 ] && return 0
        die "$python not found (apt install python3, or set GATE_PYTHON)"
    fi
    read -r bits USERLAND < <("$python" -c \
        'import struct, sysconfig; print(struct.calcsize("P") * 8, sysconfig.get_platform())') ||
        die "$python does not run"
    if [ "$bits" != 64 ]; then
        die "this is a ${bits}-bit userland ($USERLAND): the gate needs 64-bit. Flash Raspberry Pi OS Lite (64-bit) and install again; nothing was changed"
    fi
}

# open_bundle: the bundle unpacked (a file) or taken as it is (a folder), every file checked
# against its SHA256SUMS, nothing unlisted, and made for this interpreter's platform.
open_bundle() {
    [ -n "$BUNDLE" ] || return 0
    local dir=$BUNDLE
    if [ -f "$BUNDLE" ]; then
        mkdir "$TMP/bundle"
        tar -x -f "$BUNDLE" -C "$TMP/bundle" --no-same-owner 2>"$TMP/tar.err" ||
            die "--bundle $BUNDLE: not a readable bundle ($(head -n 1 "$TMP/tar.err"))"
        dir=$(find "$TMP/bundle" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    fi
    if [ -z "$dir" ] || [ ! -f "$dir/SHA256SUMS" ] || [ ! -f "$dir/BUNDLE" ]; then
        die "--bundle $BUNDLE: not a gate bundle (no SHA256SUMS and BUNDLE; made by scripts/bundle)"
    fi
    dir=$(cd "$dir" && pwd -P)
    (cd "$dir" && sha256sum --quiet --strict -c SHA256SUMS) >"$TMP/sums.err" 2>&1 ||
        die "--bundle $BUNDLE fails its checksums (copy it again): $(head -n 3 "$TMP/sums.err" | tr '\n' ' ')"
    local listed present
    listed=$(sed 's/^[0-9a-f]*  //' "$dir/SHA256SUMS" | LC_ALL=C sort)
    present=$(cd "$dir" && find . ! -type d ! -name SHA256SUMS | LC_ALL=C sort) # links too
    [ "$listed" = "$present" ] || die "--bundle $BUNDLE holds files its SHA256SUMS does not list"
    local platform
    platform=$(sed -n 's/^platform=//p' "$dir/BUNDLE")
    if [ -n "$USERLAND" ] && [ "$platform" != "$USERLAND" ]; then
        die "--bundle $BUNDLE is for $platform, this system's Python is $USERLAND: make one with scripts/bundle --arch ${USERLAND#linux-}"
    fi
    say "bundle $(sed -n 's/^name=//p' "$dir/BUNDLE"): checksums verified"
    BUNDLE_DIR=$dir
    WHEELS=$dir/wheels
    SOURCE=$dir/source
    check_source
}

# ----- accounts ----------------------------------------------------------------------------

staged_has() { awk -F: -v n="$2" '$1 == n { found = 1 } END { exit !found }' "$1"; }
staged_free_id() { # an id unused as uid and as gid, from 999 down (as useradd --system does)
    local id
    for ((id = 999; id >= 100; id--)); do
        if ! awk -F: -v i="$id" '$3 == i { found = 1 } END { exit !found }' \
            "$R/etc/passwd" "$R/etc/group"; then
            printf '%s' "$id"
            return 0
        fi
    done
    die "no free system id in $R/etc/passwd and $R/etc/group"
}
append_line() { printf '%s\n' "$2" >>"$1"; }
write_line() { printf '%s\n' "$2" >"$1"; }
# edit_members FILE GROUP add|remove USER: the member list (4th field) of GROUP in FILE.
edit_members() {
    awk -F: -v OFS=: -v g="$2" -v op="$3" -v u="$4" '
        $1 == g {
            n = split($4, m, ","); list = ""
            for (i = 1; i <= n; i++) if (m[i] != "" && m[i] != u) list = list (list == "" ? "" : ",") m[i]
            if (op == "add") list = list (list == "" ? "" : ",") u
            $4 = list
        }
        { print }' "$1" >"$TMP/edited"
    cat "$TMP/edited" >"$1" # in place: keeps the file's mode and owner
}
in_members() { # FILE GROUP USER
    awk -F: -v g="$2" -v u="$3" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) found = 1 }
        END { exit !found }' "$1"
}

ensure_accounts() {
    if [ -n "$R" ]; then
        local passwd=$R/etc/passwd group=$R/etc/group shadow=$R/etc/shadow gshadow=$R/etc/gshadow
        if [ ! -f "$passwd" ] || [ ! -f "$group" ]; then
            note "no $passwd and $group in the staging root: the gate user and groups are not created there"
            return 0
        fi
        local name id file
        for name in gpio video; do
            if ! staged_has "$group" "$name"; then
                id=$(staged_free_id)
                change "add group $name (gid $id) to $group" append_line "$group" "$name:x:$id:"
                if [ -f "$gshadow" ] && [ "$DRY_RUN" -eq 0 ]; then append_line "$gshadow" "$name:!::"; fi
            fi
        done
        if ! staged_has "$passwd" gate; then
            if staged_has "$group" gate; then
                id=$(awk -F: '$1 == "gate" { print $3 }' "$group")
            else
                id=$(staged_free_id)
                change "add group gate (gid $id) to $group" append_line "$group" "gate:x:$id:"
                if [ -f "$gshadow" ] && [ "$DRY_RUN" -eq 0 ]; then append_line "$gshadow" "gate:!::"; fi
            fi
            change "add system user gate (uid $id) to $passwd" append_line "$passwd" \
                "gate:x:$id:$id:QR entrance gate:$VAR:/usr/sbin/nologin"
            if [ -f "$shadow" ] && [ "$DRY_RUN" -eq 0 ]; then append_line "$shadow" "gate:!:::::::"; fi
        fi
        for name in gpio video; do
            for file in "$group" "$gshadow"; do
                if [ -f "$file" ] && staged_has "$file" "$name" && ! in_members "$file" "$name" gate; then
                    change "add gate to group $name in $file" edit_members "$file" "$name" add gate
                fi
            done
        done
        return 0
    fi
    local name
    for name in gpio video; do
        getent group "$name" >/dev/null || change "create system group $name" groupadd --system "$name"
    done
    if ! getent passwd gate >/dev/null; then
        change "create system user gate in groups gpio, video" useradd --system --user-group \
            --home-dir "$VAR" --no-create-home --shell /usr/sbin/nologin \
            --comment "QR entrance gate" --groups gpio,video gate
    else
        for name in gpio video; do
            id -nG gate | tr ' ' '\n' | grep -qx "$name" ||
                change "add user gate to group $name" usermod -a -G "$name" gate
        done
    fi
}

remove_accounts() {
    if [ -n "$R" ]; then
        local file name
        for file in "$R/etc/passwd" "$R/etc/shadow" "$R/etc/group" "$R/etc/gshadow"; do
            [ -f "$file" ] || continue
            if staged_has "$file" gate; then
                change "remove gate from $file" remove_entry "$file" gate
            fi
            case "$file" in */group | */gshadow)
                for name in gpio video; do
                    if in_members "$file" "$name" gate; then
                        change "remove gate from group $name in $file" edit_members "$file" "$name" remove gate
                    fi
                done
                ;;
            esac
        done
        return 0
    fi
    if getent passwd gate >/dev/null; then change "delete user gate" userdel gate; fi
    if getent group gate >/dev/null; then change "delete group gate" groupdel gate; fi
}
remove_entry() { # FILE NAME
    awk -F: -v n="$2" '$1 != n' "$1" >"$TMP/edited"
    cat "$TMP/edited" >"$1"
}

# ----- releases ----------------------------------------------------------------------------

source_files() { # NUL-separated relative paths of what a release copies and hashes
    if [ -e "$SOURCE/.git" ] && command -v git >/dev/null; then # a checkout: its tracked files, never a key or venv lying in it
        git -c safe.directory="$SOURCE" -C "$SOURCE" ls-files -z --cached |
            while IFS= read -r -d '' file; do
                if [ -e "$SOURCE/$file" ] || [ -L "$SOURCE/$file" ]; then printf './%s\0' "$file"; fi
            done | LC_ALL=C sort -z
        return
    fi
    (cd "$SOURCE" && find . \( -name .git -o -name .venv -o -name 'venv' -o -name '.venv-*' -o -name '*.key' \
        -o -name __pycache__ -o -name '*.pyc' -o -name '*.egg-info' -o -name .pytest_cache \
        -o -name .ruff_cache -o -name .mypy_cache -o -name .hypothesis -o -path ./build \
        -o -path ./dist -o -path ./var \) -prune -o \( -type f -o -type l \) -print0 |
        LC_ALL=C sort -z) # a bundle's source, or a copy without git
}
source_hash() { # content and executable bits of those files (not the umask's other bits)
    {
        source_files | (cd "$SOURCE" && xargs -0 -r sha256sum --)
        source_files | (cd "$SOURCE" && xargs -0 -r stat -c '%A %n' --) | cut -c4,11-
    } | sha256sum | cut -c1-64
}
source_version() {
    local version
    version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$SOURCE/pyproject.toml" | head -n 1)
    [[ $version =~ ^[A-Za-z0-9.+_-]+$ ]] || version=unknown
    printf '%s' "$version"
}
stamp_value() { sed -n "s/^$2=//p" "$1/RELEASE" 2>/dev/null | head -n 1; }
link_name() { # the release name a link under /opt/gate points at, or ""
    local link
    link=$(p "$OPT/$1")
    if [ -L "$link" ]; then basename "$(readlink "$link")"; fi
}
complete_release() { [ -n "$1" ] && [ -f "$(p "$OPT/releases/$1")/RELEASE" ]; }
has_venv() { [ -x "$(p "$OPT/releases/$1")/venv/bin/gate" ]; }
usable_release() { # NAME HASH: complete, same source, and a venv unless --skip-packages
    complete_release "$1" && [ "$(stamp_value "$(p "$OPT/releases/$1")" source_sha256)" = "$2" ] &&
        { [ "$SKIP_PACKAGES" -eq 1 ] || has_venv "$1"; }
}

# A rollback pins its release: an install keeps it (the config flags still apply) until
# --upgrade. The file names the release rolled back to.
PINNED=$OPT/rolled-back
pinned_release() { if [ -f "$(p "$PINNED")" ]; then head -n 1 "$(p "$PINNED")"; fi; }

# NEW_RELEASE: the release to run after this install; BUILT=1 when it has to be made.
NEW_RELEASE="" BUILT=0
choose_release() {
    local hash=$1 current name dir
    current=$(link_name current)
    if [ -n "$(pinned_release)" ] && [ "$UPGRADE" -eq 0 ] && complete_release "$current"; then
        NEW_RELEASE=$current
        say "release $current: rolled back to, kept (install with --upgrade to switch to this source)"
        return 0
    fi
    if usable_release "$current" "$hash"; then
        NEW_RELEASE=$current
        say "release $current: the source is unchanged, nothing to build"
        return 0
    fi
    for dir in "$(p "$OPT/releases")"/*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        if usable_release "$name" "$hash"; then
            NEW_RELEASE=$name
            say "release $name holds this source already: switching back to it"
            return 0
        fi
    done
    NEW_RELEASE="$(source_version)-$(date -u +%Y%m%dT%H%M%SZ)-${hash:0:8}"
    BUILT=1
}

build_release() { # NAME HASH
    local dir described=""
    dir=$(p "$OPT/releases/$1")
    [ ! -e "$dir" ] || die "$dir exists already: remove it, then run again"
    if [ -e "$SOURCE/.git" ]; then
        # safe.directory: under sudo the checkout belongs to another user ("dubious ownership").
        described=$(git -c safe.directory="$SOURCE" -C "$SOURCE" describe --always --dirty --tags \
            2>/dev/null) || described=""
    elif [ -n "$BUNDLE_DIR" ]; then
        described=$(sed -n 's/^git_describe=//p' "$BUNDLE_DIR/BUNDLE")
    fi
    change "copy $SOURCE into $dir/app" copy_source "$dir/app"
    if [ "$SKIP_PACKAGES" -eq 1 ]; then
        note "--skip-packages: release $1 has no venv"
    else
        local python=${GATE_PYTHON:-/usr/bin/python3} offline=() pip_hint="network, PyPI reachable?"
        [ -x "$python" ] || die "$python not found (apt install python3, or set GATE_PYTHON)"
        if [ -n "$WHEELS" ]; then
            offline=(--no-index --find-links "$WHEELS") pip_hint="a wheel missing from the bundle?"
        fi
        change "create the venv $dir/venv (--system-site-packages, $python)" \
            or_fail "creating the venv failed (apt install python3-venv)" \
            "$python" -m venv --system-site-packages "$dir/venv"
        change "pip install the release into $dir/venv" \
            or_fail "pip install failed (${pip_hint})" \
            "$dir/venv/bin/python" -m pip install \
            --quiet --no-cache-dir --disable-pip-version-check --no-input "${offline[@]}" "$dir/app"
        if [ "$DRY_RUN" -eq 0 ]; then rm -rf "$dir/app/build" "$dir/app/gate.egg-info"; fi
    fi
    # Written last: a release without its stamp is incomplete and is removed by the next run.
    change "write $dir/RELEASE" write_stamp "$dir/RELEASE" "$1" "$2" "$described"
}
or_fail() { # MESSAGE CMD [ARG...]: CMD, or die with MESSAGE (nothing switched yet)
    local message=$1
    shift
    "$@" || die "$message: nothing was switched; the next run removes the incomplete release"
}
copy_source() {
    mkdir -p "$1"
    source_files | tar -c -f - -C "$SOURCE" --no-recursion --null -T - |
        tar -C "$1" --no-same-owner -xf -
    chmod -R u+rwX,go+rX,go-w "$1"
}
write_stamp() {
    {
        printf 'name=%s\n' "$2"
        printf 'version=%s\n' "$(source_version)"
        printf 'source_sha256=%s\n' "$3"
        printf 'git_describe=%s\n' "$4"
        printf 'source=%s\n' "$SOURCE"
        printf 'created=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"
        printf 'venv=%s\n' "$([ -x "$(dirname "$1")/venv/bin/gate" ] && echo yes || echo no)"
    } >"$1.tmp"
    mv -f "$1.tmp" "$1"
}

# prune_releases CURRENT PREVIOUS: keep those two and the newest others, KEEP_RELEASES in all;
# remove incomplete releases (a run that failed half-way).
prune_releases() {
    local current=$1 previous=$2 dir name kept=0 listing
    local releases
    releases=$(p "$OPT/releases")
    [ -d "$releases" ] || return 0
    for dir in "$releases"/*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        if ! complete_release "$name" && [ "$name" != "$current" ] && [ "$name" != "$previous" ]; then
            remove_path "$releases/$name" "incomplete release $name"
        fi
    done
    for name in "$current" "$previous"; do
        if [ -n "$name" ]; then kept=$((kept + 1)); fi
    done
    listing=$(for dir in "$releases"/*/; do
        [ -f "$dir/RELEASE" ] || continue
        printf '%s %s\n' "$(stamp_value "$dir" created)" "$(basename "$dir")"
    done | LC_ALL=C sort -r | cut -d' ' -f2)
    for name in $listing; do
        if [ "$name" = "$current" ] || [ "$name" = "$previous" ]; then continue; fi
        if [ "$kept" -lt "$KEEP_RELEASES" ]; then
            kept=$((kept + 1))
        else
            remove_path "$releases/$name" "old release $name"
        fi
    done
}

# ----- config ------------------------------------------------------------------------------

skeleton_config() {
    cat <<'EOF'
# The gate's configuration, written by scripts/install.sh from the technician's flags.
# Only what differs from the defaults is here: gate.example.yaml beside this file shows every
# key with its default and meaning. Check after an edit: gate config check /etc/gate/gate.yaml
# Re-running install.sh with --venue, --gate, --province, --device-id, --broker, --plain, --ca,
# --cert, --key, --username or --password-file rewrites only those flags' keys below; every
# other line (hand edits, other sections) is kept. Restart after an edit: systemctl restart gate

site:
  province: null
  venue_id: null
  gate_id: null
  # null: the daemon takes the CPU serial, else /etc/machine-id (a cloned SD card stays distinct).
  device_id: null

mqtt:
  host: null
  # null: 8883 with tls, 1883 with plain.
  port: null
  transport: "tls"
  # null: the system's trusted CAs.
  ca_file: null
  cert_file: null
  key_file: null
  username: null
  password_file: null
EOF
}

# gate_tool ARG...: the gate command of the release being installed; without its venv
# (--skip-packages, or a dry run before the build) the source's own package under GATE_PYTHON.
# The installer asks it to edit gate.yaml and for the device id instead of doing either itself.
gate_tool() {
    local gate_bin
    gate_bin="$(p "$OPT/releases/$NEW_RELEASE")/venv/bin/gate"
    if [ -n "$NEW_RELEASE" ] && [ -x "$gate_bin" ]; then
        "$gate_bin" "$@"
    else
        PYTHONPATH="$SOURCE" "${GATE_PYTHON:-/usr/bin/python3}" \
            -c 'import sys; from gate.cli import main; sys.exit(main())' "$@"
    fi
}

# render_config OUT: the config this run leaves: the existing one (or the skeleton on a first
# install) with the keys of the flags given set by `gate config set` (only those lines change,
# comments are kept; the result must be a valid config).
render_config() {
    local out=$1 existing
    existing=$(p "$CONFIG")
    if [ -f "$existing" ]; then cp "$existing" "$out"; else skeleton_config >"$out"; fi
    local updates=()
    if [ -n "$PROVINCE" ]; then updates+=(site.province "$(yaml_str "$PROVINCE")"); fi
    if [ -n "$VENUE" ]; then updates+=(site.venue_id "$(yaml_str "$VENUE")"); fi
    if [ -n "$GATE_ID" ]; then updates+=(site.gate_id "$(yaml_str "$GATE_ID")"); fi
    if [ -n "$DEVICE_ID" ]; then updates+=(site.device_id "$(yaml_str "$DEVICE_ID")"); fi
    if [ -n "$BROKER" ]; then
        updates+=(mqtt.host "$(yaml_str "$BROKER_HOST")" mqtt.port "${BROKER_PORT:-null}")
        if [ "$PLAIN" -eq 1 ]; then
            updates+=(mqtt.transport '"plain"' mqtt.ca_file null mqtt.cert_file null mqtt.key_file null)
        else
            updates+=(mqtt.transport '"tls"')
        fi
    fi
    if [ -n "$CA" ]; then updates+=(mqtt.ca_file "$(yaml_str "$CA_DEST")"); fi
    if [ -n "$CERT" ]; then
        updates+=(mqtt.cert_file "$(yaml_str "$CERT_DEST")" mqtt.key_file "$(yaml_str "$KEY_DEST")")
    fi
    if [ -n "$MQTT_USER" ]; then updates+=(mqtt.username "$(yaml_str "$MQTT_USER")"); fi
    if [ -n "$PASSWORD_FILE" ]; then updates+=(mqtt.password_file "$(yaml_str "$PASSWORD_DEST")"); fi
    [ "${#updates[@]}" -gt 0 ] || return 0
    if ! gate_tool --version >/dev/null 2>&1; then
        [ "$DRY_RUN" -eq 1 ] || die "no gate command to edit gate.yaml with (release $NEW_RELEASE has no venv; set GATE_PYTHON to a Python with the gate's dependencies)"
        note "dry run: the keys the flags set are written once the release is built"
        return 0
    fi
    if ! gate_tool config set "$out" "${updates[@]}" >/dev/null 2>"$TMP/set.err"; then
        die "cannot update $existing: $(sed "s|$out|$existing|g" "$TMP/set.err") Nothing was changed: \
edit that key by hand, or move the file away to have it written afresh."
    fi
}

# say_device_id CONFIG: the id the daemon will use (printed by the gate itself, to be
# registered with the province).
say_device_id() {
    local id
    if id=$(gate_tool device-id --config "$1" --machine-id "$(p /etc/machine-id)" 2>"$TMP/id.err"); then
        say "device id: $id (CPU serial, else machine id; resolved by the daemon at each start)"
    elif [ -n "$R" ] || [ "$DRY_RUN" -eq 1 ]; then
        note "device id not known here ($(head -n 1 "$TMP/id.err")): the target must have a CPU serial or /etc/machine-id, or give --device-id"
    else
        die "no CPU serial and no /etc/machine-id: give --device-id; nothing was switched"
    fi
}

# check_config RELEASE FILE: the release's own `gate config check` on FILE (when it has a venv).
check_config() {
    local gate_bin
    gate_bin="$(p "$OPT/releases/$1")/venv/bin/gate"
    if [ ! -x "$gate_bin" ]; then
        if [ "$DRY_RUN" -eq 1 ] && [ "$BUILT" -eq 1 ]; then
            say "would: check the config with release $1's gate config check"
        else
            note "config not checked: release $1 has no venv (--skip-packages)"
        fi
        return 0
    fi
    local output status=0
    output=$("$gate_bin" config check "$2" 2>&1) || status=$?
    if [ "$status" -ne 0 ]; then
        printf '%s\n' "$output" >&2
        die "release $1 refuses the config above (as $(p "$CONFIG")): nothing was switched or written"
    fi
    say "config check (release $1): $(printf '%s' "$output" | sed -n 2p | sed 's/^ *//')"
}

# ----- the service -------------------------------------------------------------------------

ensure_enabled() {
    if systemd_live; then
        systemctl is-enabled --quiet gate 2>/dev/null || change "systemctl enable gate" systemctl enable --quiet gate
        return 0
    fi
    system_dir "$(p "$WANTS_DIR")"
    switch_link "$(p "$WANTS_DIR")/gate.service" "$UNIT"
}

# run_service RELEASE RESTART UNIT_CHANGED
run_service() {
    local release=$1 restart=$2 unit_changed=$3
    if [ -n "$R" ]; then
        note "staging root: systemctl not run (enabled by the symlink in $WANTS_DIR)"
        return 0
    fi
    if ! systemd_live; then
        note "systemd is not running here (container or chroot): gate enabled by symlink, not started"
        return 0
    fi
    if [ "$unit_changed" -eq 1 ]; then change "systemctl daemon-reload" systemctl daemon-reload; fi
    if ! has_venv "$release" && [ "$DRY_RUN" -eq 0 ]; then
        note "gate not started: release $release has no venv (--skip-packages)"
        return 0
    fi
    if systemctl is-active --quiet gate; then
        if [ "$restart" -eq 1 ]; then
            change "systemctl restart gate" start_service restart
        fi
    else
        change "systemctl start gate" start_service start
    fi
}
start_service() {
    systemctl "$1" gate ||
        die "installed, but gate did not start: journalctl -u gate -b -n 50 tells why (and gate selftest)"
    say "gate is $(systemctl is-active gate)"
}

# ----- modes -------------------------------------------------------------------------------

ensure_stable_links() {
    switch_link "$(p "$OPT")/venv" current/venv
    switch_link "$(p "$OPT")/app" current/app
    system_dir "$(p /usr/local/bin)"
    switch_link "$(p "$BIN_LINK")" "$OPT/venv/bin/gate"
}

do_install() {
    local first=0
    if [ ! -f "$(p "$CONFIG")" ]; then
        first=1
        local missing=() flag
        for flag in venue gate province broker; do
            case $flag in
            venue) [ -n "$VENUE" ] || missing+=(--venue) ;;
            gate) [ -n "$GATE_ID" ] || missing+=(--gate) ;;
            province) [ -n "$PROVINCE" ] || missing+=(--province) ;;
            broker) [ -n "$BROKER" ] || missing+=(--broker) ;;
            esac
        done
        if [ "${#missing[@]}" -gt 0 ]; then
            usage_error "first install (no $(p "$CONFIG")): missing ${missing[*]}"
        fi
    fi
    say "gate install: source $SOURCE${R:+, root $R}$([ "$DRY_RUN" -eq 1 ] && echo ', dry run')"
    ensure_packages
    ensure_accounts
    resolve_ids

    system_dir "$(p /opt)"
    ensure_dir "$(p "$OPT")" 0755 root:root
    ensure_dir "$(p "$OPT/releases")" 0755 root:root
    system_dir "$(p /etc)"
    ensure_dir "$(p "$ETC")" 0750 root:gate
    system_dir "$(p /var/lib)"
    ensure_dir "$(p "$VAR")" 0750 gate:gate
    system_dir "$(p /etc/systemd/system)"

    local hash old_current old_previous
    hash=$(source_hash)
    old_current=$(link_name current)
    old_previous=$(link_name previous)
    choose_release "$hash"
    if [ "$BUILT" -eq 1 ]; then build_release "$NEW_RELEASE" "$hash"; fi

    # The config this run leaves, checked by the release that will run it, before any switch.
    render_config "$TMP/gate.yaml"
    if [ -z "$DEVICE_ID" ] && [ "$first" -eq 1 ]; then say_device_id "$TMP/gate.yaml"; fi
    check_config "$NEW_RELEASE" "$TMP/gate.yaml"
    if [ "$DRY_RUN" -eq 1 ] && [ "$first" -eq 1 ]; then
        say "the gate.yaml it would write:"
        sed 's/^/    /' "$TMP/gate.yaml"
    fi

    local restart=0
    if [ -n "$CA" ]; then
        install_file "$CA" "$(p "$CA_DEST")" 0640 root:gate && restart=$((restart | FILE_CHANGED))
    fi
    if [ -n "$CERT" ]; then
        install_file "$CERT" "$(p "$CERT_DEST")" 0640 root:gate && restart=$((restart | FILE_CHANGED))
        install_file "$KEY" "$(p "$KEY_DEST")" 0600 gate:gate && restart=$((restart | FILE_CHANGED))
    fi
    if [ -n "$PASSWORD_FILE" ]; then
        install_file "$PASSWORD_FILE" "$(p "$PASSWORD_DEST")" 0600 gate:gate &&
            restart=$((restart | FILE_CHANGED))
    fi
    if [ "$PLAIN" -eq 1 ]; then # the config no longer names them: no key left behind
        local tls_file
        for tls_file in "$KEY_DEST" "$CERT_DEST" "$CA_DEST"; do
            remove_path "$(p "$tls_file")" "$(p "$tls_file") (--plain: no TLS)"
        done
    fi
    # Secrets installed by an earlier run keep their modes too.
    if [ -z "$KEY" ] && [ -f "$(p "$KEY_DEST")" ]; then fix_meta "$(p "$KEY_DEST")" 0600 gate:gate; fi
    if [ -z "$PASSWORD_FILE" ] && [ -f "$(p "$PASSWORD_DEST")" ]; then
        fix_meta "$(p "$PASSWORD_DEST")" 0600 gate:gate
    fi

    local config
    config=$(p "$CONFIG")
    if [ -f "$config" ] && ! cmp -s "$TMP/gate.yaml" "$config"; then
        say "gate.yaml: the flags change these keys (other lines kept):"
        diff -u --label "$config" --label "$config (new)" "$config" "$TMP/gate.yaml" | sed 's/^/    /' || true
        install_file "$config" "$config.bak" 0640 root:gate
    fi
    install_file "$TMP/gate.yaml" "$config" 0640 root:gate && restart=$((restart | FILE_CHANGED))
    install_file "$SOURCE/config/gate.example.yaml" "$(p "$ETC/gate.example.yaml")" 0644 root:root

    install_file "$SOURCE/systemd/gate.service" "$(p "$UNIT")" 0644 root:root
    local unit_changed=$FILE_CHANGED
    restart=$((restart | unit_changed))

    if [ "$NEW_RELEASE" != "$old_current" ]; then
        restart=1
        if [ -n "$old_current" ]; then
            switch_link "$(p "$OPT")/previous" "releases/$old_current"
            old_previous=$old_current
        fi
        switch_link "$(p "$OPT")/current" "releases/$NEW_RELEASE"
    fi
    ensure_stable_links
    if [ -n "$(pinned_release)" ] && [ "$UPGRADE" -eq 1 ]; then
        remove_path "$(p "$PINNED")" "the rollback pin $(p "$PINNED") (--upgrade)"
    fi
    prune_releases "$NEW_RELEASE" "$old_previous"

    ensure_enabled
    run_service "$NEW_RELEASE" "$restart" "$unit_changed"
}

do_rollback() {
    local current previous
    current=$(link_name current)
    previous=$(link_name previous)
    complete_release "$current" || die "no current release in $(p "$OPT"): nothing to roll back"
    complete_release "$previous" ||
        die "no previous release to roll back to (release $current is the only one kept)"
    say "gate rollback: release $current -> $previous${R:+ (root $R)}"
    resolve_ids
    check_config "$previous" "$(p "$CONFIG")"
    switch_link "$(p "$OPT")/previous" "releases/$current"
    switch_link "$(p "$OPT")/current" "releases/$previous"
    change "pin release $previous ($(p "$PINNED")): installs keep it until --upgrade" \
        write_line "$(p "$PINNED")" "$previous"
    ensure_stable_links
    local app
    app="$(p "$OPT/releases/$previous")/app"
    install_file "$app/config/gate.example.yaml" "$(p "$ETC/gate.example.yaml")" 0644 root:root
    install_file "$app/systemd/gate.service" "$(p "$UNIT")" 0644 root:root
    local unit_changed=$FILE_CHANGED
    ensure_enabled
    run_service "$previous" 1 "$unit_changed"
}

# confirm_purge: unsent check-ins are deleted only when the person says so (or gave --yes).
confirm_purge() {
    local outbox
    outbox="$(p "$VAR")/outbox.sqlite3"
    if [ "$PURGE" -eq 0 ] || [ ! -f "$outbox" ] || [ "$YES" -eq 1 ] || [ "$DRY_RUN" -eq 1 ]; then
        return 0
    fi
    if [ ! -t 0 ]; then
        die "--purge would delete $outbox with the check-ins not yet sent to the broker: export them first (gate queue --db $outbox --export FILE), then add --yes; nothing was changed"
    fi
    local answer=""
    printf '%s' "--purge deletes $outbox: check-ins not yet sent to the broker are lost (export them first: gate queue --db $outbox --export FILE). Type yes to delete: " >&2
    read -r answer || answer=""
    [ "$answer" = yes ] || die "not confirmed: nothing was changed"
}

do_uninstall() {
    confirm_purge
    say "gate uninstall$([ "$PURGE" -eq 1 ] && echo ' --purge')${R:+ (root $R)}"
    if systemd_live; then
        if systemctl is-enabled --quiet gate 2>/dev/null || systemctl is-active --quiet gate; then
            change "systemctl disable --now gate" systemctl disable --now --quiet gate
        fi
    fi
    remove_path "$(p "$WANTS_DIR")/gate.service"
    local unit_present=0
    if [ -e "$(p "$UNIT")" ]; then unit_present=1; fi
    remove_path "$(p "$UNIT")"
    if [ "$unit_present" -eq 1 ] && systemd_live; then
        change "systemctl daemon-reload" systemctl daemon-reload
    fi
    local link
    link=$(p "$BIN_LINK")
    if [ -L "$link" ] && [[ "$(readlink "$link")" == "$OPT"/* ]]; then remove_path "$link"; fi
    remove_path "$(p "$OPT")"
    if [ "$PURGE" -eq 1 ]; then
        if [ -f "$(p "$VAR")/outbox.sqlite3" ]; then
            warn "--purge deletes the outbox: check-ins not yet sent to the broker are lost"
        fi
        remove_path "$(p "$ETC")"
        remove_path "$(p "$VAR")"
        remove_accounts
    else
        note "kept $(p "$ETC") (config, secrets) and $(p "$VAR") (outbox: unsent check-ins) and the gate user; --uninstall --purge removes them"
    fi
}

# take_lock: one run at a time per system, or per --root (the staging root's folder itself is
# locked, so nothing is written there). A second run waits for the first.
take_lock() {
    [ "$DRY_RUN" -eq 0 ] || return 0
    command -v flock >/dev/null || die "flock not found (apt install util-linux)"
    if [ -n "$R" ]; then exec 9<"$R"; else exec 9>/run/gate-install.lock; fi
    local wait_s=${GATE_INSTALL_LOCK_WAIT_S:-600}
    if ! flock -n 9; then
        say "waiting up to ${wait_s} s for another install.sh on ${R:-this system} to finish"
        flock -w "$wait_s" 9 || die "another install.sh on ${R:-this system} is still running"
    fi
}

main() {
    parse_flags "$@"
    validate_flags
    if [ "$IS_ROOT" -eq 0 ] && [ -z "$R" ] && [ "$DRY_RUN" -eq 0 ]; then
        die "run as root (sudo $0 ...), or with --dry-run to see what would be done"
    fi
    TMP=$(mktemp -d)
    if [ "$IS_ROOT" -eq 0 ] && [ "$DRY_RUN" -eq 0 ]; then
        note "not running as root: file owners are left as they are"
    fi
    take_lock
    if [ "$MODE" = install ]; then
        check_userland
        open_bundle
        check_packages
    fi
    case "$MODE" in
    install) do_install ;;
    rollback) do_rollback ;;
    uninstall) do_uninstall ;;
    esac
    if [ "$CHANGES" -eq 0 ]; then
        say "nothing to change: already as asked"
    elif [ "$DRY_RUN" -eq 1 ]; then
        say "dry run: $CHANGES action(s) above would be done; nothing was changed"
    else
        say "done: $CHANGES change(s)"
    fi
}

main "$@"
