#!/usr/bin/env bash
# tests/book_test.sh -- checks of a built book (HTML site and PDF).
#
# Usage: tests/book_test.sh [REPO_ROOT]        (default: the current directory)
# The book must be built first (`make book`, or `make book-test` does both).
# Checks: pages, titles, figures (SVG, and a y axis at most twice the largest
# value drawn), results tables (woven, no row without a number), no leftovers,
# internal links, offline; the PDF's chapters and titles, and nothing past its
# right margin.  How the HTML fits a window: tests/book_fit_test.sh.
# Prints one "ok"/"FAIL" line per check, then "N passed, M failed"; exits 1
# if any check failed.  The PDF text checks need pdftotext (poppler-utils,
# which `make test` installs where it can) and are skipped without it.
set -u
root=${1:-.}
cd "$root" || { echo "FAIL cannot cd to $root"; exit 1; }

html=book/html
pdf=book/book.pdf
pass=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok()   { echo "ok   $*"; pass=$((pass + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

# squeeze text to lowercase letters and digits, for loose title matching
squash() { tr '[:upper:]' '[:lower:]' | tr -cd '[:alnum:]'; }
# an HTML page as text: tags removed, common entities decoded
page_text() { sed -e 's/<[^>]*>//g' -e 's/&amp;/\&/g; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&#39;/'"'"'/g' "$1"; }
# title of a chapter: its first "# " heading, without attributes or markup
chapter_title() { sed -n 's/^#[[:space:]]\{1,\}//p' "$1" | head -1 | sed 's/[[:space:]]*{[^}]*}[[:space:]]*$//'; }

shopt -s nullglob
chapters=(chapters/*.md)
shopt -u nullglob
[ ${#chapters[@]} -gt 0 ] || fail "no chapters/*.md found"

# ------------------------------------------------------------------ pages exist
check "contents page $html/index.html exists" test -s "$html/index.html"
check "stylesheet $html/style.css exists" test -s "$html/style.css"
pages=("$html/index.html")
for c in "${chapters[@]}"; do
  p="$html/$(basename "$c" .md).html"
  if [ -s "$p" ]; then ok "page $p exists"; pages+=("$p"); else fail "page $p missing"; fi
done

# ------------------------------------------------------------------ titles
for c in "${chapters[@]}"; do
  p="$html/$(basename "$c" .md).html"
  t=$(chapter_title "$c")
  [ -n "$t" ] || { fail "$c has no '# ' title"; continue; }
  want=$(printf '%s' "$t" | sed 's/[`*_]//g' | squash)
  [ -s "$p" ] && { page_text "$p" | squash | grep -qF "$want" && ok "title '$t' on $p" || fail "title '$t' not on $p"; }
  page_text "$html/index.html" 2>/dev/null | squash | grep -qF "$want" \
    && ok "title '$t' in contents" || fail "title '$t' not in contents"
done

# ------------------------------------------------------------------ figures
nfig=0
for p in "${pages[@]}"; do
  for src in $(grep -o '<img [^>]*src="[^"]*"' "$p" | sed 's/.*src="\([^"]*\)"/\1/' | sort -u); do
    case $src in http:*|https:*|data:*) fail "$p: remote or inline image $src"; continue ;; esac
    nfig=$((nfig + 1))
    f="$html/$src"
    if [ ! -s "$f" ]; then fail "$p: figure $src missing"
    elif head -c 2000 "$f" | grep -q '<svg'; then ok "$p: figure $src is SVG"
    else fail "$p: figure $src is not SVG"; fi
  done
done
[ $nfig -gt 0 ] || echo "     (no figures referenced)"

# ------------------------------------------------------------------ results tables
for c in "${chapters[@]}"; do
  p="$html/$(basename "$c" .md).html"
  [ -s "$p" ] || continue
  want=$(grep -cE '^:::+[[:space:]]*\{[^}]*\.results([[:space:]}]|$)' "$c")
  got=$(grep -c '<div class="results"' "$p")
  check "$p: $want results block(s) woven (found $got)" test "$want" -eq "$got"
  if [ "$want" -gt 0 ]; then
    tables=$(grep -c '<div class="results-table' "$p")
    nodata=$(grep -c 'class="note no-data"' "$p")
    check "$p: results blocks hold tables or a no-data note" test $((tables + nodata)) -ge "$want"
  fi
done

# ------------------------------------------------------------------ rows with a value
# In a table of numbers (its numbers are right-aligned), every row has a number: a row of
# dashes says nothing.  Rows are printed as the text of their first cell.
for p in "${pages[@]}"; do
  empty=$(awk '
    /<tbody>/ { body = 1 } /<\/tbody>/ { body = 0 }
    body && /<tr/ { label = ""; numeric = 0; valued = 0; cells = 0 }
    body && /<td/ {
      text = $0; gsub(/<[^>]*>/, "", text); gsub(/^[ \t]+|[ \t]+$/, "", text)
      if (cells++ == 0) label = text
      if (/text-align: right/) { numeric++; if (text != "" && text != "–") valued++ }
    }
    body && /<\/tr>/ && numeric > 0 && valued == 0 { printf "%s; ", label }' "$p")
  check "$p: every row of a table of numbers has a number${empty:+ (not: $empty)}" test -z "$empty"
done

# ------------------------------------------------------------------ figure scales
# bandwidth.gp ends each SVG with the y axis and the largest point and ceiling drawn:
# an axis more than twice as high as anything drawn squeezes the curves to its foot.
# A placeholder says why it has no data: no CSV yet is fine, a CSV of which nothing is
# drawn is a figure declared wrong (versions, dtype or shapes that match no row).  A
# figure of shapes names the shapes where nothing is drawn: a shape the chapter no
# longer measures (its FIG_<stem>_SHAPES behind the chapter's sizes).
for f in "$html"/figures/*.svg; do
  if grep -q '<!-- diagram -->' "$f"; then ok "$f: a diagram (no data)"; continue; fi
  case $(grep -o '<!-- no data: [^>]*-->' "$f" | tail -1) in
    '') ;;
    *'no CSV'*) ok "$f: no data yet (placeholder)"; continue ;;
    *) fail "$f: a placeholder, but its CSV has data: nothing matched the figure's versions, dtype or shapes"; continue ;;
  esac
  empty=$(sed -n 's/.*<!-- shapes without a point: *\(.*[^ ]\) *-->.*/\1/p' "$f" | tail -1)
  [ -z "$empty" ] || fail "$f: nothing drawn at shape(s) $empty"
  line=$(grep -o '<!-- y axis: [^>]*-->' "$f" | tail -1)
  if [ -z "$line" ]; then fail "$f: no y-axis comment from figures/bandwidth.gp"; continue; fi
  case $line in *'y axis: log'*) ok "$f: logarithmic y axis"; continue ;; esac
  verdict=$(printf '%s\n' "$line" | awk '{
    gsub(/[;:]/, " "); for (i = 1; i <= NF; i++) { if ($i == "to") a = $(i+1); if ($i == "drawn") d = $(i+1); if ($i == "ceiling") c = $(i+1) }
    m = (d + 0 > c + 0) ? d + 0 : c + 0
    printf "%s %g %g", (m > 0 && a + 0 <= 2 * m) ? "ok" : "bad", a, m }')
  read -r v axis most <<< "$verdict"
  check "$f: y axis to $axis, at most twice the largest value drawn ($most)" test "$v" = ok
done

# ------------------------------------------------------------------ leftovers
for p in "${pages[@]}"; do
  # a <<name>> line left inside code (tags stripped) = an unwoven reference
  left=$(awk '/<pre/ { inpre = 1 } inpre { print } /<\/pre>/ { inpre = 0 }' "$p" \
    | sed -e 's/<[^>]*>//g' -e 's/&lt;/</g; s/&gt;/>/g' | grep -cE '^[[:space:]]*<<[^<>]+>>[[:space:]]*$')
  check "$p: no unresolved <<chunk>> lines in code ($left)" test "$left" -eq 0
  keys=$(grep -cE '<span class="r"|class="r-missing"' "$p")
  check "$p: no unresolved result keys ($keys)" test "$keys" -eq 0
  chunks=$(grep -cE '<code class="[^"]*">\{\.[a-z]+ (#|file=)' "$p")
  check "$p: no raw chunk attribute lines ($chunks)" test "$chunks" -eq 0
done

# ------------------------------------------------------------------ internal links
for p in "${pages[@]}"; do
  grep -o ' id="[^"]*"' "$p" | sed 's/ id="\(.*\)"/\1/' | sort -u > "$tmp/ids-$(basename "$p")"
done
for p in "${pages[@]}"; do
  bad=0
  : > "$tmp/bad"
  grep -o 'href="[^"]*"' "$p" | sed 's/href="\(.*\)"/\1/' | sort -u > "$tmp/links"
  while IFS= read -r l; do
    case $l in
      *://*|mailto:*|"") continue ;;
      \#*) target=$(basename "$p"); frag=${l#\#} ;;
      *\#*) target=${l%%#*}; frag=${l#*#} ;;
      *) target=$l; frag= ;;
    esac
    case $target in *.html) ;; *)
      # other local files (figures, style, pdf)
      [ -e "$html/$target" ] || { echo "$l" >> "$tmp/bad"; bad=$((bad + 1)); }
      continue ;;
    esac
    if [ ! -s "$html/$target" ]; then echo "$l" >> "$tmp/bad"; bad=$((bad + 1)); continue; fi
    [ -z "$frag" ] && continue
    grep -qxF "$frag" "$tmp/ids-$target" || { echo "$l" >> "$tmp/bad"; bad=$((bad + 1)); }
  done < "$tmp/links"
  if [ $bad -eq 0 ]; then ok "$p: all $(wc -l < "$tmp/links") internal links resolve"
  else fail "$p: $bad broken link(s): $(head -5 "$tmp/bad" | tr '\n' ' ')"; fi
done

# ------------------------------------------------------------------ offline
for p in "${pages[@]}"; do
  remote=$(grep -cE '<(script|link)[^>]+(src|href)="(https?:)?//' "$p")
  check "$p: no remote scripts or stylesheets ($remote)" test "$remote" -eq 0
done

# ------------------------------------------------------------------ PDF
if [ -s "$pdf" ] && [ "$(head -c 5 "$pdf")" = "%PDF-" ]; then
  ok "$pdf exists and is a PDF"
  if command -v pdftotext >/dev/null 2>&1; then
    pdftotext -layout "$pdf" "$tmp/book.txt" 2>/dev/null
    n=$(grep -cE '^[[:space:]]*Chapter [0-9]+[[:space:]]*$' "$tmp/book.txt")
    check "$pdf has ${#chapters[@]} chapters (found $n)" test "$n" -eq "${#chapters[@]}"
    squash < "$tmp/book.txt" > "$tmp/book.sq"
    for c in "${chapters[@]}"; do
      t=$(chapter_title "$c")
      want=$(printf '%s' "$t" | sed 's/[`*_]//g' | squash)
      grep -qF "$want" "$tmp/book.sq" && ok "title '$t' in $pdf" || fail "title '$t' not in $pdf"
    done
    # nothing runs into the right margin (a table too wide, a line that did not break):
    # no word ends more than 6 pt past the text block of book/metadata.yaml's geometry
    margin=$(sed -n 's/.*margin=\([0-9.]*\)cm.*/\1/p' book/metadata.yaml | head -1)
    pdftotext -bbox "$pdf" "$tmp/bbox.html" 2>/dev/null
    past=$(awk -v m="${margin:-2.5}" '
      /<page / { n++; match($0, /width="[0-9.]+"/); w = substr($0, RSTART + 7, RLENGTH - 8) + 0 }
      /<word / { match($0, /xMax="[0-9.]+"/); x = substr($0, RSTART + 6, RLENGTH - 7) + 0
        t = $0; sub(/.*">/, "", t); sub(/<\/word>.*/, "", t)
        if (x > w - m * 72 / 2.54 + 6) printf "p. %d \"%s\"; ", n, t }' "$tmp/bbox.html" | head -c 300)
    check "$pdf: nothing past the right margin${past:+ (not: $past)}" test -z "$past"
  else
    echo "     (pdftotext not installed: PDF chapter checks skipped)"
  fi
else
  fail "$pdf missing or not a PDF"
fi

echo "$pass passed, $failed failed"
[ $failed -eq 0 ]
