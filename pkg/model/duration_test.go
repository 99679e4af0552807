package model

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationText(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, time.Second, time.Minute, 90 * time.Second, 720 * time.Hour, time.Hour + 5*time.Second, 1500 * time.Millisecond} {
		b, err := Duration(d).MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back.D() != d {
			t.Fatalf("%v -> %q -> %v, %v", d, b, back.D(), err)
		}
	}
	if got := Duration(720 * time.Hour).String(); got != "720h" {
		t.Fatalf("720h written as %q", got)
	}
	if got := Duration(time.Minute).String(); got != "1m" {
		t.Fatalf("1m written as %q", got)
	}
	var d Duration
	if err := json.Unmarshal([]byte(`2.5`), &d); err != nil || d.D() != 2500*time.Millisecond {
		t.Fatalf("number of seconds: %v, %v", d.D(), err)
	}
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Fatal("bad duration accepted")
	}
}
