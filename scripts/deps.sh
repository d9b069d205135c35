#!/usr/bin/env bash
# Installs the real servers slogate's tests run against (Debian packages),
# and the browser its UI tests drive, when they are missing. As root it
# installs them; otherwise it prints the line to run, and under CI=true it
# fails (tests never skip in CI).
#
#   scripts/deps.sh              everything make test needs
#   scripts/deps.sh prometheus   only Prometheus (make run's demo)
set -euo pipefail

only="${1:-}"
missing=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "$only" != "prometheus" ]; then
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  # The web UI's tests drive Debian's chromium (headless, over the DevTools
  # protocol with chromedp); nothing is downloaded at test time.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # slogate deploy reads the commits a deploy ships from git (DORA lead
  # time); its tests run the real git.
  command -v git >/dev/null 2>&1 || missing+=(git)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${missing[*]} (Debian packages the tests run for real)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the services it installs; the tests start their own
  # instances on free ports, so the system ones are stopped.
  for svc in prometheus prometheus-alertmanager prometheus-node-exporter postgresql; do
    if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
  echo "deps: installed"
  exit 0
fi

echo "deps: missing ${missing[*]}; as root run: $line" >&2
if [ "${CI:-}" = "true" ]; then
  echo "deps: CI=true: tests that need these servers would fail" >&2
  exit 1
fi
echo "deps: the tests that need them will be skipped" >&2
