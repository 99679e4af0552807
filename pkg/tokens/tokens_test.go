package tokens

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

const (
	aliceTok = "alice-token-0123456789"
	bobTok   = "bob-token-0123456789ab"
)

func sumHex(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string // problems (field paths and words), none when valid
	}{
		{"clear and digest", "tokens:\n  - {name: alice, role: admin, token: " + aliceTok + "}\n  - {name: bob, role: viewer, token_sha256: " + sumHex(bobTok) + "}\n", nil},
		{"empty", "", []string{"tokens: must list at least one token"}},
		{"unknown field", "tokens:\n  - {name: a, role: admin, secret: x}\n", []string{"not a token file", "secret"}},
		{"bad role", "tokens:\n  - {name: a, role: root, token: " + aliceTok + "}\n", []string{`tokens[0].role: "root" is not one of`}},
		{"both", "tokens:\n  - {name: a, role: admin, token: " + aliceTok + ", token_sha256: " + sumHex(aliceTok) + "}\n", []string{"tokens[0]: has both"}},
		{"neither", "tokens:\n  - {name: a, role: admin}\n", []string{"tokens[0]: has neither"}},
		{"short", "tokens:\n  - {name: a, role: admin, token: short}\n", []string{"tokens[0].token: must have at least 16"}},
		{"bad digest", "tokens:\n  - {name: a, role: admin, token_sha256: abc}\n", []string{"tokens[0].token_sha256: must be 64 hex digits"}},
		{"bad name", "tokens:\n  - {name: 'a b', role: admin, token: " + aliceTok + "}\n", []string{"tokens[0].name"}},
		{"dup name", "tokens:\n  - {name: a, role: admin, token: " + aliceTok + "}\n  - {name: a, role: viewer, token: " + bobTok + "}\n", []string{`tokens[1].name: "a" is also the name of tokens[0]`}},
		{"dup token", "tokens:\n  - {name: a, role: admin, token: " + aliceTok + "}\n  - {name: b, role: viewer, token_sha256: " + sumHex(aliceTok) + "}\n", []string{"tokens[1]: has the same token as tokens[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set, err := Parse([]byte(tc.yaml))
			if tc.want == nil {
				if err != nil || set.Len() == 0 {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), aliceTok) || strings.Contains(err.Error(), sumHex(aliceTok)) {
				t.Errorf("error quotes a token: %q", err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	set, err := Parse([]byte("tokens:\n  - {name: alice, role: admin, token: " + aliceTok + "}\n  - {name: bob, role: viewer, token_sha256: " + sumHex(bobTok) + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header, name string
		role         Role
	}{
		{"Bearer " + aliceTok, "alice", Admin},
		{"bearer\t" + bobTok + " ", "bob", Viewer},
		{"Bearer " + aliceTok + "x", "", ""},
		{"Bearer " + aliceTok[1:], "", ""},
		{"Basic " + aliceTok, "", ""},
		{"Bearer ", "", ""},
		{"", "", ""},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		tok, ok := set.Authenticate(r)
		if ok != (tc.name != "") || tok.Name != tc.name || tok.Role != tc.role {
			t.Errorf("%q: got %+v %v, want %s/%s", tc.header, tok, ok, tc.name, tc.role)
		}
	}
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Add("Authorization", "Bearer "+aliceTok)
	r.Header.Add("Authorization", "Bearer "+aliceTok)
	if _, ok := set.Authenticate(r); ok {
		t.Error("two Authorization headers accepted")
	}
	if _, ok := NewSet().Lookup(""); ok {
		t.Error("empty set accepted the empty token")
	}
}

// writeFile replaces the file as editors and ConfigMaps do: a new file
// renamed over the old one, so a reader never sees half of it.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSourceReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeFile(t, path, "tokens:\n  - {name: alice, role: admin, token: "+aliceTok+"}\n")
	reg := prometheus.NewRegistry()
	src, err := NewSource(SourceOptions{Path: path, Interval: 10 * time.Millisecond, Registry: reg,
		Static: []Token{New("admin-token", Admin, "static-token-0123456789")}, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	src.Start()
	t.Cleanup(func() { _ = src.Close(t.Context()) })
	has := func(tok string) bool { _, ok := src.Current().Lookup(tok); return ok }
	if !has(aliceTok) || !has("static-token-0123456789") || has(bobTok) {
		t.Fatal("initial set wrong")
	}

	writeFile(t, path, "tokens:\n  - {name: bob, role: viewer, token: "+bobTok+"}\n")
	waitFor(t, "bob's token to work", func() bool { return has(bobTok) })
	if has(aliceTok) {
		t.Error("alice's token still works after it left the file")
	}
	if !has("static-token-0123456789") {
		t.Error("static token lost on reload")
	}

	writeFile(t, path, "tokens:\n  - {name: carol, role: superuser, token: carol-token-0123456789}\n")
	waitFor(t, "the reload error to be counted", func() bool {
		return testutil.ToFloat64(src.reloads.WithLabelValues("error")) == 1
	})
	if !has(bobTok) || has("carol-token-0123456789") {
		t.Error("a bad file changed the set in force")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the missing file to be counted", func() bool {
		return testutil.ToFloat64(src.reloads.WithLabelValues("error")) == 2
	})
	if !has(bobTok) {
		t.Error("a removed file dropped the set in force")
	}
	if _, err := NewSource(SourceOptions{Path: path}); err == nil {
		t.Error("NewSource accepted a missing file")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("tokens:\n  - {name: alice, role: admin, token: " + aliceTok + "}\n"))
	f.Add([]byte("tokens:\n  - {name: b, role: viewer, token_sha256: " + sumHex(bobTok) + "}\n"))
	f.Add([]byte("tokens: [{}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse(data)
		if err == nil && set.Len() == 0 {
			t.Fatal("accepted a file with no tokens")
		}
	})
}

// BenchmarkAuthenticate measures one check of a request's token against
// sets of 1 and 100 tokens (every entry is compared).
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			toks := make([]Token, n)
			for i := range toks {
				toks[i] = New(fmt.Sprintf("t%d", i), Viewer, fmt.Sprintf("token-%d-0123456789", i))
			}
			set := NewSet(toks...)
			r, _ := http.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer token-0-0123456789")
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := set.Authenticate(r); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
