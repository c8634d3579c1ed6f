//go:build linux

package audience

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/edgepoll/edgepoll/edge/edgetest"
	"github.com/edgepoll/edgepoll/internal/browsertest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
)

// jwtVectors is shared/jwt/testdata/vectors.json: a JWKS and JWTs made by
// jose, an implementation nobody here wrote, at a fixed clock in the past.
type jwtVectors struct {
	Iss   string                           `json:"iss"`
	Aud   string                           `json:"aud"`
	JWKS  struct{ Keys []json.RawMessage } `json:"jwks"`
	Cases []struct{ Name, JWT, Want string }
}

func loadJWTVectors(t *testing.T) *jwtVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(browsertest.Root(), "shared", "jwt", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v jwtVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// vector is the JWT of the named case.
func (v *jwtVectors) vector(t *testing.T, name string) string {
	t.Helper()
	for _, c := range v.Cases {
		if c.Name == name {
			return c.JWT
		}
	}
	t.Fatalf("no JWT vector %q", name)
	return ""
}

// appJWT is a JWT for the signed poll, valid now for five minutes, signed
// with the edge table's key (edgetest: kid t1).
func appJWT(sub string) string {
	now := time.Now().Unix()
	claims := `{"iss":"` + edgetest.JWTIssuer + `","aud":"` + edgetest.JWTAudience + `","sub":"` + sub +
		`","iat":` + strconv.FormatInt(now, 10) + `,"exp":` + strconv.FormatInt(now+300, 10) + `}`
	return edgetest.SignJWT(`{"alg":"EdDSA","kid":"t1"}`, claims, false)
}

// attachFrame waits for the cross-site iframe showing path and returns a
// context attached to it.
func attachFrame(t *testing.T, ctx context.Context, path string) context.Context {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ts, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range ts {
			if ti.Type == "iframe" && strings.Contains(ti.URL, path) {
				fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(target.ID(ti.TargetID)))
				t.Cleanup(cancel)
				return fctx
			}
		}
	}
	t.Fatalf("no iframe target for %s", path)
	return nil
}

// within bounds each wait: generous, as the machine may be shared.
const within = 20 * time.Second

const (
	codeFormShown = `!document.getElementById("code-form").hidden && document.getElementById("vote-form").hidden`
	formShown     = `!document.getElementById("vote-form").hidden && document.querySelectorAll("#options input").length > 0`
)

// codeErrorIs waits for the code field's error to contain want, marked
// invalid for assistive technology.
func codeErrorIs(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	browsertest.WaitJS(t, ctx, "the code error "+want, `(() => { const e = document.getElementById("code-error"), i = document.getElementById("code");
		return !e.hidden && e.textContent.includes(`+jsString(want)+`) && i.getAttribute("aria-invalid") === "true" &&
			i.getAttribute("aria-describedby").split(" ").includes("code-error") && document.getElementById("vote-form").hidden; })()`, within)
}

// typeCode types code into the field and submits it with Enter.
func typeCode(t *testing.T, ctx context.Context, code string) {
	t.Helper()
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("code").value = ""`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), code), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
}

func vote(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#options input[type=radio]`)), chromedp.Click(chromedp.ID("vote-submit"))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, "the receipt "+what, voted, within)
}

// TestBrowserIdentity runs the voting page for polls that need an invite
// code or a sign-in, in headless Chromium against the harness, an origin
// and Redis: codes typed and from the fragment, used, malformed and
// unknown codes, and the app's JWT from an embedding site, from the
// fragment, and expired.
func TestBrowserIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium against the stack")
	}
	vec := loadJWTVectors(t)
	if vec.Iss != edgetest.JWTIssuer || vec.Aud != edgetest.JWTAudience {
		t.Fatalf("the JWT vectors are for %s/%s, the edge table's for %s/%s", vec.Iss, vec.Aud, edgetest.JWTIssuer, edgetest.JWTAudience)
	}
	// The edge's JWKS: the edge table's key (t1, which signs fresh JWTs
	// here) and the vectors' keys (ed1, ec1: their JWTs are long expired).
	var table struct{ Keys []json.RawMessage }
	if err := json.Unmarshal([]byte(edgetest.JWKSJSON()), &table); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": append(table.Keys, vec.JWKS.Keys...)})

	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	site := "http://" + ln.Addr().String()
	s := startStackWith(t, stackOptions{Allowed: site, HarnessEnv: []string{"JWT_JWKS=" + string(jwks)}})
	edge := s.h.URL()
	b := browsertest.Browser(t)

	createPoll(t, s.admin, shared.Poll{ID: "club", Title: "Members' choice", Identity: shared.IdentityInvite, Options: options("Oak", "Elm", "Ash")}, true)
	createPoll(t, s.admin, shared.Poll{ID: "vip", Title: "Subscribers' pick", Identity: shared.IdentitySigned,
		JWTIssuer: edgetest.JWTIssuer, JWTAudience: edgetest.JWTAudience, Options: options("North", "South")}, true)
	var csv bytes.Buffer
	if _, err := s.admin.CreateInvites(context.Background(), "club", 4, &csv); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, line := range strings.Split(strings.TrimSpace(csv.String()), "\n")[1:] {
		_, c, _ := strings.Cut(line, ",")
		codes = append(codes, c)
	}
	if len(codes) != 4 {
		t.Fatalf("invite CSV %q", csv.String())
	}

	t.Run("invite code typed, keyboard only", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/club")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the code field", codeFormShown, within)
		if browsertest.Eval[bool](t, ctx, `!document.getElementById("vote-form").hidden || !!localStorage.getItem("edgepoll:token:club")`) {
			t.Error("an invite poll offers its options or holds a token before a code")
		}
		if l := browsertest.Eval[string](t, ctx, `document.getElementById("code").labels[0].textContent + " | " + document.getElementById("code-hint").textContent`); !strings.Contains(l, "invite code") || !strings.Contains(l, "20 letters") {
			t.Errorf("the code field's label and hint: %q", l)
		}
		browsertest.Axe(t, ctx, "invite poll, code field")
		for i := 0; i < 20 && browsertest.Eval[string](t, ctx, `document.activeElement.id`) != "code"; i++ {
			if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
				t.Fatal(err)
			}
		}
		if id := browsertest.Eval[string](t, ctx, `document.activeElement.id`); id != "code" {
			t.Fatalf("Tab never reached the code field (focus on %q)", id)
		}
		// Lower case and without dashes: the voter need not type them.
		if err := chromedp.Do(ctx, chromedp.KeyEvent(strings.ToLower(strings.ReplaceAll(codes[0], "-", ""))), chromedp.KeyEvent("\r")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the form after the code", formShown+` && document.getElementById("code-form").hidden && localStorage.getItem("edgepoll:token:club").length > 20`, within)
		if typ := browsertest.Eval[string](t, ctx, `document.activeElement.type`); typ != "radio" {
			t.Errorf("focus on %q after the code, want the first option", typ)
		}
		browsertest.Axe(t, ctx, "invite poll, code accepted")
		if err := chromedp.Do(ctx, chromedp.KeyEvent(" "), chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		if id := browsertest.Eval[string](t, ctx, `document.activeElement.id`); id != "vote-submit" {
			t.Fatalf("focus on %q after Tab, want vote-submit", id)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the receipt", voted, within)
		browsertest.Axe(t, ctx, "invite poll, voted")
		// A reload keeps the token: no code asked again.
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the vote remembered", voted+` && document.getElementById("code-form").hidden`, within)
		browsertest.Shot(t, ctx, "invite-voted", 360)
	})

	t.Run("invite code in the fragment", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/club#code="+codes[1])); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the form from the fragment's code", formShown, within)
		if u := browsertest.Eval[string](t, ctx, `location.href`); strings.Contains(u, "#") || strings.Contains(u, codes[1]) {
			t.Errorf("the code stays in the address bar: %s", u)
		}
		// The tab's history: about:blank, then this page, once.
		if n := browsertest.Eval[int](t, ctx, `history.length`); n != 2 {
			t.Errorf("history.length %d: removing the fragment added an entry", n)
		}
		vote(t, ctx, "with the fragment's code")
	})

	t.Run("used code", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/club")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the code field", codeFormShown, within)
		typeCode(t, ctx, codes[0])
		codeErrorIs(t, ctx, "This code has already been used")
		if id := browsertest.Eval[string](t, ctx, `document.activeElement.id`); id != "code" {
			t.Errorf("focus on %q after the error, want the code field", id)
		}
		browsertest.Axe(t, ctx, "invite poll, used code")
		browsertest.Shot(t, ctx, "invite-used", 360)
		// The error's contrast holds in the dark scheme too.
		if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		})); err != nil {
			t.Fatal(err)
		}
		browsertest.Axe(t, ctx, "invite poll, used code, dark")
		// A used code in the fragment says the same, with the code in the field.
		ctx = browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/club#code="+codes[1])); err != nil {
			t.Fatal(err)
		}
		codeErrorIs(t, ctx, "This code has already been used")
		if v := browsertest.Eval[string](t, ctx, `document.getElementById("code").value.replaceAll("-", "") + location.hash`); v != strings.ReplaceAll(codes[1], "-", "") {
			t.Errorf("field and fragment %q, want the code in the field only", v)
		}
	})

	t.Run("malformed and unknown codes", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/club")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the code field", codeFormShown, within)
		// A mistyped symbol: the check symbols catch it at the edge (400).
		c := []byte(strings.ReplaceAll(codes[2], "-", ""))
		c[19] = invite.Alphabet[(strings.IndexByte(invite.Alphabet, c[19])+1)%32]
		typeCode(t, ctx, string(c))
		codeErrorIs(t, ctx, "mistyped")
		browsertest.Axe(t, ctx, "invite poll, malformed code")
		// Too short to be a code: said before asking the edge.
		typeCode(t, ctx, "7K3Q-M9XD")
		codeErrorIs(t, ctx, "20 letters and digits")
		if e := browsertest.Eval[string](t, ctx, `document.getElementById("code-error").textContent`); strings.Contains(e, "mistyped") {
			t.Errorf("a short code: %q", e)
		}
		// Well formed, but no such code (403).
		unknown, err := invite.New(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		typeCode(t, ctx, unknown.Format())
		codeErrorIs(t, ctx, "We don't know this code")
		browsertest.Axe(t, ctx, "invite poll, unknown code")
		// The refused codes changed nothing: code 2 still votes.
		typeCode(t, ctx, codes[2])
		browsertest.WaitJS(t, ctx, "the form after a good code", formShown+` && document.getElementById("code-error").hidden`, within)
		vote(t, ctx, "after refused codes")
	})

	// The embedding site passes the signed-in user's JWT: as data-jwt, or
	// from window.edgepollJWT.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/attr":
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Members</title></head><body><h1>Tonight</h1>
<script src="%s/embed.js" data-poll="vip" data-title="Poll: subscribers' pick" data-jwt="%s" async></script></body></html>`, edge, html.EscapeString(appJWT("alice")))
		case "/fn":
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Members</title></head><body><h1>Tonight</h1>
<script>window.edgepollJWT = (poll) => new Promise((ok) => setTimeout(() => ok(poll === "vip" ? %s : ""), 50));</script>
<script src="%s/embed.js" data-poll="vip" data-title="Poll: subscribers' pick" async></script></body></html>`, jsString(appJWT("bob")), edge)
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	t.Run("signed via an embed's data-jwt", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/attr")); err != nil {
			t.Fatal(err)
		}
		frame := attachFrame(t, ctx, "/p/vip")
		browsertest.WaitJS(t, frame, "the embedded form after the JWT", formShown+` && document.getElementById("signin").hidden && localStorage.getItem("edgepoll:token:vip").length > 20`, within)
		browsertest.Axe(t, frame, "signed poll, embedded, signed in")
		vote(t, frame, "in the signed embed")
		browsertest.Axe(t, frame, "signed poll, embedded, voted")
		browsertest.WaitJS(t, ctx, "the iframe sized to its content", `document.querySelector("iframe").getBoundingClientRect().height > 200`, within)
		browsertest.Shot(t, ctx, "signed-embed", 360)
	})

	t.Run("signed via window.edgepollJWT", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/fn")); err != nil {
			t.Fatal(err)
		}
		frame := attachFrame(t, ctx, "/p/vip")
		browsertest.WaitJS(t, frame, "the embedded form after the JWT", formShown, within)
		vote(t, frame, "with edgepollJWT's JWT")
	})

	t.Run("a JWT from another window is ignored", func(t *testing.T) {
		// The voting page on its own (not embedded) is framed by nobody:
		// a message claiming to carry a JWT is not believed.
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/vip?embed=1")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the sign-in note", `!document.getElementById("signin").hidden && document.getElementById("signin-text").textContent.length > 0`, within)
		browsertest.Eval[chromedp.Void](t, ctx, `window.postMessage({type: "edgepoll:jwt", poll: "vip", jwt: `+jsString(appJWT("mallory"))+`}, "*")`)
		time.Sleep(time.Second)
		if browsertest.Eval[bool](t, ctx, `!!localStorage.getItem("edgepoll:token:vip") || !document.getElementById("vote-form").hidden`) {
			t.Error("a JWT posted by the page itself bought a token")
		}
	})

	t.Run("signed via the fragment, and without a JWT", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/vip")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the sign-in note", `!document.getElementById("signin").hidden && document.getElementById("signin-text").textContent.includes("open this poll from the app")`, within)
		browsertest.Axe(t, ctx, "signed poll, no sign-in")
		ctx = browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/vip#jwt="+appJWT("carol"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the form from the fragment's JWT", formShown, within)
		if u := browsertest.Eval[string](t, ctx, `location.href`); strings.Contains(u, "#") || strings.Contains(u, "eyJ") {
			t.Errorf("the JWT stays in the address bar: %s", u)
		}
		vote(t, ctx, "with the fragment's JWT")
	})

	t.Run("expired JWT", func(t *testing.T) {
		ctx := browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/vip#jwt="+vec.vector(t, "expired"))); err != nil {
			t.Fatal(err)
		}
		const expired = "Your sign-in has expired, please sign in again in the app"
		browsertest.WaitJS(t, ctx, "the expired message", `document.getElementById("signin-text").textContent.includes(`+jsString(expired)+`) && !document.getElementById("signin").hidden && document.getElementById("vote-form").hidden`, within)
		browsertest.Axe(t, ctx, "signed poll, expired sign-in")
		// Another refusal (a signature from a key the edge does not hold)
		// gets the generic words.
		ctx = browsertest.Tab(t, b)
		if err := chromedp.Do(ctx, chromedp.Navigate(edge+"/p/vip#jwt="+vec.vector(t, "eddsa bad signature (other key)"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, ctx, "the generic sign-in message", `document.getElementById("signin-text").textContent.includes("couldn't confirm your sign-in")`, within)
		browsertest.Shot(t, ctx, "signed-refused", 360)
	})
	t.Logf("axe: %d pages and states checked, %d serious or critical violations", browsertest.AxeChecked.Load(), browsertest.AxeViolations.Load())
}
