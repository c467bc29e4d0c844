package evidence

import (
	"encoding/json"
	"io"
	"strconv"
)

// Trivy JSON (`trivy image|fs|config --format json`, SchemaVersion 2), for
// the types sca and container-scan. Results are streamed one target at a
// time. Vulnerabilities, failed misconfigurations and secrets are findings;
// the image's repo digests and image ID are the report's subjects.

const (
	trivyFormat        = "trivy-json"
	trivyName          = "Trivy JSON"
	trivySchemaVersion = 2
)

func trivyParser(t Type) Parser {
	return func(r io.Reader, _ Options) (*Report, error) { return parseTrivy(t, r) }
}

// sniffTrivy recognises a Trivy JSON report from the start of a document.
func sniffTrivy(head []byte) bool {
	return scanSniff(head, "SchemaVersion") && scanSniffAny(head, "ArtifactName", "Results")
}

// Trivy JSON is accepted for iac too: `trivy config --format json` reports
// misconfigurations in it.
var (
	_ = register(SCA, trivyFormat, sniffTrivy, trivyParser(SCA))
	_ = register(ContainerScan, trivyFormat, sniffTrivy, trivyParser(ContainerScan))
	_ = register(IaC, trivyFormat, sniffTrivy, trivyParser(IaC))
)

type trivyResult struct {
	Target          string `json:"Target"`
	Vulnerabilities scanList[struct {
		VulnerabilityID  string `json:"VulnerabilityID"`
		PkgName          string `json:"PkgName"`
		InstalledVersion string `json:"InstalledVersion"`
		FixedVersion     string `json:"FixedVersion"`
		Severity         string `json:"Severity"`
		Title            string `json:"Title"`
	}, scanCapLarge] `json:"Vulnerabilities"`
	Misconfigurations scanList[struct {
		ID            string `json:"ID"`
		AVDID         string `json:"AVDID"`
		Title         string `json:"Title"`
		Message       string `json:"Message"`
		Severity      string `json:"Severity"`
		Status        string `json:"Status"`
		CauseMetadata struct {
			StartLine int `json:"StartLine"`
		} `json:"CauseMetadata"`
	}, scanCapLarge] `json:"Misconfigurations"`
	Secrets scanList[struct {
		RuleID    string `json:"RuleID"`
		Severity  string `json:"Severity"`
		Title     string `json:"Title"`
		StartLine int    `json:"StartLine"`
	}, scanCapLarge] `json:"Secrets"`
}

type trivyMetadata struct {
	ImageID     string                         `json:"ImageID"`
	RepoDigests scanList[string, scanCapSmall] `json:"RepoDigests"`
}

func parseTrivy(t Type, r io.Reader) (*Report, error) {
	var (
		schema   *json.Number
		meta     trivyMetadata
		sawRes   bool
		foreign  string
		fc       = newScanFindings()
		fixable  int
		packages = map[string]struct{}{}
		nPkgs    int
	)
	dec := scanDecoder(r, trivyName)
	if err := scanExpectDelim(dec, trivyName, '{', "the document"); err != nil {
		return nil, err
	}
	sev := func(s, what string) (Severity, error) {
		v, err := ParseSeverity(s)
		if err != nil {
			return "", Errorf(trivyName, "%s: unknown Severity %q; Trivy uses CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN", what, scanClip(s, 40))
		}
		return v, nil
	}
	err := scanObject(dec, trivyName, func(key string) error {
		switch key {
		case "SchemaVersion":
			schema = new(json.Number)
			return scanDecode(dec, trivyName, key, schema)
		case "Metadata":
			return scanDecode(dec, trivyName, key, &meta)
		case "Results":
			sawRes = true
			return scanArray(dec, trivyName, "Results", func() error {
				var res trivyResult
				if err := scanDecode(dec, trivyName, "Results[]", &res); err != nil {
					return err
				}
				for _, v := range res.Vulnerabilities {
					s, err := sev(v.Severity, v.VulnerabilityID)
					if err != nil {
						return err
					}
					pkg := scanClip(v.PkgName, 200) + "@" + scanClip(v.InstalledVersion, 100)
					if v.FixedVersion != "" {
						fixable++
					}
					if _, ok := packages[pkg]; !ok {
						nPkgs++
						if len(packages) < 100000 {
							packages[pkg] = struct{}{}
						}
					}
					msg := v.Title
					if v.FixedVersion != "" {
						msg = scanFixedIn(v.FixedVersion, msg)
					}
					fc.add(Finding{ID: scanClip(v.VulnerabilityID, 200), Severity: s, Location: pkg, Message: scanClip(msg, sarifMaxMessage)})
				}
				for _, m := range res.Misconfigurations {
					if m.Status == "PASS" || m.Status == "EXCEPTION" {
						continue
					}
					id := m.ID
					if id == "" {
						id = m.AVDID
					}
					s, err := sev(m.Severity, id)
					if err != nil {
						return err
					}
					loc := scanClip(res.Target, 500)
					if m.CauseMetadata.StartLine > 0 {
						loc += ":" + strconv.Itoa(m.CauseMetadata.StartLine)
					}
					msg := m.Message
					if msg == "" {
						msg = m.Title
					}
					fc.add(Finding{ID: scanClip(id, 200), Severity: s, Location: loc, Message: scanClip(msg, sarifMaxMessage)})
				}
				for _, x := range res.Secrets {
					s, err := sev(x.Severity, x.RuleID)
					if err != nil {
						return err
					}
					loc := scanClip(res.Target, 500)
					if x.StartLine > 0 {
						loc += ":" + strconv.Itoa(x.StartLine)
					}
					fc.add(Finding{ID: scanClip(x.RuleID, 200), Severity: s, Location: loc, Message: scanClip(x.Title, sarifMaxMessage)})
				}
				return nil
			})
		}
		if f := scanForeignFormat(key); f != "" && foreign == "" {
			foreign = f
		}
		return scanSkip(dec, trivyName)
	})
	if err != nil {
		return nil, err
	}
	if err := scanExpectEnd(dec, trivyName); err != nil {
		return nil, err
	}
	if schema == nil {
		if foreign != "" && foreign != "a Trivy JSON report" {
			return nil, Errorf(trivyName, "not a Trivy report: no \"SchemaVersion\"; this looks like %s", foreign)
		}
		return nil, Errorf(trivyName, "not a Trivy report: no \"SchemaVersion\"")
	}
	if v, err := schema.Int64(); err != nil || v != trivySchemaVersion {
		return nil, Errorf(trivyName, "unsupported SchemaVersion %s; supported: %d (Trivy 0.20 and later)", scanClip(schema.String(), 20), trivySchemaVersion)
	}
	if !sawRes {
		// Trivy omits Results when a scan found nothing to scan; a clean
		// scan of real targets has Results with empty lists.
		return nil, Errorf(trivyName, "no \"Results\": the scan covered no target")
	}
	facts := map[string]any{}
	p := string(t)
	rep := &Report{Type: t, Format: trivyFormat, Facts: facts}
	rep.Findings = fc.finish(facts, p)
	facts[p+".fixable"] = float64(fixable)
	facts[p+".packages"] = float64(nPkgs)
	subjects := newScanSet(100)
	for _, d := range meta.RepoDigests {
		if s, ok := scanDigest(d); ok {
			subjects.add(s)
		}
	}
	if s, ok := scanDigest(meta.ImageID); ok {
		subjects.add(s)
	}
	if subs := subjects.sorted(); len(subs) > 0 {
		rep.Subjects = subs
	}
	return rep, nil
}

// scanFixedIn prefixes a vulnerability's message with the version that
// fixes it.
func scanFixedIn(version, msg string) string {
	if msg == "" {
		return "fixed in " + version
	}
	return "fixed in " + version + ": " + msg
}
