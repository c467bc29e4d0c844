package evidence

// Kind is the resource kind of a stored piece of evidence.
const Kind = "Evidence"

// Record is the spec of an Evidence object: one document CI delivered for a
// release, parsed into facts and bound to the release's artifact digest.
// The raw document and the full findings list are blobs in the store,
// addressed by Digest and FindingsDigest. A record is immutable.
type Record struct {
	App     string `json:"app"`
	Version string `json:"version"`
	Release string `json:"release"` // the Release object's name
	Type    Type   `json:"type"`
	Suite   Suite  `json:"suite,omitempty"` // tests only
	// Name distinguishes several reports of one type (e.g. one JUnit file
	// per module); for each (type, suite, name) only the latest counts.
	Name string `json:"name"`

	Digest string `json:"digest"` // sha256 of the document as delivered
	Size   int64  `json:"size"`
	Format string `json:"format"`

	Facts          map[string]any `json:"facts"`
	Findings       int            `json:"findings,omitempty"`       // findings kept
	FindingsDigest string         `json:"findingsDigest,omitempty"` // blob holding them as JSON
	Subjects       []string       `json:"subjects,omitempty"`

	Trusted     bool   `json:"trusted"`
	Signer      string `json:"signer,omitempty"` // the registered key's identity
	KeyID       string `json:"keyId,omitempty"`
	TrustReason string `json:"trustReason,omitempty"` // why it is (not) trusted

	SubmittedBy string `json:"submittedBy"`
}
