#!/bin/sh
# sign-statement.sh STATEMENT KEY ALG > envelope.json
# Wraps an in-toto Statement (a JSON file) in a DSSE envelope signed with
# openssl. ALG is ed25519 or ecdsa-p256.
set -eu
statement=$1 key=$2 alg=$3
tmp=$(mktemp -d)
ptype=application/vnd.in-toto+json
printf 'DSSEv1 %d %s %d ' ${#ptype} "$ptype" "$(wc -c < "$statement")" > "$tmp/pae"
cat "$statement" >> "$tmp/pae"
case $alg in
ed25519)    openssl pkeyutl -sign -rawin -inkey "$key" -in "$tmp/pae" -out "$tmp/sig" ;;
ecdsa-p256) openssl dgst -sha256 -sign "$key" -out "$tmp/sig" "$tmp/pae" ;;
*) echo "unknown algorithm $alg" >&2; exit 2 ;;
esac
jq -n --arg t "$ptype" --arg p "$(base64 -w0 "$statement")" --arg s "$(base64 -w0 "$tmp/sig")" \
  '{payloadType: $t, payload: $p, signatures: [{keyid: "", sig: $s}]}'
rm -r "$tmp"
