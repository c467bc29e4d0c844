package evidence

import (
	"io"
	"strings"
)

// OWASP ZAP's traditional JSON report (`zap-baseline.py -J`, the
// "traditional-json" report template), for the type dast. Each alert of
// each site is one finding; its riskcode gives the severity (3 high,
// 2 medium, 1 low, 0 informational: ZAP has no critical). Alerts a user
// marked as false positives (confidence 0) are not counted. ZAP writes its
// numbers as strings; both strings and numbers are accepted.

const (
	zapFormat   = "zap-json"
	zapName     = "OWASP ZAP JSON"
	zapMaxSites = 100
)

func zapParser(r io.Reader, _ Options) (*Report, error) { return parseZAP(r) }

// sniffZAP recognises a ZAP JSON report from the start of a document.
func sniffZAP(head []byte) bool {
	return scanSniff(head, "site") && scanSniffAny(head, "@version", "@programName")
}

var _ = register(DAST, zapFormat, sniffZAP, zapParser)

type zapSite struct {
	Name   string `json:"@name"`
	Alerts scanList[struct {
		PluginID   scanText `json:"pluginid"`
		AlertRef   scanText `json:"alertRef"`
		Alert      string   `json:"alert"`
		Name       string   `json:"name"`
		RiskCode   scanText `json:"riskcode"`
		Confidence scanText `json:"confidence"`
		Instances  scanFirst[struct {
			URI    string `json:"uri"`
			Method string `json:"method"`
		}] `json:"instances"`
	}, scanCapLarge] `json:"alerts"`
}

func parseZAP(r io.Reader) (*Report, error) {
	var (
		version  *string
		sawSites bool
		foreign  string
		fc       = newScanFindings()
		sites    = newScanSet(zapMaxSites)
	)
	dec := scanDecoder(r, zapName)
	if err := scanExpectDelim(dec, zapName, '{', "the document"); err != nil {
		return nil, err
	}
	err := scanObject(dec, zapName, func(key string) error {
		switch key {
		case "@version":
			version = new(string)
			return scanDecode(dec, zapName, key, version)
		case "site":
			sawSites = true
			return scanArray(dec, zapName, "site", func() error {
				var s zapSite
				if err := scanDecode(dec, zapName, "site[]", &s); err != nil {
					return err
				}
				sites.add(scanClip(s.Name, 300))
				for _, a := range s.Alerts {
					sev, ok := zapSeverity(a.RiskCode)
					if !ok {
						return Errorf(zapName, "alert %s: riskcode %q is not 0-3", scanClip(string(a.PluginID), 40), scanClip(string(a.RiskCode), 20))
					}
					if strings.TrimSpace(string(a.Confidence)) == "0" {
						continue // marked as a false positive in ZAP
					}
					id := string(a.AlertRef)
					if id == "" {
						id = string(a.PluginID)
					}
					name := a.Alert
					if name == "" {
						name = a.Name
					}
					loc := s.Name
					if in := a.Instances.First; in != nil && in.URI != "" {
						loc = in.URI
						if in.Method != "" {
							loc = in.Method + " " + loc
						}
					}
					fc.add(Finding{ID: scanClip(id, 100), Severity: sev, Location: scanClip(loc, 500), Message: scanClip(name, sarifMaxMessage)})
				}
				return nil
			})
		}
		if f := scanForeignFormat(key); f != "" && foreign == "" {
			foreign = f
		}
		return scanSkip(dec, zapName)
	})
	if err != nil {
		return nil, err
	}
	if err := scanExpectEnd(dec, zapName); err != nil {
		return nil, err
	}
	if version == nil || !sawSites {
		missing := `"@version"`
		if version != nil {
			missing = `"site"`
		}
		if foreign != "" && foreign != "an OWASP ZAP report" {
			return nil, Errorf(zapName, "not a ZAP report: no %s; this looks like %s", missing, foreign)
		}
		return nil, Errorf(zapName, "not a ZAP report: no %s", missing)
	}
	facts := map[string]any{}
	rep := &Report{Type: DAST, Format: zapFormat, Facts: facts}
	rep.Findings = fc.finish(facts, string(DAST))
	facts["dast.sites"] = sites.sorted()
	return rep, nil
}

// zapSeverity maps a ZAP riskcode to a severity.
func zapSeverity(code scanText) (Severity, bool) {
	switch strings.TrimSpace(string(code)) {
	case "3":
		return High, true
	case "2":
		return Medium, true
	case "1":
		return Low, true
	case "0":
		return None, true
	}
	return "", false
}
