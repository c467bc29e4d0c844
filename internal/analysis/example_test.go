package analysis_test

import (
	"os"
	"testing"

	"github.com/airlock-dev/airlock/internal/analysis"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/server"
)

// examples/analysis.yaml decodes and validates as airlock's apply does,
// and its application's triggers merge into its template.
func TestExampleAnalysis(t *testing.T) {
	data, err := os.ReadFile("../../examples/analysis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := server.NewScheme().Decode("examples/analysis.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl analysis.TemplateSpec
	var app application.Spec
	for _, o := range objs {
		switch o.Kind {
		case analysis.Kind:
			if err := o.DecodeSpec(&tmpl); err != nil {
				t.Fatal(err)
			}
		case "Application":
			if err := o.DecodeSpec(&app); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg, err := analysis.Resolve("checkout", tmpl, app.Environments["prod"].Analysis)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Triggers) != 5 || *cfg.Triggers[0].Above.Points != 2 || len(cfg.Probes) != 1 || len(cfg.Queries) != 1 || cfg.Prometheus == nil {
		t.Fatalf("resolved %+v", cfg)
	}
}
