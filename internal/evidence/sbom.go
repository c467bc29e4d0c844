package evidence

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
)

// SBOMs for the type sbom: CycloneDX JSON 1.4 to 1.6 and SPDX 2.3 JSON.
// Both are read with plain structs over a streaming decoder: components
// and packages are decoded one at a time and only counted, so a large SBOM
// never sits in memory whole. The digests the SBOM says it describes (the
// CycloneDX metadata.component's SHA-256, the SHA256 checksums of the SPDX
// packages the document DESCRIBES) are the report's subjects.

const (
	cdxFormat  = "cyclonedx-json"
	cdxName    = "CycloneDX JSON"
	spdxFormat = "spdx-2.3-json"
	spdxName   = "SPDX 2.3 JSON"

	sbomMaxSubjects = 100
	spdxMaxDigests  = 100000 // packages with a SHA256 remembered until relationships are read
	spdxDocumentID  = "SPDXRef-DOCUMENT"
	cdxMaxDepth     = 100 // nesting of components
)

var cdxSpecVersions = []string{"1.4", "1.5", "1.6"}

func cycloneDXParser(r io.Reader, _ Options) (*Report, error) { return parseCycloneDX(r) }
func spdxParser(r io.Reader, _ Options) (*Report, error)      { return parseSPDX(r) }

// sniffCycloneDX recognises a CycloneDX JSON BOM from the start of a document.
func sniffCycloneDX(head []byte) bool { return scanSniff(head, "bomFormat") }

// sniffSPDX recognises an SPDX JSON document from the start of a document.
func sniffSPDX(head []byte) bool { return scanSniff(head, "spdxVersion") }

var (
	_ = register(SBOM, cdxFormat, sniffCycloneDX, cycloneDXParser)
	_ = register(SBOM, spdxFormat, sniffSPDX, spdxParser)
)

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// cdxLicensesKnown reads a licenses array: true when an entry names a
// license (an id, a name or an expression).
type cdxLicensesKnown bool

func (k *cdxLicensesKnown) UnmarshalJSON(b []byte) error {
	*k = false
	return scanEachElement(b, func(dec *json.Decoder, _ int) error {
		var l struct {
			License *struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"license"`
			Expression string `json:"expression"`
		}
		if err := dec.Decode(&l); err != nil {
			return err
		}
		if strings.TrimSpace(l.Expression) != "" || (l.License != nil && (strings.TrimSpace(l.License.ID) != "" || strings.TrimSpace(l.License.Name) != "")) {
			*k = true
		}
		return nil
	})
}

// cdxCount streams one component and its nested components, returning how
// many there are and how many name a license, declared or detected
// (cyclonedx-gomod writes detected licenses in evidence.licenses). Memory
// stays proportional to the nesting depth, at most cdxMaxDepth.
func cdxCount(dec *json.Decoder, depth int) (n, licensed int, err error) {
	if depth > cdxMaxDepth {
		return 0, 0, Errorf(cdxName, "components nested more than %d deep", cdxMaxDepth)
	}
	if err := scanExpectDelim(dec, cdxName, '{', "components[]"); err != nil {
		return 0, 0, err
	}
	n = 1
	var declared, detected cdxLicensesKnown
	err = scanObject(dec, cdxName, func(key string) error {
		switch key {
		case "licenses":
			return scanDecode(dec, cdxName, "components[].licenses", &declared)
		case "evidence":
			var ev struct {
				Licenses *cdxLicensesKnown `json:"licenses"`
			}
			ev.Licenses = &detected
			return scanDecode(dec, cdxName, "components[].evidence", &ev)
		case "components":
			return scanArray(dec, cdxName, "components[].components", func() error {
				a, b, err := cdxCount(dec, depth+1)
				n += a
				licensed += b
				return err
			})
		}
		return scanSkip(dec, cdxName)
	})
	if declared || detected {
		licensed++
	}
	return n, licensed, err
}

func parseCycloneDX(r io.Reader) (*Report, error) {
	var (
		bomFormat, specVersion *string
		metadata               struct {
			Component struct {
				Hashes scanList[cdxHash, scanCapSmall] `json:"hashes"`
			} `json:"component"`
		}
		components, licensed int
		foreign              string
	)
	dec := scanDecoder(r, cdxName)
	if err := scanExpectDelim(dec, cdxName, '{', "the document"); err != nil {
		return nil, err
	}
	// bomFormat and specVersion come first in every writer we know of, so a
	// wrong version is rejected before the components are read.
	checkVersion := func() error {
		if specVersion != nil && !slices.Contains(cdxSpecVersions, *specVersion) {
			return Errorf(cdxName, "unsupported specVersion %q; supported: %s", scanClip(*specVersion, 20), strings.Join(cdxSpecVersions, ", "))
		}
		if bomFormat != nil && *bomFormat != "CycloneDX" {
			return Errorf(cdxName, "bomFormat is %q, want \"CycloneDX\"", scanClip(*bomFormat, 40))
		}
		return nil
	}
	err := scanObject(dec, cdxName, func(key string) error {
		switch key {
		case "bomFormat":
			bomFormat = new(string)
			if err := scanDecode(dec, cdxName, key, bomFormat); err != nil {
				return err
			}
			return checkVersion()
		case "specVersion":
			specVersion = new(string)
			if err := scanDecode(dec, cdxName, key, specVersion); err != nil {
				return err
			}
			return checkVersion()
		case "metadata":
			return scanDecode(dec, cdxName, key, &metadata)
		case "components":
			return scanArray(dec, cdxName, "components", func() error {
				n, l, err := cdxCount(dec, 1)
				components += n
				licensed += l
				return err
			})
		}
		if f := scanForeignFormat(key); f != "" && foreign == "" {
			foreign = f
		}
		return scanSkip(dec, cdxName)
	})
	if err != nil {
		return nil, err
	}
	if err := scanExpectEnd(dec, cdxName); err != nil {
		return nil, err
	}
	if bomFormat == nil || specVersion == nil {
		missing := `"bomFormat"`
		if bomFormat != nil {
			missing = `"specVersion"`
		}
		if foreign != "" {
			return nil, Errorf(cdxName, "not a CycloneDX BOM: no %s; this looks like %s", missing, foreign)
		}
		return nil, Errorf(cdxName, "not a CycloneDX BOM: no %s", missing)
	}
	rep := &Report{Type: SBOM, Format: cdxFormat, Facts: map[string]any{
		"sbom.format":         "cyclonedx",
		"sbom.spec_version":   *specVersion,
		"sbom.components":     float64(components),
		"sbom.licenses_known": float64(licensed),
	}}
	subjects := newScanSet(sbomMaxSubjects)
	for _, h := range metadata.Component.Hashes {
		if h.Alg == "SHA-256" {
			d, ok := scanDigest(h.Content)
			if !ok {
				return nil, Errorf(cdxName, "metadata.component SHA-256 hash %q is not 64 hex digits", scanClip(h.Content, 80))
			}
			subjects.add(d)
		}
	}
	if s := subjects.sorted(); len(s) > 0 {
		rep.Subjects = s
	}
	return rep, nil
}

type spdxPackage struct {
	SPDXID           string `json:"SPDXID"`
	LicenseConcluded string `json:"licenseConcluded"`
	LicenseDeclared  string `json:"licenseDeclared"`
	Checksums        scanList[struct {
		Algorithm     string `json:"algorithm"`
		ChecksumValue string `json:"checksumValue"`
	}, scanCapSmall] `json:"checksums"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

func parseSPDX(r io.Reader) (*Report, error) {
	var (
		version   *string
		packages  int
		licensed  int
		digests   = map[string]string{} // SPDXID -> sha256:<hex>
		described = map[string]bool{}
		foreign   string
	)
	dec := scanDecoder(r, spdxName)
	if err := scanExpectDelim(dec, spdxName, '{', "the document"); err != nil {
		return nil, err
	}
	describe := func(id string) {
		if len(described) < spdxMaxDigests {
			described[id] = true
		}
	}
	err := scanObject(dec, spdxName, func(key string) error {
		switch key {
		case "spdxVersion":
			version = new(string)
			if err := scanDecode(dec, spdxName, key, version); err != nil {
				return err
			}
			if *version != "SPDX-2.3" {
				return Errorf(spdxName, "unsupported spdxVersion %q; supported: SPDX-2.3", scanClip(*version, 20))
			}
			return nil
		case "documentDescribes":
			return scanArray(dec, spdxName, key, func() error {
				var id string
				if err := scanDecode(dec, spdxName, key+"[]", &id); err != nil {
					return err
				}
				describe(id)
				return nil
			})
		case "packages":
			return scanArray(dec, spdxName, "packages", func() error {
				var p spdxPackage
				if err := scanDecode(dec, spdxName, "packages[]", &p); err != nil {
					return err
				}
				packages++
				if spdxLicenseKnown(p.LicenseConcluded) || spdxLicenseKnown(p.LicenseDeclared) {
					licensed++
				}
				for _, c := range p.Checksums {
					if c.Algorithm != "SHA256" {
						continue
					}
					d, ok := scanDigest(c.ChecksumValue)
					if !ok {
						return Errorf(spdxName, "package %s: SHA256 checksum %q is not 64 hex digits", scanClip(p.SPDXID, 100), scanClip(c.ChecksumValue, 80))
					}
					if len(digests) < spdxMaxDigests {
						digests[p.SPDXID] = d
					}
					break
				}
				return nil
			})
		case "relationships":
			return scanArray(dec, spdxName, "relationships", func() error {
				var rel spdxRelationship
				if err := scanDecode(dec, spdxName, "relationships[]", &rel); err != nil {
					return err
				}
				switch {
				case rel.Type == "DESCRIBES" && rel.Element == spdxDocumentID:
					describe(rel.Related)
				case rel.Type == "DESCRIBED_BY" && rel.Related == spdxDocumentID:
					describe(rel.Element)
				}
				return nil
			})
		}
		if f := scanForeignFormat(key); f != "" && foreign == "" {
			foreign = f
		}
		return scanSkip(dec, spdxName)
	})
	if err != nil {
		return nil, err
	}
	if err := scanExpectEnd(dec, spdxName); err != nil {
		return nil, err
	}
	if version == nil {
		if foreign != "" {
			return nil, Errorf(spdxName, "not an SPDX document: no \"spdxVersion\"; this looks like %s", foreign)
		}
		return nil, Errorf(spdxName, "not an SPDX document: no \"spdxVersion\"")
	}
	rep := &Report{Type: SBOM, Format: spdxFormat, Facts: map[string]any{
		"sbom.format":         "spdx",
		"sbom.spec_version":   "2.3",
		"sbom.components":     float64(packages),
		"sbom.licenses_known": float64(licensed),
	}}
	subjects := newScanSet(sbomMaxSubjects)
	for id := range described {
		if d, ok := digests[id]; ok {
			subjects.add(d)
		}
	}
	if s := subjects.sorted(); len(s) > 0 {
		rep.Subjects = s
	}
	return rep, nil
}

// spdxLicenseKnown reports whether an SPDX license field names a license.
func spdxLicenseKnown(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && s != "NOASSERTION" && s != "NONE"
}
