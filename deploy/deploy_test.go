package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The manifests live in kubernetes/; the example Secrets are not applied.
const (
	manifestDir   = "kubernetes"
	kustomization = "kustomization.yaml"
	exampleFile   = "secrets.example.yaml"
	port          = 8640
	dataDir       = "/var/lib/airlock"
)

// doc is one YAML document of one manifest file.
type doc struct {
	file string
	obj  map[string]any
}

func (d doc) kind() string { return str(d.obj, "kind") }
func (d doc) name() string { return str(d.obj, "metadata", "name") }
func (d doc) String() string {
	return fmt.Sprintf("%s %s (%s)", d.kind(), d.name(), d.file)
}

// --- Reading -----------------------------------------------------------

// splitDocuments splits a YAML stream on its "---" separator lines and
// drops documents that hold only comments and blank lines.
func splitDocuments(data string) []string {
	var docs []string
	var cur strings.Builder
	flush := func() {
		if hasContent(cur.String()) {
			docs = append(docs, cur.String())
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func hasContent(s string) bool {
	for line := range strings.SplitSeq(s, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

func readDocs(t *testing.T, path string) []doc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []doc
	for i, text := range splitDocuments(string(data)) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(text), &obj); err != nil {
			t.Fatalf("%s, document %d: %v", path, i+1, err)
		}
		out = append(out, doc{file: filepath.Base(path), obj: obj})
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no document", path)
	}
	return out
}

// yamlFiles lists the .yaml and .yml files of the manifest directory.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			names = append(names, e.Name())
		}
	}
	return names
}

// manifests reads every document of every manifest (the files the
// kustomization may list: all but the kustomization and the examples).
func manifests(t *testing.T) []doc {
	t.Helper()
	var all []doc
	for _, name := range yamlFiles(t) {
		if name == kustomization || name == exampleFile {
			continue
		}
		all = append(all, readDocs(t, filepath.Join(manifestDir, name))...)
	}
	return all
}

func only(t *testing.T, docs []doc, kind string) doc {
	t.Helper()
	var found []doc
	for _, d := range docs {
		if d.kind() == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, found %d", kind, len(found))
	}
	return found[0]
}

func ofKind(docs []doc, kind string) []doc {
	var found []doc
	for _, d := range docs {
		if d.kind() == kind {
			found = append(found, d)
		}
	}
	return found
}

// --- Access to decoded YAML -------------------------------------------

func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func mapAt(v any, path ...string) map[string]any {
	m, _ := get(v, path...).(map[string]any)
	return m
}

// num reads a number (sigs.k8s.io/yaml decodes through JSON: float64).
func num(v any, path ...string) (float64, bool) {
	f, ok := get(v, path...).(float64)
	return f, ok
}

func boolAt(v any, path ...string) (value, set bool) {
	b, ok := get(v, path...).(bool)
	return b, ok
}

func labels(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// deepCopy copies decoded YAML, so a test may change it.
func deepCopy(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// --- Checks ------------------------------------------------------------
//
// Each check returns the problems it found; the tests below run them on the
// manifests (expecting none) and on broken copies (expecting some), so
// every check is known to be able to fail.

func podSpec(dep map[string]any) map[string]any { return mapAt(dep, "spec", "template", "spec") }

func podLabels(dep map[string]any) map[string]string {
	return labels(mapAt(dep, "spec", "template", "metadata", "labels"))
}

func containers(dep map[string]any) []map[string]any {
	var out []map[string]any
	for _, field := range []string{"initContainers", "containers"} {
		for _, c := range list(podSpec(dep), field) {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// effective returns a container's security setting, falling back to the
// pod's securityContext for the fields Kubernetes inherits from it.
func effective(pod, c map[string]any, field string) any {
	if v := get(c, "securityContext", field); v != nil {
		return v
	}
	return get(pod, "securityContext", field)
}

// checkSecurity: every container runs as a non-root user on a read-only
// root filesystem, cannot gain privileges, drops every capability and runs
// under the runtime's seccomp profile; the pod gets no API token.
func checkSecurity(dep map[string]any) []string {
	var problems []string
	pod := podSpec(dep)
	cs := containers(dep)
	if len(cs) == 0 {
		problems = append(problems, "the pod has no containers")
	}
	if v, _ := boolAt(pod, "automountServiceAccountToken"); v || get(pod, "automountServiceAccountToken") == nil {
		problems = append(problems, "pod: automountServiceAccountToken is not false")
	}
	for _, field := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if v, _ := boolAt(pod, field); v {
			problems = append(problems, "pod: "+field+" is true")
		}
	}
	for _, c := range cs {
		name := str(c, "name")
		if v, _ := effective(pod, c, "runAsNonRoot").(bool); !v {
			problems = append(problems, name+": runAsNonRoot is not true")
		}
		if uid, ok := effective(pod, c, "runAsUser").(float64); !ok || uid == 0 {
			problems = append(problems, fmt.Sprintf("%s: runAsUser is %v, want a non-zero UID", name, effective(pod, c, "runAsUser")))
		}
		if v, _ := boolAt(c, "securityContext", "readOnlyRootFilesystem"); !v {
			problems = append(problems, name+": readOnlyRootFilesystem is not true")
		}
		if v, set := boolAt(c, "securityContext", "allowPrivilegeEscalation"); !set || v {
			problems = append(problems, name+": allowPrivilegeEscalation is not false")
		}
		if v, _ := boolAt(c, "securityContext", "privileged"); v {
			problems = append(problems, name+": privileged")
		}
		if !slices.Contains(list(c, "securityContext", "capabilities", "drop"), any("ALL")) {
			problems = append(problems, name+": capabilities.drop does not hold ALL")
		}
		if len(list(c, "securityContext", "capabilities", "add")) > 0 {
			problems = append(problems, name+": adds capabilities")
		}
		if typ := str(effective(pod, c, "seccompProfile"), "type"); typ != "RuntimeDefault" {
			problems = append(problems, fmt.Sprintf("%s: seccompProfile.type is %q, want RuntimeDefault", name, typ))
		}
	}
	return problems
}

func probeTarget(c map[string]any, probe string) (path string, port any) {
	return str(c, probe, "httpGet", "path"), get(c, probe, "httpGet", "port")
}

// portIs reports whether a probe's or Service's port names port 8640 of c,
// by number or by the name of a container port.
func portIs(c map[string]any, p any, want int) bool {
	switch p := p.(type) {
	case float64:
		return int(p) == want
	case string:
		for _, cp := range list(c, "ports") {
			if str(cp, "name") == p {
				n, _ := num(cp, "containerPort")
				return int(n) == want
			}
		}
	}
	return false
}

// checkProbes: liveness is /healthz, readiness /readyz, both on 8640, and a
// startup probe guards the first start (migrations).
func checkProbes(dep map[string]any) []string {
	var problems []string
	for _, c := range list(podSpec(dep), "containers") {
		c, _ := c.(map[string]any)
		name := str(c, "name")
		for _, want := range []struct{ probe, path string }{
			{"livenessProbe", "/healthz"},
			{"readinessProbe", "/readyz"},
			{"startupProbe", "/healthz"},
		} {
			path, p := probeTarget(c, want.probe)
			if path != want.path || !portIs(c, p, port) {
				problems = append(problems, fmt.Sprintf("%s: %s is GET %q on port %v, want %q on %d", name, want.probe, path, p, want.path, port))
			}
		}
	}
	return problems
}

// argValue returns the value following flag in args ("--flag value" or
// "--flag=value").
func argValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

func stringsOf(l []any) []string {
	var out []string
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func envVar(c map[string]any, name string) map[string]any {
	for _, e := range list(c, "env") {
		if str(e, "name") == name {
			m, _ := e.(map[string]any)
			return m
		}
	}
	return nil
}

// mountAt returns the volume mounted at path in c, and the mount.
func mountAt(pod, c map[string]any, path string) (volume, mount map[string]any) {
	for _, m := range list(c, "volumeMounts") {
		if str(m, "mountPath") != path {
			continue
		}
		for _, v := range list(pod, "volumes") {
			if str(v, "name") == str(m, "name") {
				vm, _ := v.(map[string]any)
				mm, _ := m.(map[string]any)
				return vm, mm
			}
		}
	}
	return nil, nil
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkServer: several replicas run `airlock server` on the shared
// database, advertising the pod's address, signing with the shared key
// from a Secret, keeping --data on a volume and serving on 8640.
func checkServer(dep map[string]any) []string {
	var problems []string
	if n, ok := num(dep, "spec", "replicas"); !ok || n < 2 {
		problems = append(problems, fmt.Sprintf("spec.replicas is %v, want at least 2", get(dep, "spec", "replicas")))
	}
	pod := podSpec(dep)
	cs := list(pod, "containers")
	if len(cs) != 1 {
		return append(problems, fmt.Sprintf("want one container, found %d", len(cs)))
	}
	c, _ := cs[0].(map[string]any)
	args := stringsOf(list(c, "args"))
	if len(list(c, "command")) > 0 {
		problems = append(problems, "command overrides the image's ENTRYPOINT /airlock")
	}
	if len(args) == 0 || args[0] != "server" {
		problems = append(problems, fmt.Sprintf("args %q do not start with server", args))
	}
	want := map[string]string{
		"--database":    "$(AIRLOCK_DATABASE_URL)",
		"--data":        dataDir,
		"--listen":      fmt.Sprintf("0.0.0.0:%d", port),
		"--advertise":   fmt.Sprintf("$(POD_IP):%d", port),
		"--signing-key": "/etc/airlock/signing/audit.key",
	}
	for _, flag := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		if v, ok := argValue(args, flag); !ok || v != want[flag] {
			problems = append(problems, fmt.Sprintf("args: %s is %q, want %q", flag, v, want[flag]))
		}
	}
	// Kubernetes leaves an undefined $(VAR) as it is: every one the args
	// use must be defined in env.
	for _, a := range args {
		for _, m := range varRef.FindAllStringSubmatch(a, -1) {
			if envVar(c, m[1]) == nil {
				problems = append(problems, fmt.Sprintf("args use $(%s), which env does not define", m[1]))
			}
		}
	}
	db := envVar(c, "AIRLOCK_DATABASE_URL")
	if str(db, "valueFrom", "secretKeyRef", "name") != "airlock-database" || str(db, "valueFrom", "secretKeyRef", "key") != "url" {
		problems = append(problems, "env AIRLOCK_DATABASE_URL does not come from Secret airlock-database, key url")
	}
	if str(envVar(c, "POD_IP"), "valueFrom", "fieldRef", "fieldPath") != "status.podIP" {
		problems = append(problems, "env POD_IP does not come from status.podIP")
	}
	// The signing key: a read-only mount of Secret airlock-signing-key.
	keyPath, _ := argValue(args, "--signing-key")
	vol, mount := mountAt(pod, c, filepath.Dir(keyPath))
	if str(vol, "secret", "secretName") != "airlock-signing-key" {
		problems = append(problems, fmt.Sprintf("%s is not a mount of Secret airlock-signing-key", filepath.Dir(keyPath)))
	}
	if ro, _ := boolAt(mount, "readOnly"); !ro {
		problems = append(problems, "the signing key is not mounted read-only")
	}
	if items := list(vol, "secret", "items"); len(items) > 0 && !slices.ContainsFunc(items, func(i any) bool { return str(i, "path") == filepath.Base(keyPath) }) {
		problems = append(problems, fmt.Sprintf("Secret airlock-signing-key does not project %s", filepath.Base(keyPath)))
	}
	// The data directory and /tmp: writable volumes, as the root
	// filesystem is read-only.
	for _, dir := range []string{dataDir, "/tmp"} {
		if vol, _ := mountAt(pod, c, dir); vol == nil || get(vol, "emptyDir") == nil {
			problems = append(problems, dir+" is not an emptyDir volume")
		}
	}
	// The seal key: the same for every replica, so from a Secret.
	if vol, _ := mountAt(pod, c, dataDir+"/seal.key"); str(vol, "secret", "secretName") != "airlock-seal-key" {
		problems = append(problems, dataDir+"/seal.key is not a mount of Secret airlock-seal-key")
	}
	for _, kind := range []string{"requests", "limits"} {
		for _, res := range []string{"cpu", "memory"} {
			if get(c, "resources", kind, res) == nil {
				problems = append(problems, fmt.Sprintf("resources.%s.%s is not set", kind, res))
			}
		}
	}
	if !portIs(c, "http", port) {
		problems = append(problems, fmt.Sprintf("no container port named http on %d", port))
	}
	return problems
}

// checkSpread: replicas land on different nodes, by a topology spread
// constraint or a pod anti-affinity on kubernetes.io/hostname that selects
// the Deployment's own pods.
func checkSpread(dep map[string]any) []string {
	pod, pl := podSpec(dep), podLabels(dep)
	for _, c := range list(pod, "topologySpreadConstraints") {
		if str(c, "topologyKey") == "kubernetes.io/hostname" && str(c, "whenUnsatisfiable") == "DoNotSchedule" && selects(mapAt(c, "labelSelector"), pl) {
			return nil
		}
	}
	for _, rule := range []string{"requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution"} {
		for _, term := range list(pod, "affinity", "podAntiAffinity", rule) {
			if t := mapAt(term, "podAffinityTerm"); t != nil {
				term = t
			}
			if str(term, "topologyKey") == "kubernetes.io/hostname" && selects(mapAt(term, "labelSelector"), pl) {
				return nil
			}
		}
	}
	return []string{"no topology spread constraint or pod anti-affinity keeps the replicas on different nodes"}
}

// selects reports whether a label selector (matchLabels only; expressions
// are not evaluated, so they fail) selects pods with these labels.
func selects(sel map[string]any, pod map[string]string) bool {
	if len(sel) == 0 || get(sel, "matchExpressions") != nil {
		return false
	}
	ml := labels(mapAt(sel, "matchLabels"))
	if len(ml) == 0 {
		return false
	}
	for k, v := range ml {
		if pod[k] != v {
			return false
		}
	}
	return true
}

// selectsMap is selects for a Service's plain selector map.
func selectsMap(sel map[string]any, pod map[string]string) bool {
	return selects(map[string]any{"matchLabels": sel}, pod)
}

// checkNetworkPolicies: a default deny for the namespace, and a policy for
// the airlock pods covering Ingress and Egress: in, only port 8640 from
// client namespaces and the namespace itself; out, only DNS and 5432.
func checkNetworkPolicies(pols []map[string]any, pod map[string]string) []string {
	var problems []string
	var defaultDeny, own map[string]any
	for _, p := range pols {
		types := stringsOf(list(p, "spec", "policyTypes"))
		both := slices.Contains(types, "Ingress") && slices.Contains(types, "Egress")
		sel := mapAt(p, "spec", "podSelector")
		switch {
		case both && len(sel) == 0 && get(p, "spec", "ingress") == nil && get(p, "spec", "egress") == nil:
			defaultDeny = p
		case both && selects(sel, pod):
			own = p
		}
	}
	if defaultDeny == nil {
		problems = append(problems, "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")
	}
	if own == nil {
		return append(problems, "no NetworkPolicy selects the airlock pods for both Ingress and Egress")
	}
	ingress := list(own, "spec", "ingress")
	if len(ingress) == 0 {
		problems = append(problems, "the airlock NetworkPolicy admits nothing")
	}
	var fromClients, fromNamespace bool
	for _, rule := range ingress {
		ports := list(rule, "ports")
		if len(ports) == 0 {
			problems = append(problems, "an ingress rule allows every port")
		}
		for _, p := range ports {
			if n, _ := num(p, "port"); int(n) != port {
				problems = append(problems, fmt.Sprintf("ingress allows port %v, want only %d", get(p, "port"), port))
			}
		}
		from := list(rule, "from")
		if len(from) == 0 {
			problems = append(problems, "an ingress rule allows every source")
		}
		for _, peer := range from {
			ns, ps := mapAt(peer, "namespaceSelector"), mapAt(peer, "podSelector")
			switch {
			case get(peer, "ipBlock") != nil:
				problems = append(problems, "an ingress rule allows an ipBlock")
			case ns != nil && ps == nil && labels(mapAt(ns, "matchLabels"))["airlock.dev/client"] == "true" && len(labels(mapAt(ns, "matchLabels"))) == 1:
				fromClients = true
			case ns == nil && ps != nil && len(ps) == 0:
				fromNamespace = true
			default:
				b, _ := json.Marshal(peer)
				problems = append(problems, "an ingress rule allows an unexpected source: "+string(b))
			}
		}
	}
	if !fromClients {
		problems = append(problems, `ingress does not admit namespaces labelled airlock.dev/client: "true"`)
	}
	if !fromNamespace {
		problems = append(problems, "ingress does not admit the airlock namespace itself")
	}
	egress := list(own, "spec", "egress")
	var allowed []int
	for _, rule := range egress {
		ports := list(rule, "ports")
		if len(ports) == 0 {
			problems = append(problems, "an egress rule allows every port")
		}
		if len(list(rule, "to")) == 0 {
			problems = append(problems, "an egress rule allows every destination")
		}
		for _, p := range ports {
			n, _ := num(p, "port")
			allowed = append(allowed, int(n))
		}
	}
	sort.Ints(allowed)
	allowed = slices.Compact(allowed)
	if !slices.Equal(allowed, []int{53, 5432}) {
		problems = append(problems, fmt.Sprintf("egress allows ports %v, want DNS (53) and PostgreSQL (5432) only", allowed))
	}
	return problems
}

// --- Tests of the manifests ----------------------------------------------

func TestManifestsDecode(t *testing.T) {
	docs := manifests(t)
	for _, d := range docs {
		if str(d.obj, "apiVersion") == "" || d.kind() == "" || d.name() == "" {
			t.Errorf("%s: a document without apiVersion, kind or metadata.name", d.file)
		}
		if d.kind() == "Secret" {
			t.Errorf("%s: a Secret among the applied manifests; Secrets are created by hand (docs/deploy.md)", d)
		}
		if d.kind() != "Namespace" && str(d.obj, "metadata", "namespace") != "airlock" {
			t.Errorf("%s: metadata.namespace is %q, want airlock", d, str(d.obj, "metadata", "namespace"))
		}
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"} {
		only(t, docs, kind)
	}
	if sa := only(t, docs, "ServiceAccount"); get(sa.obj, "automountServiceAccountToken") != false {
		t.Errorf("%s: automountServiceAccountToken is not false", sa)
	}
	dep := only(t, docs, "Deployment")
	if sa := str(podSpec(dep.obj), "serviceAccountName"); sa != only(t, docs, "ServiceAccount").name() {
		t.Errorf("the Deployment runs as service account %q, not the one defined", sa)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	k := readDocs(t, filepath.Join(manifestDir, kustomization))
	if len(k) != 1 || k[0].kind() != "Kustomization" {
		t.Fatalf("%s is not one Kustomization", kustomization)
	}
	listed := stringsOf(list(k[0].obj, "resources"))
	for _, r := range listed {
		if _, err := os.Stat(filepath.Join(manifestDir, r)); err != nil {
			t.Errorf("the kustomization lists %s: %v", r, err)
		}
	}
	if slices.Contains(listed, exampleFile) {
		t.Errorf("the kustomization lists %s: example Secrets must never be applied", exampleFile)
	}
	var want []string
	for _, name := range yamlFiles(t) {
		if name != kustomization && name != exampleFile {
			want = append(want, name)
		}
	}
	got := slices.Sorted(slices.Values(listed))
	if !slices.Equal(got, want) {
		t.Errorf("the kustomization lists %q; the directory holds %q", got, want)
	}
}

func TestContainersAreLockedDown(t *testing.T) {
	dep := only(t, manifests(t), "Deployment")
	for _, p := range checkSecurity(dep.obj) {
		t.Error(p)
	}
}

func TestProbes(t *testing.T) {
	dep := only(t, manifests(t), "Deployment")
	for _, p := range checkProbes(dep.obj) {
		t.Error(p)
	}
}

func TestServerReplicasArgsAndVolumes(t *testing.T) {
	dep := only(t, manifests(t), "Deployment")
	for _, p := range checkServer(dep.obj) {
		t.Error(p)
	}
	for _, p := range checkSpread(dep.obj) {
		t.Error(p)
	}
	if !selects(mapAt(dep.obj, "spec", "selector"), podLabels(dep.obj)) {
		t.Error("the Deployment's selector does not select its own pod template")
	}
}

func TestNetworkPolicies(t *testing.T) {
	docs := manifests(t)
	var pols []map[string]any
	for _, d := range ofKind(docs, "NetworkPolicy") {
		pols = append(pols, d.obj)
	}
	for _, p := range checkNetworkPolicies(pols, podLabels(only(t, docs, "Deployment").obj)) {
		t.Error(p)
	}
}

func TestDisruptionBudgetSelectsThePods(t *testing.T) {
	docs := manifests(t)
	dep, pdb := only(t, docs, "Deployment"), only(t, docs, "PodDisruptionBudget")
	if !selects(mapAt(pdb.obj, "spec", "selector"), podLabels(dep.obj)) {
		t.Errorf("%s does not select the Deployment's pods %v", pdb, podLabels(dep.obj))
	}
	minAvail, ok := num(pdb.obj, "spec", "minAvailable")
	replicas, _ := num(dep.obj, "spec", "replicas")
	if !ok || minAvail != 2 {
		t.Errorf("%s: minAvailable is %v, want 2", pdb, get(pdb.obj, "spec", "minAvailable"))
	}
	if minAvail >= replicas {
		t.Errorf("%s: minAvailable %v with %v replicas blocks every drain", pdb, minAvail, replicas)
	}
}

func TestServiceSelectsThePods(t *testing.T) {
	docs := manifests(t)
	dep, svc := only(t, docs, "Deployment"), only(t, docs, "Service")
	if svc.name() != "airlock" {
		t.Errorf("the Service is named %q, want airlock", svc.name())
	}
	if typ := str(svc.obj, "spec", "type"); typ != "" && typ != "ClusterIP" {
		t.Errorf("%s: type %s, want ClusterIP", svc, typ)
	}
	if !selectsMap(mapAt(svc.obj, "spec", "selector"), podLabels(dep.obj)) {
		t.Errorf("%s: selector %v does not select the Deployment's pods %v", svc, get(svc.obj, "spec", "selector"), podLabels(dep.obj))
	}
	c, _ := list(podSpec(dep.obj), "containers")[0].(map[string]any)
	ports := list(svc.obj, "spec", "ports")
	if len(ports) != 1 {
		t.Fatalf("%s: %d ports, want 1", svc, len(ports))
	}
	if n, _ := num(ports[0], "port"); int(n) != port {
		t.Errorf("%s: port %v, want %d", svc, get(ports[0], "port"), port)
	}
	target := get(ports[0], "targetPort")
	if target == nil {
		target = get(ports[0], "port")
	}
	if !portIs(c, target, port) {
		t.Errorf("%s: targetPort %v is not the container's port %d", svc, target, port)
	}
}

// TestExampleSecretsMatchTheDeployment: the example Secrets are the ones
// the Deployment reads, with the keys it reads, and hold only placeholders.
func TestExampleSecretsMatchTheDeployment(t *testing.T) {
	examples := readDocs(t, filepath.Join(manifestDir, exampleFile))
	keys := map[string][]string{} // Secret name -> keys
	for _, d := range examples {
		if d.kind() != "Secret" {
			t.Errorf("%s: only Secrets belong in %s", d, exampleFile)
			continue
		}
		for k, v := range mapAt(d.obj, "stringData") {
			keys[d.name()] = append(keys[d.name()], k)
			s, _ := v.(string)
			if !strings.Contains(s, "REPLACE") && !strings.Contains(s, "CHANGE-ME") {
				t.Errorf("%s: %s holds no placeholder (REPLACE or CHANGE-ME): is it a real secret?", d, k)
			}
		}
		if get(d.obj, "data") != nil {
			t.Errorf("%s: use stringData with placeholders, not data", d)
		}
	}
	dep := only(t, manifests(t), "Deployment")
	pod := podSpec(dep.obj)
	c, _ := list(pod, "containers")[0].(map[string]any)
	need := map[string][]string{}
	for _, e := range list(c, "env") {
		if ref := mapAt(e, "valueFrom", "secretKeyRef"); ref != nil {
			need[str(ref, "name")] = append(need[str(ref, "name")], str(ref, "key"))
		}
	}
	for _, v := range list(pod, "volumes") {
		name := str(v, "secret", "secretName")
		for _, item := range list(v, "secret", "items") {
			need[name] = append(need[name], str(item, "key"))
		}
	}
	if len(need) < 3 {
		t.Errorf("the Deployment reads %d Secrets, want the database URL, the signing key and the seal key", len(need))
	}
	for name, ks := range need {
		for _, k := range ks {
			if !slices.Contains(keys[name], k) {
				t.Errorf("the Deployment reads key %s of Secret %s, which %s does not show", k, name, exampleFile)
			}
		}
	}
}

// TestChecksCanFail breaks copies of the manifests one way at a time and
// expects the checks above to notice each.
func TestChecksCanFail(t *testing.T) {
	docs := manifests(t)
	dep := only(t, docs, "Deployment")
	container := func(m map[string]any) map[string]any {
		c, _ := list(podSpec(m), "containers")[0].(map[string]any)
		return c
	}
	for _, tc := range []struct {
		name    string
		check   func(map[string]any) []string
		breakIt func(m map[string]any)
	}{
		{"writable root filesystem", checkSecurity, func(m map[string]any) {
			mapAt(container(m), "securityContext")["readOnlyRootFilesystem"] = false
		}},
		{"privilege escalation unset", checkSecurity, func(m map[string]any) {
			delete(mapAt(container(m), "securityContext"), "allowPrivilegeEscalation")
		}},
		{"capabilities kept", checkSecurity, func(m map[string]any) {
			mapAt(container(m), "securityContext", "capabilities")["drop"] = []any{"NET_RAW"}
		}},
		{"root user", checkSecurity, func(m map[string]any) {
			mapAt(container(m), "securityContext")["runAsUser"] = float64(0)
		}},
		{"root allowed", checkSecurity, func(m map[string]any) {
			mapAt(container(m), "securityContext")["runAsNonRoot"] = false
		}},
		{"liveness on /readyz", checkProbes, func(m map[string]any) {
			mapAt(container(m), "livenessProbe", "httpGet")["path"] = "/readyz"
		}},
		{"readiness on another port", checkProbes, func(m map[string]any) {
			mapAt(container(m), "readinessProbe", "httpGet")["port"] = float64(8080)
		}},
		{"no startup probe", checkProbes, func(m map[string]any) {
			delete(container(m), "startupProbe")
		}},
		{"one replica", checkServer, func(m map[string]any) {
			mapAt(m, "spec")["replicas"] = float64(1)
		}},
		{"no --advertise", checkServer, func(m map[string]any) {
			c := container(m)
			args := stringsOf(list(c, "args"))
			i := slices.Index(args, "--advertise")
			var kept []any
			for j, a := range args {
				if j != i && j != i+1 {
					kept = append(kept, a)
				}
			}
			c["args"] = kept
		}},
		{"undefined variable", checkServer, func(m map[string]any) {
			c := container(m)
			var kept []any
			for _, e := range list(c, "env") {
				if str(e, "name") != "POD_IP" {
					kept = append(kept, e)
				}
			}
			c["env"] = kept
		}},
		{"signing key writable", checkServer, func(m map[string]any) {
			for _, mt := range list(container(m), "volumeMounts") {
				if str(mt, "name") == "signing-key" {
					mt.(map[string]any)["readOnly"] = false
				}
			}
		}},
		{"no /tmp", checkServer, func(m map[string]any) {
			c := container(m)
			var kept []any
			for _, mt := range list(c, "volumeMounts") {
				if str(mt, "mountPath") != "/tmp" {
					kept = append(kept, mt)
				}
			}
			c["volumeMounts"] = kept
		}},
		{"no limits", checkServer, func(m map[string]any) {
			delete(mapAt(container(m), "resources"), "limits")
		}},
		{"no spread", checkSpread, func(m map[string]any) {
			delete(podSpec(m), "topologySpreadConstraints")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := deepCopy(t, dep.obj)
			if p := tc.check(m); len(p) != 0 {
				t.Fatalf("the unbroken Deployment already fails: %v", p)
			}
			tc.breakIt(m)
			if len(tc.check(m)) == 0 {
				t.Error("the check did not notice")
			}
		})
	}

	pods := podLabels(dep.obj)
	if selects(map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "other"}}, pods) {
		t.Error("selects accepts a selector with another value")
	}
	if selects(map[string]any{}, pods) {
		t.Error("selects accepts an empty selector")
	}
	pols := func() []map[string]any {
		var out []map[string]any
		for _, d := range ofKind(docs, "NetworkPolicy") {
			out = append(out, deepCopy(t, d.obj))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		breakIt func([]map[string]any) []map[string]any
	}{
		{"no policies", func([]map[string]any) []map[string]any { return nil }},
		{"ingress only", func(ps []map[string]any) []map[string]any {
			for _, p := range ps {
				mapAt(p, "spec")["policyTypes"] = []any{"Ingress"}
			}
			return ps
		}},
		{"egress anywhere", func(ps []map[string]any) []map[string]any {
			for _, p := range ps {
				if eg := list(p, "spec", "egress"); len(eg) > 0 {
					mapAt(p, "spec")["egress"] = append(eg, map[string]any{"to": []any{map[string]any{"ipBlock": map[string]any{"cidr": "0.0.0.0/0"}}}, "ports": []any{map[string]any{"port": float64(443)}}})
				}
			}
			return ps
		}},
		{"ingress from everywhere", func(ps []map[string]any) []map[string]any {
			for _, p := range ps {
				if in := list(p, "spec", "ingress"); len(in) > 0 {
					in[0].(map[string]any)["from"] = []any{map[string]any{"namespaceSelector": map[string]any{}}}
				}
			}
			return ps
		}},
	} {
		t.Run("NetworkPolicy/"+tc.name, func(t *testing.T) {
			if p := checkNetworkPolicies(pols(), pods); len(p) != 0 {
				t.Fatalf("the unbroken policies already fail: %v", p)
			}
			if len(checkNetworkPolicies(tc.breakIt(pols()), pods)) == 0 {
				t.Error("the check did not notice")
			}
		})
	}
}

// --- The Dockerfile ------------------------------------------------------

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(t, "#") {
			continue // a comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(t, "\\"); ok {
			cur.WriteString(s)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(t)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// stages splits instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

// fromImage returns a FROM's image, without --platform and AS name.
func fromImage(args string) string {
	for f := range strings.FieldsSeq(args) {
		if !strings.HasPrefix(f, "--") {
			return f
		}
	}
	return ""
}

func last(stage []instruction, cmd string) (string, bool) {
	for i := len(stage) - 1; i >= 0; i-- {
		if stage[i].cmd == cmd {
			return stage[i].args, true
		}
	}
	return "", false
}

// execForm decodes an instruction's exec (JSON) form; nil when it is not.
func execForm(args string) []string {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		return nil
	}
	return v
}

// checkDockerfile: the final stage is distroless nonroot (or scratch) with
// a numeric non-root USER, the ENTRYPOINT /airlock and the default server
// CMD; the build stage is golang:1.26 and builds a static, trimmed,
// versioned binary that the final stage copies to /airlock.
func checkDockerfile(text string) []string {
	var problems []string
	st := stages(parseDockerfile(text))
	if len(st) < 2 {
		return []string{fmt.Sprintf("%d stages, want a build stage and a final stage", len(st))}
	}
	build, final := st[0], st[len(st)-1]
	if img := fromImage(build[0].args); img != "golang:1.26" && !strings.HasPrefix(img, "golang:1.26@sha256:") {
		problems = append(problems, fmt.Sprintf("the build stage is FROM %s, want golang:1.26", img))
	}
	var buildCmd string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildCmd = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X github.com/airlock-dev/airlock/internal/server.Version=${VERSION}", "./cmd/airlock"} {
		if !strings.Contains(buildCmd, want) {
			problems = append(problems, fmt.Sprintf("the go build step %q lacks %q", buildCmd, want))
		}
	}
	img := fromImage(final[0].args)
	if img != "gcr.io/distroless/static-debian12:nonroot" && img != "scratch" &&
		!strings.HasPrefix(img, "gcr.io/distroless/static-debian12:nonroot@sha256:") {
		problems = append(problems, fmt.Sprintf("the final stage is FROM %s, want gcr.io/distroless/static-debian12:nonroot or scratch", img))
	}
	// scratch has no /etc/passwd: a named user would not resolve, and a
	// numeric one is what runAsNonRoot can check anyway.
	user, _ := last(final, "USER")
	if uid, _, _ := strings.Cut(user, ":"); uid != "65532" {
		problems = append(problems, fmt.Sprintf("the final stage runs as USER %q, want the numeric non-root UID 65532", user))
	}
	if ep, _ := last(final, "ENTRYPOINT"); !slices.Equal(execForm(ep), []string{"/airlock"}) {
		problems = append(problems, fmt.Sprintf("ENTRYPOINT %s, want [\"/airlock\"]", ep))
	}
	if cmd, _ := last(final, "CMD"); !slices.Equal(execForm(cmd), []string{"server", "--data", dataDir, "--listen", fmt.Sprintf("0.0.0.0:%d", port)}) {
		problems = append(problems, fmt.Sprintf("CMD %s, want [\"server\", \"--data\", %q, \"--listen\", \"0.0.0.0:%d\"]", cmd, dataDir, port))
	}
	if exp, _ := last(final, "EXPOSE"); exp != fmt.Sprint(port) && exp != fmt.Sprintf("%d/tcp", port) {
		problems = append(problems, fmt.Sprintf("EXPOSE %q, want %d", exp, port))
	}
	var copied bool
	for _, in := range final {
		if in.cmd == "COPY" && strings.Contains(in.args, "--from=") && strings.HasSuffix(in.args, " /airlock") {
			copied = true
		}
	}
	if !copied {
		problems = append(problems, "the final stage does not COPY the binary from the build stage to /airlock")
	}
	return problems
}

func readDockerfile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestDockerfile(t *testing.T) {
	for _, p := range checkDockerfile(readDockerfile(t)) {
		t.Error(p)
	}
}

func TestDockerfileCheckCanFail(t *testing.T) {
	good := readDockerfile(t)
	for _, tc := range []struct{ name, old, new string }{
		{"root user", "USER 65532:65532", "USER root"},
		{"no user", "USER 65532:65532", ""},
		{"another base", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12"},
		{"shell entrypoint", `ENTRYPOINT ["/airlock"]`, `ENTRYPOINT /airlock`},
		{"cgo", "CGO_ENABLED=0", "CGO_ENABLED=1"},
		{"another port", "EXPOSE 8640", "EXPOSE 8080"},
		{"a later stage", "CMD [", "FROM debian:12\nCMD ["},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the Dockerfile holds no %q to break", tc.old)
			}
			if len(checkDockerfile(strings.Replace(good, tc.old, tc.new, 1))) == 0 {
				t.Errorf("replacing %q with %q went unnoticed", tc.old, tc.new)
			}
		})
	}
}
