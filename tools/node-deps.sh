#!/usr/bin/env bash
# node-deps.sh - installs the npm packages of the browser tests (playwright-core, pinned in
# tools/node/package.json) into tools/node/node_modules when missing, and prints that folder.
# Playwright's own browser downloads are never used: the tests drive Debian's /usr/bin/chromium.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/node"
want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' "$dir/package.json")
have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/playwright-core/package.json" 2>/dev/null | head -1 || true)
if [ "$have" != "$want" ]; then
    command -v npm >/dev/null || { echo "node-deps: npm is missing (tools/deps.sh check installs it)" >&2; exit 1; }
    echo "node-deps: installing playwright-core $want into $dir" >&2
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error >&2
fi
echo "$dir/node_modules"
