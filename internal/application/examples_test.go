package application_test

import (
	"os"
	"testing"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
)

// example is a decoded example file, split by kind.
type example struct {
	envs  map[string]environment.Spec
	pipes map[string]pipeline.Spec
	apps  map[string]application.Spec
}

// loadExample decodes examples/<file> as `airlock apply` would and splits
// its objects by kind; any other kind fails the test.
func loadExample(t *testing.T, file string) example {
	t.Helper()
	data, err := os.ReadFile("../../examples/" + file)
	if err != nil {
		t.Fatal(err)
	}
	s := resource.NewScheme()
	environment.Register(s)
	pipeline.Register(s)
	application.Register(s)
	release.Register(s)
	objs, err := s.Decode("examples/"+file, data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	ex := example{envs: map[string]environment.Spec{}, pipes: map[string]pipeline.Spec{}, apps: map[string]application.Spec{}}
	for _, o := range objs {
		var err error
		switch o.Kind {
		case "Environment":
			var sp environment.Spec
			err = o.DecodeSpec(&sp)
			ex.envs[o.Metadata.Name] = sp
		case "Pipeline":
			var sp pipeline.Spec
			err = o.DecodeSpec(&sp)
			ex.pipes[o.Metadata.Name] = sp
		case "Application":
			var sp application.Spec
			err = o.DecodeSpec(&sp)
			ex.apps[o.Metadata.Name] = sp
		default:
			t.Errorf("unexpected %s in examples/%s", o.Ref(), file)
		}
		if err != nil {
			t.Fatalf("%s: %v", o.Ref(), err)
		}
	}
	return ex
}
