#!/usr/bin/env bash
# Opens a reproduction report in headless Chromium: every <img> must have decoded (naturalWidth > 0),
# and a screenshot of the top of the page is written beside it.
#   bash scripts/check_report.sh [runs/quick/report/index.html]
# Installs Debian's chromium first when it is missing (needs root and the Debian mirror).
set -euo pipefail
report="$(realpath "${1:-runs/quick/report/index.html}")"
[ -f "$report" ] || { echo "check_report: $report: no such report (run genae reproduce first)" >&2; exit 2; }
if ! command -v chromium >/dev/null; then
  echo "check_report: installing Debian's chromium" >&2
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$(mktemp -d)")
# A copy of the page with a probe that counts the images the browser decoded.
probe="$(mktemp --suffix=.html)"
sed 's#</body>#<script>addEventListener("load", () => { const i = [...document.images]; document.body.setAttribute("data-decoded", i.filter(x => x.complete \&\& x.naturalWidth > 0).length + "/" + i.length); });</script></body>#' \
  "$report" > "$probe"
decoded="$(chromium "${flags[@]}" --virtual-time-budget=20000 --dump-dom "file://$probe" 2>/dev/null \
           | grep -o 'data-decoded="[0-9]*/[0-9]*"' | grep -o '[0-9]*/[0-9]*' || true)"
rm -f "$probe"
shot="$(dirname "$report")/screenshot.png"
chromium "${flags[@]}" --window-size=1300,2400 --screenshot="$shot" "file://$report" >/dev/null 2>&1
echo "images decoded by Chromium: ${decoded:-none}; screenshot: $shot"
[ -n "$decoded" ] && [ "${decoded%/*}" = "${decoded#*/}" ] && [ "${decoded#*/}" != 0 ]
