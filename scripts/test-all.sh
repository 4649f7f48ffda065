#!/usr/bin/env bash
# The full test suite on a fresh Debian machine with Node >= 20.19.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund
npm run lint
npm test
