#!/bin/sh
# make-envelope.sh KEY ARTIFACT REPORT TYPE FORMAT ALG > envelope.json
# ALG is ed25519 or ecdsa-p256.
set -eu
key=$1 artifact=$2 report=$3 type=$4 format=$5 alg=$6
tmp=$(mktemp -d)
digest=$(sha256sum "$artifact" | cut -d' ' -f1)
jq -n --arg d "$digest" --arg name "$(basename "$artifact")" \
      --arg type "$type" --arg format "$format" --rawfile report "$report" '{
  _type: "https://in-toto.io/Statement/v1",
  subject: [{name: $name, digest: {sha256: $d}}],
  predicateType: "https://airlock.dev/evidence/v1",
  predicate: {type: $type, format: $format, content: $report}
}' > "$tmp/statement.json"
ptype=application/vnd.in-toto+json
printf 'DSSEv1 %d %s %d ' ${#ptype} "$ptype" "$(wc -c < "$tmp/statement.json")" > "$tmp/pae"
cat "$tmp/statement.json" >> "$tmp/pae"
case $alg in
ed25519)    openssl pkeyutl -sign -rawin -inkey "$key" -in "$tmp/pae" -out "$tmp/sig" ;;
ecdsa-p256) openssl dgst -sha256 -sign "$key" -out "$tmp/sig" "$tmp/pae" ;;
esac
jq -n --arg t "$ptype" --arg p "$(base64 -w0 "$tmp/statement.json")" --arg s "$(base64 -w0 "$tmp/sig")" \
  '{payloadType: $t, payload: $p, signatures: [{keyid: "", sig: $s}]}'
rm -r "$tmp"
