#!/usr/bin/env bash
# Sourced by scripts/demo and scripts/test: installs what a fresh Debian 12 / Raspberry Pi OS
# machine lacks (apt packages, the .venv with the project) and does nothing when all is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# What the demo needs; the tests need more: shellcheck and systemd (systemd-analyze) for the
# installer's and the unit's tests, python3-numpy and python3-pil for the Pi-environment leg
# (Debian's, as on a Pi), git, mmdebstrap, arch-test (which mmdebstrap only recommends, but
# needs to build a foreign root filesystem), qemu-user-static and binfmt-support for the arm64
# leg (scripts/pi-check).
DEMO_PACKAGES=(python3-venv python3-pip libzbar0 mosquitto mosquitto-clients openssl)
TEST_PACKAGES=("${DEMO_PACKAGES[@]}" systemd shellcheck python3-numpy python3-pil git
    mmdebstrap arch-test qemu-user-static binfmt-support)
APT_PACKAGES=()

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages() {
    local package
    for package in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || echo "$package"
    done
}

bootstrap() { # demo|test: the packages of the one or of the other
    if [ "$1" = demo ]; then APT_PACKAGES=("${DEMO_PACKAGES[@]}"); else APT_PACKAGES=("${TEST_PACKAGES[@]}"); fi
    local missing
    missing="$(missing_packages)"
    if [ -n "$missing" ]; then
        echo "bootstrap: installing apt packages: $(echo "$missing" | tr '\n' ' ')" >&2
        as_root apt-get update -qq
        # shellcheck disable=SC2086 # one package per word
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo "bootstrap: creating $VENV" >&2
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.installed"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        echo "bootstrap: installing the gate package and its test tools into $VENV" >&2
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e "${ROOT}[test]"
        touch "$stamp"
    fi
}
