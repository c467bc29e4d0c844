package demo_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/demo"
)

// TestDemo runs `airlock demo` whole: it builds the airlock binary (the
// demo deploys it as its service) and checks the story ends well.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs real processes for about a minute and a half")
	}
	bin := filepath.Join(t.TempDir(), "airlock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/airlock-dev/airlock/cmd/airlock").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := demo.Run(ctx, demo.Options{Out: &out, Binary: bin})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"BLOCKED, as it should be: blocked by 1 gate(s): tests-unit",
		"rollback rehearsed in staging: back to 1.0.0",
		"dana (a tech lead) tries to approve her own request: REFUSED",
		"step 2 of 3: 50% of traffic on 1.1.1",
		"canary rolled back by the analysis (verdict shop.prod.",
		": fail, rollback-canary (automatic: true): error rate",
		"1.2.0 was ROLLED BACK automatically: prod serves 1.1.1 again",
		"shop 1.3.0 serves 100% of traffic in prod",
		"chain intact",
		"The demo behaved as the story says",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the story lacks %q", want)
		}
	}
	// The only failed requests are 1.2.0's, during its canary, before the
	// analysis rolled it back.
	m := regexp.MustCompile(`Production traffic meanwhile: (\d+) requests, (\d+) failed`).FindStringSubmatch(out.String())
	b := regexp.MustCompile(`the canary's blast radius: (\d+) failed requests`).FindStringSubmatch(out.String())
	if m == nil || b == nil || m[2] != b[1] {
		t.Errorf("production traffic failed outside the bad canary: totals %q, canary %q", m, b)
	} else if n, _ := strconv.Atoi(b[1]); n > 50 {
		t.Errorf("the bad canary failed %d requests before its rollback; want a few seconds' worth at 10%%", n)
	}
}
