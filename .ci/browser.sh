#!/usr/bin/env bash
# Installs Debian's chromium for the /docs browser test (test/docs-browser.test.ts drives it with
# playwright-core; under CI=true that test fails when chromium is missing). Idempotent; run as root.
set -euo pipefail

if ! command -v chromium >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "chromium: $(chromium --version 2>/dev/null || echo missing)"
