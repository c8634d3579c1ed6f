package deploy_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// repoRoot is the main module's root, two levels above this module.
const repoRoot = "../.."

var (
	buildOnce sync.Once
	originBin string
	buildErr  error
)

// origin builds the real origin binary once per test binary.
func origin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploytest-")
		if err != nil {
			buildErr = err
			return
		}
		originBin = filepath.Join(dir, "edgepoll-origin")
		cmd := exec.Command("go", "build", "-o", originBin, "./origin/cmd/origin")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build origin: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return originBin
}

// originEnvNames is every environment variable the origin reads, taken
// from its main.go, plus what the Go runtime reads.
func originEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "origin", "cmd", "origin", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true}
	re := regexp.MustCompile(`(?:getenv\(|envOr\(getenv, )"([A-Z_]+)"`)
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		names[m[1]] = true
	}
	for _, must := range []string{"REDIS_URL", "INGEST_KEYS", "ADMIN_TOKEN", "LISTEN_ADDR", "DURABILITY"} {
		if !names[must] {
			t.Fatalf("origin/cmd/origin/main.go no longer reads %s (found %v): update this test and the deploy files", must, names)
		}
	}
	return names
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRedis runs a redis-server with appendonly yes and appendfsync
// always (what DURABILITY=fsync needs) and returns its redis:// URL.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed (make deps installs it): %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
		"--appendfsync", "always", "--dir", t.TempDir(), "--protected-mode", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return "redis://" + addr + "/0"
			}
		}
		select {
		case <-done:
			t.Fatalf("redis-server exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer PING: %s", logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// runOrigin starts the origin with exactly env (nothing inherited but
// PATH). It returns the exit code if the origin exits within its start-up,
// or -1 once it answers /readyz 200 on listen (then it is stopped at the
// end of the test), and its output.
func runOrigin(t *testing.T, env map[string]string, listen string) (int, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(origin(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range slices.Sorted(mapsKeys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return cmd.ProcessState.ExitCode(), &out
		default:
		}
		if resp, err := client.Get("http://" + listen + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return -1, &out
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("origin neither exited nor became ready within 20 s:\n%s", out.String())
	return 0, nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// get fails the test unless GET url answers want.
func get(t *testing.T, url string, header http.Header, want int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header = header
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, want)
	}
}

// withSecrets returns env with its secrets replaced by generated ones of
// the shape the deploy files give (the same ingest key id).
func withSecrets(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	e := maps(env)
	kid, _, ok := strings.Cut(e["INGEST_KEYS"], "=")
	if !ok {
		t.Fatalf("INGEST_KEYS %q is not kid=secret", e["INGEST_KEYS"])
	}
	e["INGEST_KEYS"] = kid + "=" + randomHex(t, 32)
	e["ADMIN_TOKEN"] = randomHex(t, 16)
	e["INVITE_KEY"] = randomHex(t, 32)
	return e
}

// checkPlaceholdersRefused starts the origin with each placeholder secret
// the deploy files ship (the others valid, Redis live) and requires it to
// refuse it: exit 2 naming the problem, never a running origin.
func checkPlaceholdersRefused(t *testing.T, env map[string]string, redisURL string) {
	t.Helper()
	for name, says := range map[string]string{"INGEST_KEYS": "ingest keys", "ADMIN_TOKEN": "admin token", "INVITE_KEY": "invite key"} {
		e := withSecrets(t, env)
		e[name] = env[name]
		e["REDIS_URL"] = redisURL
		listen := freeAddr(t)
		e["LISTEN_ADDR"] = listen
		code, out := runOrigin(t, e, listen)
		if code != 2 || !strings.Contains(out.String(), says) {
			t.Errorf("the placeholder %s=%s must be refused with exit 2; got exit %d:\n%s", name, env[name], code, out.String())
		}
	}
}

// checkStarts starts the origin with env and generated secrets, and checks
// the health paths and the admin token.
func checkStarts(t *testing.T, env map[string]string, redisURL string, paths ...string) {
	t.Helper()
	e := withSecrets(t, env)
	e["REDIS_URL"] = redisURL
	listen := freeAddr(t)
	e["LISTEN_ADDR"] = listen
	code, out := runOrigin(t, e, listen)
	if code != -1 {
		t.Fatalf("origin exited %d with the deploy files' environment:\n%s", code, out.String())
	}
	for _, p := range paths {
		get(t, "http://"+listen+p, nil, http.StatusOK)
	}
	get(t, "http://"+listen+"/v1/admin/polls", http.Header{"Authorization": {"Bearer " + e["ADMIN_TOKEN"]}}, http.StatusOK)
	if !strings.Contains(out.String(), `"durability":"`+e["DURABILITY"]+`"`) {
		t.Fatalf("origin log lacks durability %s:\n%s", e["DURABILITY"], out.String())
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// unit is a parsed systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// parseEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does
// for the simple form these files use (no quotes, no continuation).
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(v, `"'\`) {
			t.Fatalf("%s:%d: want KEY=VALUE without quotes: %q", path, i+1, line)
		}
		env[k] = v
	}
	return env
}

const unitPath = "systemd/edgepoll-origin.service"

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, unitPath)
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("want [Unit], [Service] and [Install] sections, got %v", slices.Collect(func(y func(string) bool) {
			for k := range u {
				if !y(k) {
					return
				}
			}
		}))
	}
	// The sandbox and restart policy the deployment promises.
	for key, want := range map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "", "MemoryDenyWriteExecute": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "Restart": "on-failure", "RestartPreventExitStatus": "2",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
		"SystemCallArchitectures": "native", "KillSignal": "SIGTERM", "EnvironmentFile": "/etc/edgepoll/origin.env",
	} {
		if got := svc[key]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", key, got, want)
		}
	}
	if got := svc["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("[Service] SystemCallFilter = %q, want @system-service first", got)
	}
	// SIGTERM drains for the origin's -shutdown-timeout (30 s): systemd must wait longer.
	if got := svc["TimeoutStopSec"]; len(got) != 1 || mustDuration(t, got[0]) <= 30*time.Second {
		t.Errorf("[Service] TimeoutStopSec = %q, want more than the origin's 30 s shutdown timeout", got)
	}

	env := map[string]string{}
	names := originEnvNames(t)
	for _, line := range svc["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Environment=%s: %q is not KEY=VALUE", line, kv)
			}
			env[k] = v
		}
	}
	// EnvironmentFile= takes precedence over Environment=.
	for k, v := range parseEnvFile(t, "systemd/origin.env.example") {
		env[k] = v
	}
	for k := range env {
		if !names[k] {
			t.Errorf("the unit sets %s, which the origin does not read", k)
		}
	}
	if t.Failed() {
		return
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Fatal("systemd-analyze is not installed: run make deps (Debian: apt-get install systemd)")
		}
		// verify checks ExecStart's binary exists: point it at a real build.
		data, err := os.ReadFile(unitPath)
		if err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs("systemd/origin.env.example")
		text := strings.Replace(string(data), "ExecStart=/usr/local/bin/edgepoll-origin", "ExecStart="+origin(t), 1)
		text = strings.Replace(text, "EnvironmentFile=/etc/edgepoll/origin.env", "EnvironmentFile="+abs, 1)
		tmp := filepath.Join(t.TempDir(), "edgepoll-origin.service")
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", tmp).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
		// Exposure 0-10 (shown), threshold in tenths: fail above 2.0 ("OK").
		out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", tmp).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security: exposure above 2.0 or an error: %v\n%s", err, out)
		}
		if m := regexp.MustCompile(`Overall exposure level for \S+: (\S+)`).FindSubmatch(out); m != nil {
			t.Logf("systemd-analyze security: overall exposure %s", m[1])
		}
	})

	t.Run("origin starts from the unit's environment", func(t *testing.T) {
		redisURL := startRedis(t)
		checkPlaceholdersRefused(t, env, redisURL)
		checkStarts(t, env, redisURL, "/healthz", "/readyz")
	})
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// manifests are the decoded Kubernetes objects, one of each kind.
type manifests struct {
	ns     *corev1.Namespace
	secret *corev1.Secret
	deploy *appsv1.Deployment
	svc    *corev1.Service
	hpa    *autoscalingv2.HorizontalPodAutoscaler
	pdb    *policyv1.PodDisruptionBudget
}

// loadManifests decodes every kubernetes/*.yaml strictly into the real API
// types: an unknown or misspelt field, a wrong type, a bad quantity or a
// duplicate key fails.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s doc %d: %v", f, i+1, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				m.ns = new(corev1.Namespace)
				obj = m.ns
			case "v1 Secret":
				m.secret = new(corev1.Secret)
				obj = m.secret
			case "apps/v1 Deployment":
				m.deploy = new(appsv1.Deployment)
				obj = m.deploy
			case "v1 Service":
				m.svc = new(corev1.Service)
				obj = m.svc
			case "autoscaling/v2 HorizontalPodAutoscaler":
				m.hpa = new(autoscalingv2.HorizontalPodAutoscaler)
				obj = m.hpa
			case "policy/v1 PodDisruptionBudget":
				m.pdb = new(policyv1.PodDisruptionBudget)
				obj = m.pdb
			default:
				t.Fatalf("%s doc %d: unexpected %s %s", f, i+1, tm.APIVersion, tm.Kind)
			}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s doc %d (%s): %v", f, i+1, tm.Kind, err)
			}
		}
	}
	if m.ns == nil || m.secret == nil || m.deploy == nil || m.svc == nil || m.hpa == nil || m.pdb == nil {
		t.Fatalf("want a Namespace, Secret, Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget: %+v", m)
	}
	return m
}

// decodeStrict decodes one YAML document into obj the way the API server's
// strict field validation does: YAML to JSON refusing duplicate keys, then
// sigs.k8s.io/json, which matches field names case-sensitively (encoding/json
// would take "readOnlyRootFileSystem" for readOnlyRootFilesystem) and
// reports unknown and duplicate fields.
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decoding: %w", errors.Join(strict...))
	}
	return nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	d := m.deploy
	pod := d.Spec.Template.Spec
	ns := m.ns.Name

	// Names, namespaces and labels as the API server validates them.
	for _, o := range []*metav1.ObjectMeta{&m.ns.ObjectMeta, &m.secret.ObjectMeta, &d.ObjectMeta, &m.svc.ObjectMeta, &m.hpa.ObjectMeta, &m.pdb.ObjectMeta, &d.Spec.Template.ObjectMeta} {
		if o != &d.Spec.Template.ObjectMeta {
			if errs := validation.IsDNS1123Label(o.Name); len(errs) > 0 {
				t.Errorf("name %q: %v", o.Name, errs)
			}
		}
		if o != &m.ns.ObjectMeta && o != &d.Spec.Template.ObjectMeta && o.Namespace != ns {
			t.Errorf("%s: namespace %q, want %q", o.Name, o.Namespace, ns)
		}
		for k, v := range o.Labels {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s: label %s=%s: %v", o.Name, k, v, errs)
			}
		}
	}

	// The Deployment selects its own pods; the Service and the PDB select them too.
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("deployment selector: %v", err)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	if !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %s does not match its pod labels %v", sel, podLabels)
	}
	if !labels.SelectorFromSet(m.svc.Spec.Selector).Matches(podLabels) || len(m.svc.Spec.Selector) == 0 {
		t.Errorf("the Service's selector %v does not select the origin's pods", m.svc.Spec.Selector)
	}
	if psel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector); err != nil || psel.Empty() || !psel.Matches(podLabels) {
		t.Errorf("the PodDisruptionBudget's selector does not select the origin's pods: %v", err)
	}
	if (m.pdb.Spec.MaxUnavailable == nil) == (m.pdb.Spec.MinAvailable == nil) {
		t.Errorf("the PodDisruptionBudget needs exactly one of minAvailable and maxUnavailable")
	}
	ref := m.hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("the HPA scales %+v, not the Deployment %s", ref, d.Name)
	}
	if m.hpa.Spec.MinReplicas == nil || *m.hpa.Spec.MinReplicas < 2 || m.hpa.Spec.MaxReplicas < *m.hpa.Spec.MinReplicas {
		t.Errorf("the HPA's replicas: min %v max %d", m.hpa.Spec.MinReplicas, m.hpa.Spec.MaxReplicas)
	}

	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	var httpPort int32
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	if httpPort == 0 {
		t.Fatalf("the container has no port named http")
	}
	if tp := m.svc.Spec.Ports[0].TargetPort; tp.String() != "http" && tp.IntValue() != int(httpPort) {
		t.Errorf("the Service targets %s, not the container's http port", tp.String())
	}
	// Probes: liveness on /healthz (never /readyz: a Redis outage must not
	// restart every origin), readiness on /readyz, both on the http port.
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet probe", name)
			continue
		}
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if p.HTTPGet.Path != want || (p.HTTPGet.Port.String() != "http" && p.HTTPGet.Port.IntValue() != int(httpPort)) {
			t.Errorf("%s probe: GET %s on %s, want %s on the http port", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), want)
		}
	}
	// Requests are what the HPA's utilization is computed against.
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("want cpu and memory requests and a memory limit: %+v", c.Resources)
	}
	// Pod Security "restricted", as the Namespace enforces.
	if m.ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("the Namespace does not enforce the restricted Pod Security level")
	}
	psc, sc := pod.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0:
		t.Errorf("pod securityContext: want runAsNonRoot and a non-zero runAsUser")
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("pod securityContext: want seccompProfile RuntimeDefault")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("container securityContext: want readOnlyRootFilesystem")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("container securityContext: want allowPrivilegeEscalation false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("container securityContext: want capabilities drop [ALL], add none")
	}
	// SIGTERM drains for the origin's 30 s shutdown timeout, after preStop.
	grace := int64(30)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		grace += c.Lifecycle.PreStop.Sleep.Seconds
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= grace {
		t.Errorf("terminationGracePeriodSeconds %v: want more than %d s (preStop plus the origin's drain)", pod.TerminationGracePeriodSeconds, grace)
	}

	// The environment: only variables the origin reads; secrets from the Secret.
	names := originEnvNames(t)
	env := map[string]string{}
	for _, e := range c.Env {
		if !names[e.Name] {
			t.Errorf("the container sets %s, which the origin does not read", e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			v, ok := m.secret.StringData[r.Key]
			if r.Name != m.secret.Name || !ok {
				t.Errorf("%s: secret %s key %s is not in the Secret %s", e.Name, r.Name, r.Key, m.secret.Name)
			}
			env[e.Name] = v
		default:
			t.Errorf("%s: only values and secretKeyRefs are expected", e.Name)
		}
	}
	for _, secret := range []string{"INGEST_KEYS", "ADMIN_TOKEN", "INVITE_KEY", "REDIS_URL"} {
		if e := envVar(c.Env, secret); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s must come from the Secret", secret)
		}
	}
	_, port, err := net.SplitHostPort(env["LISTEN_ADDR"])
	if err != nil || port != strconv.Itoa(int(httpPort)) {
		t.Errorf("LISTEN_ADDR %q does not listen on the container's port %d", env["LISTEN_ADDR"], httpPort)
	}
	if t.Failed() {
		return
	}

	t.Run("origin starts from the Deployment's environment", func(t *testing.T) {
		redisURL := startRedis(t)
		checkPlaceholdersRefused(t, env, redisURL)
		checkStarts(t, env, redisURL, c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path, c.StartupProbe.HTTPGet.Path)
	})
}

func envVar(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}

// TestStrictDecodingCatchesMistakes proves the manifest check is not
// vacuous: a misspelt field, a bad quantity and a wrong type each fail.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	data, err := os.ReadFile("kubernetes/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string][2]string{
		"misspelt field": {"readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true"},
		"bad quantity":   {"memory: 512Mi", "memory: 512MB!"},
		"wrong type":     {"replicas: 3", "replicas: three"},
		"unknown field":  {"  replicas: 3", "  replicas: 3\n  replica: 3"},
		"duplicate key":  {"  replicas: 3", "  replicas: 3\n  replicas: 4"},
	} {
		t.Run(name, func(t *testing.T) {
			if !bytes.Contains(data, []byte(edit[0])) {
				t.Fatalf("deployment.yaml no longer contains %q", edit[0])
			}
			bad := bytes.Replace(data, []byte(edit[0]), []byte(edit[1]), 1)
			if err := decodeStrict(bad, new(appsv1.Deployment)); err == nil {
				t.Fatalf("%s was accepted", name)
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}
}
