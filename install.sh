#!/usr/bin/env bash
# Sets up a digital sentinel.
#
#   ./install.sh --dev      developer or CI machine (Debian/Ubuntu): apt packages, ./.venv, the
#                           project installed editable with its dev extras.
#   sudo ./install.sh       Raspberry Pi OS (Bookworm/Trixie): comes with the deployment issue;
#                           until then it says so and changes nothing.
#
# A second run checks what is there and changes nothing (a stamp in .venv records what was
# installed). A failure leaves no half-made venv behind.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.sentinel-install-stamp"
python="${PYTHON:-python3}"

# System packages the dev machine needs: zbar for the pyzbar decoder, a CJK font for the screens.
apt_packages=(libzbar0 fonts-noto-cjk)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

mode=""
skip_apt=0
for arg in "$@"; do
    case "$arg" in
        --dev) mode=dev ;;
        --skip-apt) skip_apt=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $arg" ;;
    esac
done

if [ -z "$mode" ]; then
    usage >&2
    die "the Raspberry Pi install is not written yet; for a developer or CI machine run: ./install.sh --dev"
fi

install_apt_packages() {
    [ "$skip_apt" = 1 ] && { say "skipping apt (--skip-apt): make sure ${apt_packages[*]} are installed"; return; }
    local missing=()
    if command -v dpkg-query >/dev/null 2>&1; then
        for p in "${apt_packages[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
        done
    else
        missing=("${apt_packages[@]}")
    fi
    [ ${#missing[@]} -eq 0 ] && { say "apt packages present: ${apt_packages[*]}"; return; }
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found, and these are missing: ${missing[*]}.
  Install them (or your distribution's equivalents: zbar, a Noto CJK font) by hand, then run: ./install.sh --dev --skip-apt"
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root to apt-get install ${missing[*]}; run as root or install sudo"
        sudo=(sudo)
    fi
    say "installing apt packages: ${missing[*]}"
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/sentinel-apt.log 2>&1; then
        say "apt-get install failed; refreshing the package lists and trying once more"
        "${sudo[@]}" apt-get update >>/tmp/sentinel-apt.log 2>&1 \
            && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/sentinel-apt.log 2>&1 \
            || die "could not install ${missing[*]} with apt-get (no network, or no such package?). See /tmp/sentinel-apt.log"
    fi
}

want_stamp() {
    # What the venv must match: the python, the dependency list and this script.
    { "$python" -c 'import sys; print(sys.version)'; cat "$here/pyproject.toml" "$here/install.sh"; } | sha256sum | cut -d' ' -f1
}

make_venv() {
    local want; want="$(want_stamp)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/sentinel" ]; then
        say "venv up to date: $venv"
        return
    fi
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is needed; $("$python" --version 2>&1) found (set PYTHON=/path/to/python3.11)"
    local fresh=0
    if [ ! -x "$venv/bin/python" ]; then
        fresh=1
        "$python" -m venv "$venv" || { rm -rf "$venv"; die "could not create a venv (on Debian: apt-get install python3-venv)"; }
    fi
    say "installing the project and its dev extras into $venv (pip log: /tmp/sentinel-pip.log)"
    if ! { "$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip \
           && "$venv/bin/python" -m pip install --disable-pip-version-check -e "$here[dev]"; } >/tmp/sentinel-pip.log 2>&1; then
        tail -n 5 /tmp/sentinel-pip.log >&2 || true
        [ "$fresh" = 1 ] && rm -rf "$venv"
        rm -f "$stamp"
        die "pip could not install the project (no network to the package index?). Nothing half-made is left: fix and run ./install.sh --dev again"
    fi
    echo "$want" >"$stamp"
    say "ready: $venv/bin/sentinel"
}

install_apt_packages
make_venv
