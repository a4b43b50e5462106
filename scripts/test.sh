#!/usr/bin/env bash
# All tests: shellcheck, strict type check and unit tests (mocks, golden files, host scripts with stubs), then the
# end-to-end suite: the real Pulumi engine (scripts/engine.sh) against the local lab.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$REPO"
# Every stack the tests create is a lab stack (e2e-*): the lab passphrase, for the suite and the commands it runs.
use_lab_passphrase
phase_start "npm packages"; ensure_debs openssl:openssl curl:curl git:git ssh-keygen:openssh-client; ensure_node_modules; phase_end
phase_start "shellcheck"; ensure_debs shellcheck:shellcheck
(cd host && shellcheck -x -S warning ./*.sh) && shellcheck -x -S warning scripts/*.sh tools/*.sh bench/*.sh tests/e2e/*.sh lab/lab.sh .ci/run
phase_end
# The engine before the unit tests: the package's test runs `npm run pack`, which generates the SDKs with `pulumi`.
phase_start "Pulumi engine"; scripts/engine.sh; phase_end
phase_start "unit tests"; npm test; phase_end
if [ "${SKIP_E2E:-0}" = 1 ]; then echo "SKIP_E2E=1: end-to-end suite skipped"; exit 0; fi
# The lab is brought down again at the end unless it was already running (or LAB_KEEP=1).
if [ "${LAB_KEEP:-0}" != 1 ] && ! ip link show labbr0 >/dev/null 2>&1; then trap 'lab/lab.sh down' EXIT; fi
phase_start "lab up"; lab/lab.sh up; phase_end
phase_start "end-to-end suite"; npx mocha --config tests/e2e/mocharc.json "$@"; phase_end
