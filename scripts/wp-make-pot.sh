#!/usr/bin/env bash
# Regenerate wp-plugin/languages/kyc-bridge.pot from the plugin's PHP and JS with GNU xgettext
# (WP-CLI's `wp i18n make-pot` is not available here). `scripts/wp-make-pot.sh -` prints to stdout.
set -euo pipefail
cd "$(dirname "$0")/../wp-plugin"
out="${1:-languages/kyc-bridge.pot}"
XGETTEXT="${XGETTEXT:-xgettext}"
keywords=(--keyword=__ --keyword=_e --keyword=esc_html__ --keyword=esc_html_e --keyword=esc_attr__
  --keyword=esc_attr_e --keyword=_x:1,2c --keyword=_ex:1,2c --keyword=esc_html_x:1,2c
  --keyword=esc_attr_x:1,2c --keyword=_n:1,2 --keyword=_nx:1,2,4c --keyword=_n_noop:1,2)
common=(--from-code=UTF-8 --add-comments=translators: --sort-by-file --package-name=kyc-bridge
  --package-version="$(sed -n 's/^ \* Version: *//p' kyc-bridge.php)" --msgid-bugs-address="the kyc-bridge maintainers"
  --copyright-holder="kyc-bridge" "${keywords[@]}")
tmp="$(mktemp)"; trap 'rm -f "$tmp" "$tmp.js"' EXIT
find . -name '*.php' -not -path './phpcs/*' | LC_ALL=C sort > "$tmp.list"
"$XGETTEXT" "${common[@]}" --language=PHP --files-from="$tmp.list" -o "$tmp"
find assets/js -name '*.js' | LC_ALL=C sort > "$tmp.list"
"$XGETTEXT" "${common[@]}" --language=JavaScript --join-existing --files-from="$tmp.list" -o "$tmp"
rm -f "$tmp.list"
# Header as WordPress expects it.
sed -i -e 's/^"Content-Type: text\/plain; charset=CHARSET\\n"/"Content-Type: text\/plain; charset=UTF-8\\n"/' \
  -e 's/^"Language: \\n"/"Language: \\n"\n"X-Domain: kyc-bridge\\n"/' "$tmp"
if [ "$out" = "-" ]; then cat "$tmp"; else cp "$tmp" "$out"; echo "wrote wp-plugin/$out"; fi
