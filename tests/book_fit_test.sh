#!/usr/bin/env bash
# tests/book_fit_test.sh -- every page of the built HTML book fits a window of WIDTH
# pixels (default 1280): neither the page nor any table is wider than the window, and no
# table has to be scrolled sideways in its box.  Measured in headless Chromium.
#
# Usage: tests/book_fit_test.sh [REPO_ROOT] [WIDTH]
# The book must be built first (`make book`).  Chromium is found as $CHROMIUM, chromium,
# chromium-browser, google-chrome or google-chrome-stable; without one, or where it does
# not run, the test exits 77 (skipped; `make test` installs Debian's chromium where it can).
#
# Each page is copied with a small script added that measures the page after it has
# loaded and writes what overflows into the DOM, which Chromium prints (--dump-dom).
# Before the book, a page with a table known to be too wide must be reported: a
# measurement that cannot fail is no test.
set -u
root=${1:-.}
width=${2:-1280}
cd "$root" || { echo "FAIL cannot cd to $root"; exit 1; }
html=book/html

browser=
for b in ${CHROMIUM:-} chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "SKIP no Chromium found (apt-get install chromium, or set CHROMIUM): HTML fit not measured"
  exit 77
fi
[ -s "$html/index.html" ] || { echo "FAIL $html/index.html missing: build the book first"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a copy of the site, so that the measured pages find the style sheet and the figures
cp -r "$html" "$tmp/html"

cat > "$tmp/measure.js" <<'EOF'
<script>
window.addEventListener('load', function () {
  var out = [], de = document.documentElement, w = de.clientWidth;
  if (de.scrollWidth > w) out.push('the page is ' + de.scrollWidth + ' px wide');
  document.querySelectorAll('table').forEach(function (t, i) {
    var cap = t.querySelector('caption');
    var name = '"' + (cap ? cap.textContent : 'table ' + (i + 1)).replace(/\s+/g, ' ').slice(0, 70) + '"';
    var r = t.getBoundingClientRect(), box = t.parentElement;
    if (r.left < 0 || r.right > w) out.push('table ' + name + ' spans ' + Math.round(r.left) + ' to ' + Math.round(r.right) + ' px');
    else if (box.scrollWidth > box.clientWidth + 1) out.push('table ' + name + ' scrolls sideways: ' + box.scrollWidth + ' px in ' + box.clientWidth);
  });
  var p = document.createElement('pre');
  p.id = 'fit-report';
  p.textContent = 'FIT-REPORT ' + document.querySelectorAll('table').length + ' tables\n' + out.join('\n') + '\nFIT-END';
  document.body.appendChild(p);
});
</script>
EOF

# measure PAGE: prints the report's lines (the first one "FIT-REPORT N tables")
measure() {
  local page=$1 probe="$tmp/html/.fit-$(basename "$1")"
  awk -v js="$tmp/measure.js" '/<\/body>/ { while ((getline l < js) > 0) print l } { print }' "$page" > "$probe"
  timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$tmp/profile" --hide-scrollbars --window-size="$width,900" \
    --virtual-time-budget=5000 --dump-dom "file://$probe" 2>"$tmp/stderr" \
    | sed -n '/<pre id="fit-report">/,/<\/pre>/p' | sed -e 's/<[^>]*>//g' \
    | sed -e 's/&gt;/>/g; s/&lt;/</g; s/&quot;/"/g; s/&amp;/\&/g' | grep -v '^FIT-END'
}

pass=0
failed=0

# the measurement itself: a table of 60 wide columns must be reported
{
  echo '<!DOCTYPE html><html><head><link rel="stylesheet" href="style.css"></head><body><main>'
  echo '<div class="results"><div class="results-table"><table><caption>too wide</caption><tr>'
  for i in $(seq 60); do echo "<td>12345.6</td>"; done
  echo '</tr></table></div></div></main></body></html>'
} > "$tmp/html/too-wide.html"
report=$(measure "$tmp/html/too-wide.html")
if [ -z "$report" ]; then
  echo "SKIP $browser did not run here: HTML fit not measured. Its last words:"
  tail -5 "$tmp/stderr" | sed 's/^/     /'
  exit 77
elif printf '%s\n' "$report" | grep -q '^table "too wide"'; then
  echo "ok   $browser reports a table too wide for $width px"; pass=$((pass + 1))
else
  echo "FAIL $browser does not report a table too wide for $width px: the measurement does not work"
  printf '%s\n' "$report" | sed 's/^/     /'
  exit 1
fi

for p in "$html"/*.html; do
  report=$(measure "$tmp/html/$(basename "$p")")
  head=$(printf '%s\n' "$report" | head -1)
  case $head in
    FIT-REPORT*) ;;
    *) echo "FAIL $p: no measurement came back from $browser"; failed=$((failed + 1)); continue ;;
  esac
  problems=$(printf '%s\n' "$report" | tail -n +2 | grep -c .)
  if [ "$problems" -eq 0 ]; then
    echo "ok   $p fits $width px (${head#FIT-REPORT })"; pass=$((pass + 1))
  else
    echo "FAIL $p does not fit $width px:"; failed=$((failed + 1))
    printf '%s\n' "$report" | tail -n +2 | grep . | sed 's/^/     /'
  fi
done

echo "$pass passed, $failed failed"
[ $failed -eq 0 ]
