package resource

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func gadgetDoc(i int) string {
	return fmt.Sprintf("apiVersion: airlock.dev/v1\nkind: Gadget\nmetadata: {name: g%d}\nspec: {}\n", i)
}

func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	s := testScheme()
	docs := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("---\n" + gadgetDoc(i))
		}
		return b.String()
	}
	listOf := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"apiVersion":"airlock.dev/v1","kind":"Gadget","metadata":{"name":"g%d"},"spec":{}}`, i)
		}
		return `{"kind":"List","items":[` + strings.Join(items, ",") + `]}`
	}
	unknownFields := func(n int) string {
		var b strings.Builder
		b.WriteString("apiVersion: airlock.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  image: x\n")
		for i := range n {
			fmt.Fprintf(&b, "  f%d: 1\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name    string
		in      string
		objects int
		want    string // the whole error when non-empty
		wantN   int    // number of problems reported
	}{
		{name: "at the document limit", in: docs(MaxDocuments), objects: MaxDocuments},
		{name: "over the document limit", in: docs(MaxDocuments + 1), want: "input.yaml: more than 1000 documents; split the input", wantN: 1},
		{name: "empty documents count", in: strings.Repeat("---\n", MaxDocuments+1), want: "input.yaml: more than 1000 documents; split the input", wantN: 1},
		{name: "at the object limit", in: listOf(MaxDocuments), objects: MaxDocuments},
		{name: "over the object limit", in: listOf(MaxDocuments + 1), want: "input.yaml: more than 1000 objects; split the input", wantN: 1},
		{name: "over the size limit", in: gadgetDoc(0) + "# " + strings.Repeat("x", MaxInputBytes), want: fmt.Sprintf("input.yaml: input is %d bytes; the limit is 4194304 (split it into several files)", len(gadgetDoc(0))+2+MaxInputBytes), wantN: 1},
		{name: "many problems are capped", in: unknownFields(150), wantN: maxErrors + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs, err := s.Decode("input.yaml", []byte(tt.in))
			if tt.want == "" && tt.wantN == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(objs) != tt.objects {
					t.Fatalf("%d objects; want %d", len(objs), tt.objects)
				}
				return
			}
			de, ok := err.(DecodeErrors)
			if !ok {
				t.Fatalf("err = %v (%T); want DecodeErrors", err, err)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("err = %q; want %q", err, tt.want)
			}
			if len(de) != tt.wantN {
				t.Errorf("%d problems; want %d", len(de), tt.wantN)
			}
			if tt.name == "many problems are capped" && de[len(de)-1].Msg != "and 50 more problems" {
				t.Errorf("last problem %q", de[len(de)-1].Msg)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	s := testScheme()
	obj, err := s.DecodeObject("body", []byte(`{"apiVersion":"airlock.dev/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"image":"x","replicas":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	var spec widgetSpec
	if err := obj.DecodeSpec(&spec); err != nil || spec.Image != "x" || spec.Replicas != 2 {
		t.Fatalf("spec %+v, err %v", spec, err)
	}
	for in, want := range map[string]string{
		"":                                    "body: expected one object, found 0",
		gadgetDoc(1) + "---\n" + gadgetDoc(2): "body: expected one object, found 2",
	} {
		if _, err := s.DecodeObject("body", []byte(in)); err == nil || err.Error() != want {
			t.Errorf("DecodeObject(%q) err = %v; want %q", in, err, want)
		}
	}
}

func TestObjectSpecStatus(t *testing.T) {
	t.Parallel()
	o := &Object{Kind: "Widget", Metadata: Metadata{Name: "w", Labels: map[string]string{"a": "b"}}}
	if err := o.SetSpec(widgetSpec{Image: "x"}); err != nil {
		t.Fatal(err)
	}
	var spec widgetSpec
	if err := o.DecodeSpec(&spec); err != nil || spec.Image != "x" {
		t.Fatalf("DecodeSpec: %+v, %v", spec, err)
	}
	for _, bad := range []string{`{"image":"x","nope":1}`, `{"image":"x"} {"image":"y"}`, `{"image":`} {
		o2 := o.DeepCopy()
		o2.Spec = json.RawMessage(bad)
		if err := o2.DecodeSpec(&spec); err == nil {
			t.Errorf("DecodeSpec accepted %s", bad)
		}
	}
	var st struct{ Phase string }
	if err := o.DecodeStatus(&st); err != nil || st.Phase != "" {
		t.Fatalf("DecodeStatus of no status: %+v, %v", st, err)
	}
	o.SetStatus(map[string]string{"Phase": "Ready"})
	if err := o.DecodeStatus(&st); err != nil || st.Phase != "Ready" {
		t.Fatalf("DecodeStatus: %+v, %v", st, err)
	}
	c := o.DeepCopy()
	c.Metadata.Labels["a"] = "changed"
	c.Spec[0] = 'X'
	c.Status[0] = 'X'
	if o.Metadata.Labels["a"] != "b" || o.Spec[0] != '{' || o.Status[0] != '{' {
		t.Fatal("DeepCopy shares state with the original")
	}
	if o.Ref() != "Widget/w" {
		t.Errorf("Ref = %q", o.Ref())
	}
}
