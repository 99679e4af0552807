package jwtauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// rawHS256 signs a header and payload given as raw JSON text (so they may
// hold duplicate members, bad UTF-8 or trailing data) with testSecret.
func rawHS256(header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(header)) + "." + enc([]byte(payload))
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte(input))
	return input + "." + enc(m.Sum(nil))
}

// flipTrailingBit returns s with its last base64url character changed in a
// bit the decoder drops: the same bytes in a non-canonical encoding.
func flipTrailingBit(t *testing.T, s string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(s)%4 == 0 || len(s)%4 == 1 {
		t.Fatalf("a part of length %d has no trailing bits", len(s))
	}
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i^1])
}

// attackerJWK is the public RSA key of another provider, as a JWK.
func attackerJWK(t *testing.T, a *testutil.OIDC) map[string]any {
	t.Helper()
	resp, err := http.Get(a.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k["kty"] == "RSA" {
			return k
		}
	}
	t.Fatal("attacker jwks has no RSA key")
	return nil
}

// Every header shape the gateway must refuse, and the ones it must accept,
// through a verifier of every kind of key source. why is a fragment of the
// refusal's cause, so each case is refused for its own reason.
func TestHeaderRules(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	attacker := testutil.StartOIDC(t) // keys nobody trusts; counts its fetches
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	v := mustVerifier(t, p, oidcConfig(o))
	pemCfg := oidcConfig(o)
	pemCfg.Keys = model.JWTKeys{PublicKey: o.PublicKeyPEM("RS256")}
	pemCfg.Algorithms = []string{"RS256"}
	pemV := mustVerifier(t, p, pemCfg)
	hs := mustVerifier(t, p, hsConfig(model.TokenSource{}))

	c := claims(o, clk, nil)
	rs := func(h map[string]any) string { return o.SignWithHeader("RS256", h, c) }
	good := o.Sign("RS256", c)
	parts := strings.Split(good, ".")
	hsClaims := `{"sub":"a","exp":` + itoa(clk.unix(time.Hour)) + `}`
	hsHeader := `{"alg":"HS256","typ":"JWT"}`
	none := testutil.EncodeJWTPart(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."
	confused := testutil.SignHMAC(t, "HS256", []byte(o.PublicKeyPEM("RS256")), map[string]any{"kid": o.KID("RS256")}, c)
	stdAlphabet := strings.NewReplacer("-", "+", "_", "/").Replace(good)
	if stdAlphabet == good {
		t.Fatal("token without - or _: pick another")
	}
	jwk := attackerJWK(t, attacker)
	attackerFetches := attacker.JWKSFetches()

	for _, tc := range []struct {
		name string
		v    *Verifier
		tok  string
		code string // "" accepted
		why  string
	}{
		// Accepted shapes.
		{"typ JWT", v, rs(map[string]any{"typ": "JWT"}), "", ""},
		{"typ absent", v, rs(map[string]any{"typ": nil}), "", ""},
		{"typ jwt lower case", v, rs(map[string]any{"typ": "jwt"}), "", ""},
		{"typ application/jwt", v, rs(map[string]any{"typ": "application/JWT"}), "", ""},
		{"typ at+jwt (RFC 9068)", v, rs(map[string]any{"typ": "at+jwt"}), "", ""},
		{"typ application/at+jwt", v, rs(map[string]any{"typ": "application/at+JWT"}), "", ""},
		{"b64 true", v, rs(map[string]any{"b64": true}), "", ""},
		{"unknown header parameter ignored", v, rs(map[string]any{"foo": map[string]any{"bar": 1}}), "", ""},
		{"x5t ignored", v, rs(map[string]any{"x5t": "abc"}), "", ""},
		{"cty json", v, rs(map[string]any{"cty": "json"}), "", ""},
		{"raw HS header", hs, rawHS256(hsHeader, hsClaims), "", ""},

		// crit: no extension is supported.
		{"crit unknown extension", v, rs(map[string]any{"crit": []string{"http://example.com/ext"}, "http://example.com/ext": true}), CodeTokenInvalid, "does not support"},
		{"crit exp (a claim, not a header parameter)", v, rs(map[string]any{"crit": []string{"exp"}, "exp": 1}), CodeTokenInvalid, "does not support"},
		{"crit empty", v, rs(map[string]any{"crit": []string{}}), CodeTokenInvalid, "crit is empty"},
		{"crit not an array", v, rs(map[string]any{"crit": "ext"}), CodeTokenInvalid, "crit is not an array"},
		{"crit null", v, rs(map[string]any{"crit": json.RawMessage("null")}), CodeTokenInvalid, "crit is not an array"},
		{"crit names an absent parameter", v, rs(map[string]any{"crit": []string{"ext"}}), CodeTokenInvalid, "which the header lacks"},
		{"crit names a JWS parameter", v, rs(map[string]any{"crit": []string{"alg"}}), CodeTokenInvalid, "a parameter of JWS itself"},
		{"crit with a number", v, rs(map[string]any{"crit": []any{1}}), CodeTokenInvalid, "not a parameter name"},
		{"crit b64 with b64 false", v, rs(map[string]any{"crit": []string{"b64"}, "b64": false}), CodeTokenInvalid, "does not support"},
		{"crit, static key", pemV, rs(map[string]any{"crit": []string{"ext"}, "ext": 1}), CodeTokenInvalid, "does not support"},

		// b64 (RFC 7797).
		{"b64 false", v, rs(map[string]any{"b64": false}), CodeTokenInvalid, "unencoded payloads"},
		{"b64 false, HS", hs, rawHS256(`{"alg":"HS256","b64":false}`, hsClaims), CodeTokenInvalid, "unencoded payloads"},
		{"b64 a string", v, rs(map[string]any{"b64": "false"}), CodeTokenInvalid, "b64 is not a boolean"},

		// typ and cty.
		{"typ logout+jwt", v, rs(map[string]any{"typ": "logout+jwt"}), CodeTokenInvalid, "not a JWT access token type"},
		{"typ secevent+jwt", v, rs(map[string]any{"typ": "secevent+jwt"}), CodeTokenInvalid, "not a JWT access token type"},
		{"typ dpop+jwt", v, rs(map[string]any{"typ": "dpop+jwt"}), CodeTokenInvalid, "not a JWT access token type"},
		{"typ JOSE+JSON", v, rs(map[string]any{"typ": "JOSE+JSON"}), CodeTokenInvalid, "not a JWT access token type"},
		{"typ a number", v, rs(map[string]any{"typ": 1}), CodeTokenInvalid, "typ is not a string"},
		{"cty JWT (nested)", v, rs(map[string]any{"cty": "JWT"}), CodeTokenInvalid, "nested tokens"},

		// alg.
		{"alg none", v, none, CodeAlgorithmNotAllowed, "not in the API's list"},
		{"alg none, static key", pemV, none, CodeAlgorithmNotAllowed, "not in the API's list"},
		{"alg missing", v, rs(map[string]any{"alg": nil}), CodeAlgorithmNotAllowed, "alg missing"},
		{"alg not a string", v, rs(map[string]any{"alg": []string{"RS256"}}), CodeAlgorithmNotAllowed, "alg missing or not a string"},
		{"alg RS256 with trailing space", v, rs(map[string]any{"alg": "RS256 "}), CodeAlgorithmNotAllowed, "not in the API's list"},
		{"HS256 with the RSA public key as secret", v, confused, CodeAlgorithmNotAllowed, "not in the API's list"},
		{"HS256 with the RSA public key as secret, static key", pemV, confused, CodeAlgorithmNotAllowed, "not in the API's list"},

		// kid is a map key, nothing else.
		{"kid with a path", v, rs(map[string]any{"kid": "../../../../etc/passwd"}), CodeUnknownKey, "kid not in the key set"},
		{"kid with SQL", v, rs(map[string]any{"kid": "x' OR '1'='1' --"}), CodeUnknownKey, "kid not in the key set"},
		{"kid with NUL and a URL", v, rs(map[string]any{"kid": "\x00http://127.0.0.1/%00"}), CodeUnknownKey, "kid not in the key set"},
		{"kid null", v, rs(map[string]any{"kid": json.RawMessage("null")}), CodeTokenInvalid, "kid is not a string"},
		{"kid an object", v, rs(map[string]any{"kid": map[string]any{"$ne": ""}}), CodeTokenInvalid, "kid is not a string"},

		// Keys named by the token are never fetched nor trusted.
		{"jku to another provider", v, attacker.SignWithHeader("RS256", map[string]any{"jku": attacker.JWKSURL(), "kid": "attacker-1"}, c), CodeUnknownKey, "kid not in the key set"},
		{"jku with a trusted kid", v, attacker.SignWithHeader("RS256", map[string]any{"jku": attacker.JWKSURL(), "kid": o.KID("RS256")}, c), CodeSignatureInvalid, "verification error"},
		{"x5u to another provider", v, attacker.SignWithHeader("RS256", map[string]any{"x5u": attacker.JWKSURL(), "kid": o.KID("RS256")}, c), CodeSignatureInvalid, "verification error"},
		{"embedded jwk", v, attacker.SignWithHeader("RS256", map[string]any{"jwk": jwk, "kid": o.KID("RS256")}, c), CodeSignatureInvalid, "verification error"},
		{"embedded jwk, no kid", v, attacker.SignWithHeader("RS256", map[string]any{"jwk": jwk, "kid": nil}, c), CodeUnknownKey, "no key without kid"},
		{"embedded jwk, static key", pemV, attacker.SignWithHeader("RS256", map[string]any{"jwk": jwk}, c), CodeSignatureInvalid, "verification error"},

		// Duplicates and other JSON that two parsers could read differently.
		{"duplicate alg", hs, rawHS256(`{"alg":"HS256","alg":"none"}`, hsClaims), CodeTokenInvalid, `member "alg" appears twice`},
		{"duplicate alg, escaped", hs, rawHS256(`{"alg":"HS256","\u0061lg":"HS256"}`, hsClaims), CodeTokenInvalid, "appears twice"},
		{"duplicate kid", hs, rawHS256(`{"alg":"HS256","kid":"a","kid":"b"}`, hsClaims), CodeTokenInvalid, "appears twice"},
		{"duplicate in a nested header member", hs, rawHS256(`{"alg":"HS256","x":[{"a":1,"a":2}]}`, hsClaims), CodeTokenInvalid, "appears twice"},
		{"duplicate sub in the payload", hs, rawHS256(hsHeader, `{"sub":"a","sub":"admin","exp":`+itoa(clk.unix(time.Hour))+`}`), CodeTokenInvalid, "payload: member \"sub\" appears twice"},
		{"duplicate exp in the payload", hs, rawHS256(hsHeader, `{"sub":"a","exp":1,"exp":`+itoa(clk.unix(time.Hour))+`}`), CodeTokenInvalid, "appears twice"},
		{"header not UTF-8", hs, rawHS256("{\"alg\":\"HS256\",\"x\":\"\xff\"}", hsClaims), CodeTokenInvalid, "not valid UTF-8"},
		{"payload not UTF-8", hs, rawHS256(hsHeader, "{\"sub\":\"a\xc0\",\"exp\":"+itoa(clk.unix(time.Hour))+"}"), CodeTokenInvalid, "not valid UTF-8"},
		{"data after the header", hs, rawHS256(hsHeader+`{"alg":"none"}`, hsClaims), CodeTokenInvalid, "data after the JSON object"},
		{"header an array", hs, rawHS256(`["HS256"]`, hsClaims), CodeTokenInvalid, "not a JSON object"},
		{"header a string", hs, rawHS256(`"HS256"`, hsClaims), CodeTokenInvalid, "not a JSON object"},
		{"payload an array", hs, rawHS256(hsHeader, `[1]`), CodeTokenInvalid, "not a JSON object"},
		{"header nested too deeply", hs, rawHS256(`{"alg":"HS256","x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`, hsClaims), CodeTokenInvalid, "nested deeper"},
		{"header with a BOM", hs, rawHS256("\ufeff"+hsHeader, hsClaims), CodeTokenInvalid, "not JSON"},

		// Encoding and shape.
		{"padding", v, good + "==", CodeTokenInvalid, "base64url alphabet"},
		{"padded header", v, parts[0] + "=." + parts[1] + "." + parts[2], CodeTokenInvalid, "base64url alphabet"},
		{"standard alphabet", v, stdAlphabet, CodeTokenInvalid, "base64url alphabet"},
		{"line break in the signature", v, good[:len(good)-10] + "\n" + good[len(good)-10:], CodeTokenInvalid, "base64url alphabet"},
		{"space in the payload", v, parts[0] + "." + parts[1][:5] + " " + parts[1][5:] + "." + parts[2], CodeTokenInvalid, "base64url alphabet"},
		{"non-canonical trailing bits", v, parts[0] + "." + parts[1] + "." + flipTrailingBit(t, parts[2]), CodeTokenInvalid, "signature is not canonical"},
		{"impossible length", v, parts[0] + "." + parts[1] + "." + parts[2] + "AAA", CodeTokenInvalid, "signature is not canonical"},
		{"two parts", v, parts[0] + "." + parts[1], CodeTokenInvalid, "three dot-separated parts"},
		{"four parts", v, good + ".x", CodeTokenInvalid, "three dot-separated parts"},
		{"five parts (JWE)", v, parts[0] + ".a.b.c.d", CodeTokenInvalid, "three dot-separated parts"},
		{"empty header", v, "." + parts[1] + "." + parts[2], CodeTokenInvalid, "empty header"},
		{"empty signature", v, parts[0] + "." + parts[1] + ".", CodeSignatureInvalid, "verification error"},
		{"oversize", v, o.Sign("RS256", claims(o, clk, map[string]any{"pad": strings.Repeat("x", DefaultMaxTokenBytes)})), CodeTokenInvalid, "longer than 8192 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := verify(tc.v, tc.tok)
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code = %q, want %q (%v)", got, tc.code, err)
			}
			if err == nil {
				if r == nil || len(r.Policies) == 0 {
					t.Fatalf("accepted with result %+v", r)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("refused for another reason: %v, want %q", err, tc.why)
			}
		})
	}
	if got := attacker.JWKSFetches() - attackerFetches; got != 0 {
		t.Fatalf("the gateway fetched a key set a token named %d times", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
