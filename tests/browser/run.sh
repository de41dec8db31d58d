#!/usr/bin/env bash
# The browser tests in one command: builds the daemon, installs playwright-core from
# the lock file when missing, and runs the Node tests against Debian's Chromium: the
# wallboard (wallboard.test.js), then the inspector pages (inspector.test.js). Both run
# even when the first fails; the script fails when either does. Fails when node, npm or
# /usr/bin/chromium is missing (install: apt-get install -y nodejs npm chromium
# fonts-noto-cjk). No browser is downloaded. Screenshots: target/browser-artifacts/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

command -v node >/dev/null 2>&1 || { echo "browser test: node is missing (apt-get install -y nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "browser test: npm is missing (apt-get install -y npm)" >&2; exit 1; }
chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "browser test: $chromium is missing (apt-get install -y chromium)" >&2; exit 1; }
fc-list 2>/dev/null | grep -qi "cjk" || echo "browser test: warning: no CJK font (apt-get install -y fonts-noto-cjk); Chinese shows as boxes in screenshots" >&2

if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
(cd "$root" && cargo build --locked --bin callwatch)
mkdir -p "$root/target/browser-artifacts"
cd "$here"
export CALLWATCH_BIN="${CALLWATCH_BIN:-$root/target/debug/callwatch}" CHROMIUM="$chromium"
failed=()
for t in wallboard.test.js inspector.test.js; do
  node --test --test-reporter=spec "$t" || failed+=("$t")
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "browser test: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "browser test: all passed (screenshots in $root/target/browser-artifacts/)"
