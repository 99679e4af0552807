package settings

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/config"
)

// TestSecurityDocEdgeTLSExample: the HTTPS example of docs/security.md ("TLS
// at the edge") decodes into a gateway configuration as it stands (unknown
// fields refused) with what it says, and validation finds nothing wrong
// but its example certificate files, which do not exist here.
func TestSecurityDocEdgeTLSExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n# example: edge-tls\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal(`docs/security.md has no "# example: edge-tls" block`)
	}
	c := Default()
	if err := config.Decode(m[1], &c); err != nil {
		t.Fatalf("the example does not decode: %v", err)
	}
	if c.Listen != "" || c.TLS.Listen != ":8443" || len(c.TLS.Certificates) != 2 || c.TLS.MinVersion != "1.2" || c.TLS.ClientAuth != "none" {
		t.Fatalf("decoded %+v", c.TLS)
	}
	problems := c.Validate()
	if len(problems) == 0 {
		t.Fatal("the example's certificate files do not exist here, yet validation found nothing")
	}
	for _, e := range problems {
		if !strings.HasPrefix(e.Field, "tls.certificates[") || !strings.Contains(e.Message, "/etc/sluice/tls/") {
			t.Errorf("problem beyond the example's missing files: %v", e)
		}
	}
}
