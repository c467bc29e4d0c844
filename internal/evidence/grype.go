package evidence

import (
	"encoding/json"
	"io"
)

// Grype JSON (`grype -o json`), for the types sca and container-scan.
// matches[] is streamed; ignoredMatches (silenced by the user's grype
// configuration) are not counted. For an image source, the manifest digest,
// image ID and repo digests are the report's subjects.

const (
	grypeFormat = "grype-json"
	grypeName   = "Grype JSON"
)

func grypeParser(t Type) Parser {
	return func(r io.Reader, _ Options) (*Report, error) { return parseGrype(t, r) }
}

// sniffGrype recognises a Grype JSON report from the start of a document:
// "matches" comes first, and either a match or the source follows.
func sniffGrype(head []byte) bool {
	return scanSniff(head, "matches") && scanSniffAny(head, "vulnerability", "source", "descriptor")
}

var (
	_ = register(SCA, grypeFormat, sniffGrype, grypeParser(SCA))
	_ = register(ContainerScan, grypeFormat, sniffGrype, grypeParser(ContainerScan))
)

type grypeMatch struct {
	RelatedVulnerabilities scanFirst[struct {
		Description string `json:"description"`
	}] `json:"relatedVulnerabilities"`
	Vulnerability struct {
		ID          string `json:"id"`
		Severity    string `json:"severity"`
		Description string `json:"description"`
		Fix         struct {
			Versions scanFirst[string] `json:"versions"`
			State    string            `json:"state"`
		} `json:"fix"`
	} `json:"vulnerability"`
	Artifact struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"artifact"`
}

type grypeSource struct {
	Type   string          `json:"type"`
	Target json.RawMessage `json:"target"` // an object for images, a string for directories
}

type grypeImageTarget struct {
	ImageID        string                         `json:"imageID"`
	ManifestDigest string                         `json:"manifestDigest"`
	RepoDigests    scanList[string, scanCapSmall] `json:"repoDigests"`
}

func parseGrype(t Type, r io.Reader) (*Report, error) {
	var (
		source     grypeSource
		sawMatches bool
		descriptor struct {
			Name string `json:"name"`
		}
		foreign  string
		fc       = newScanFindings()
		fixable  int
		packages = map[string]struct{}{}
		nPkgs    int
	)
	dec := scanDecoder(r, grypeName)
	if err := scanExpectDelim(dec, grypeName, '{', "the document"); err != nil {
		return nil, err
	}
	err := scanObject(dec, grypeName, func(key string) error {
		switch key {
		case "matches":
			sawMatches = true
			return scanArray(dec, grypeName, "matches", func() error {
				var m grypeMatch
				if err := scanDecode(dec, grypeName, "matches[]", &m); err != nil {
					return err
				}
				v := m.Vulnerability
				s, err := ParseSeverity(v.Severity)
				if err != nil {
					return Errorf(grypeName, "%s: unknown severity %q; Grype uses Critical, High, Medium, Low, Negligible, Unknown", scanClip(v.ID, 100), scanClip(v.Severity, 40))
				}
				pkg := scanClip(m.Artifact.Name, 200) + "@" + scanClip(m.Artifact.Version, 100)
				if _, ok := packages[pkg]; !ok {
					nPkgs++
					if len(packages) < 100000 {
						packages[pkg] = struct{}{}
					}
				}
				msg := v.Description
				if msg == "" && m.RelatedVulnerabilities.First != nil {
					msg = m.RelatedVulnerabilities.First.Description
				}
				if v.Fix.State == "fixed" || v.Fix.Versions.First != nil {
					fixable++
					if v.Fix.Versions.First != nil {
						msg = scanFixedIn(*v.Fix.Versions.First, msg)
					}
				}
				fc.add(Finding{ID: scanClip(v.ID, 200), Severity: s, Location: pkg, Message: scanClip(msg, sarifMaxMessage)})
				return nil
			})
		case "source":
			return scanDecode(dec, grypeName, key, &source)
		case "descriptor":
			return scanDecode(dec, grypeName, key, &descriptor)
		}
		if f := scanForeignFormat(key); f != "" && foreign == "" {
			foreign = f
		}
		return scanSkip(dec, grypeName)
	})
	if err != nil {
		return nil, err
	}
	if err := scanExpectEnd(dec, grypeName); err != nil {
		return nil, err
	}
	if !sawMatches {
		if foreign != "" {
			return nil, Errorf(grypeName, "not a Grype report: no \"matches\"; this looks like %s", foreign)
		}
		return nil, Errorf(grypeName, "not a Grype report: no \"matches\"")
	}
	if descriptor.Name != "" && descriptor.Name != "grype" {
		return nil, Errorf(grypeName, "descriptor.name is %q, want \"grype\"", scanClip(descriptor.Name, 40))
	}
	facts := map[string]any{}
	p := string(t)
	rep := &Report{Type: t, Format: grypeFormat, Facts: facts}
	rep.Findings = fc.finish(facts, p)
	facts[p+".fixable"] = float64(fixable)
	facts[p+".packages"] = float64(nPkgs)
	if len(source.Target) > 0 && source.Target[0] == '{' {
		var img grypeImageTarget
		if err := json.Unmarshal(source.Target, &img); err != nil {
			return nil, Errorf(grypeName, "source.target: %v", err)
		}
		subjects := newScanSet(100)
		for _, d := range append([]string{img.ManifestDigest, img.ImageID}, img.RepoDigests...) {
			if s, ok := scanDigest(d); ok {
				subjects.add(s)
			}
		}
		if subs := subjects.sorted(); len(subs) > 0 {
			rep.Subjects = subs
		}
	}
	return rep, nil
}
