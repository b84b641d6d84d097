#!/usr/bin/env bash
# Installs everything edgekd needs on a fresh Debian 12 / Python 3.11 machine, idempotently:
#   - Debian packages (the Fashion-MNIST data set; qemu-user and gcc for emulated ARM; with --dev, chromium for
#     the report tests), when missing
#   - a virtual environment in .venv with edgekd and its dependencies (+ test tools with --dev)
#   - the emulated aarch64 environment under ~/.cache/edgekd/arm (edgekd emu setup)
# A second run with nothing changed does nothing.
set -euo pipefail
cd "$(dirname "$0")"

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    *) echo "setup.sh: unknown option $arg (use --dev for the test tools)" >&2; exit 2 ;;
  esac
done

APT_PACKAGES=(dataset-fashion-mnist qemu-user gcc libc6-dev xz-utils)
# --dev: Debian's chromium, the real headless browser the tests open report.html in (console errors, screenshot),
# and openssh-server, the real sshd the board-measurement tests start on 127.0.0.1 (never as a system service)
if [ "$DEV" -eq 1 ]; then APT_PACKAGES+=(chromium openssh-server); fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi

extras=""
[ "$DEV" -eq 1 ] && extras="[dev]"
stamp=".venv/.edgekd-setup-$(cat pyproject.toml setup.sh | sha256sum | cut -c1-16)${extras:+-dev}"
# the --no-deps packages below: a stamp is stale when one has gone since (e.g. a pip uninstall); find_spec
# locates them without importing any
if [ -f "$stamp" ] && ! .venv/bin/python -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ('onnx2tf', 'tf_keras', 'aeon')))"; then
  rm -f "$stamp"
fi
if [ ! -f "$stamp" ]; then
  echo "setup: installing edgekd${extras} into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
  # onnx2tf (TFLite export route) pins numpy 1.26, TF 2.19, onnx 1.19, protobuf 4: install it without its
  # dependencies, and tf-keras too (it requires the `tensorflow` distribution; we have tensorflow-cpu). What
  # onnx2tf really imports is in pyproject's dependencies. `pip check` lists their pins as unmet: expected.
  # aeon: only for the data files its wheel ships (BasicMotions, the basic-motions data spec); edgekd never
  # imports it (it would pull numba, pandas, ...), so none of its dependencies are installed.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "onnx2tf==1.29.24" "tf-keras==2.21.*" \
    "aeon==1.6.*"
  rm -f .venv/.edgekd-setup-*
  touch "$stamp"
  # a --dev stamp also satisfies a plain run
  [ "$DEV" -eq 1 ] && touch "${stamp%-dev}"
fi
# the aarch64 userland, wheels and QEMU plugin for ARM targets (a no-op when already built for these versions)
.venv/bin/edgekd emu setup
echo "setup: ready (.venv/bin/edgekd)"
