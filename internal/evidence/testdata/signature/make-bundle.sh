#!/bin/sh
# make-bundle.sh KEY ARTIFACT [CERT.pem] > artifact.sigstore.json
# Writes a Sigstore bundle v0.3 with a message signature made by openssl
# with an ECDSA P-256 key: the signature covers SHA-256 of the artifact,
# as `cosign sign-blob --key` makes it. With CERT.pem the bundle carries the
# certificate instead of a public-key hint. No transparency-log entry.
set -eu
key=$1 artifact=$2 cert=${3:-}
digest=$(openssl dgst -sha256 -binary "$artifact" | base64 -w0)
sig=$(openssl dgst -sha256 -sign "$key" "$artifact" | base64 -w0)
if [ -n "$cert" ]; then
  material=$(jq -n --arg c "$(openssl x509 -in "$cert" -outform DER | base64 -w0)" '{certificate: {rawBytes: $c}}')
else
  material=$(jq -n --arg h "$(openssl pkey -in "$key" -pubout -outform DER | openssl dgst -sha256 -binary | base64 -w0)" '{publicKey: {hint: $h}}')
fi
jq -n --argjson m "$material" --arg d "$digest" --arg s "$sig" '{
  mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
  verificationMaterial: ($m + {tlogEntries: []}),
  messageSignature: {messageDigest: {algorithm: "SHA2_256", digest: $d}, signature: $s}
}'
