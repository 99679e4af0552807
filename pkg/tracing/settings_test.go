package tracing

import (
	"strings"
	"testing"
)

func TestReadSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		env      map[string]string
		exporter string
		protocol string
		sampler  string // the sampler's Description
		disabled bool
		problem  string // part of the one problem expected, "" for none
	}{
		{name: "defaults", exporter: ExporterOTLP, protocol: ProtocolHTTP, sampler: "ParentBased{root:AlwaysOnSampler"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, exporter: ExporterOTLP, protocol: ProtocolGRPC, sampler: "ParentBased{root:AlwaysOnSampler"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
			exporter: ExporterOTLP, protocol: ProtocolHTTP, sampler: "ParentBased{root:AlwaysOnSampler"},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, exporter: ExporterNone, protocol: ProtocolHTTP, sampler: "ParentBased{root:AlwaysOnSampler"},
		{name: "ratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			exporter: ExporterOTLP, protocol: ProtocolHTTP, sampler: "ParentBased{root:TraceIDRatioBased{0.25}"},
		{name: "always off", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, exporter: ExporterOTLP, protocol: ProtocolHTTP, sampler: "AlwaysOffSampler"},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true"}, exporter: ExporterOTLP, protocol: ProtocolHTTP, sampler: "ParentBased", disabled: true},
		{name: "bad exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, problem: `OTEL_TRACES_EXPORTER: must be "otlp" or "none", got "jaeger"`},
		{name: "bad protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, problem: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: must be "http/protobuf" or "grpc", got "http/json"`},
		{name: "bad sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, problem: `OTEL_TRACES_SAMPLER: must be one of`},
		{name: "bad ratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, problem: `OTEL_TRACES_SAMPLER_ARG: must be a ratio between 0 and 1, got "1.5"`},
		{name: "bad endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, problem: `OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL`},
		{name: "bad disabled", env: map[string]string{"OTEL_SDK_DISABLED": "yes please"}, problem: `OTEL_SDK_DISABLED: must be true or false`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, errs := ReadSettings(func(k string) string { return tc.env[k] })
			if tc.problem != "" {
				if len(errs) != 1 || !strings.Contains(errs[0].Message, tc.problem) {
					t.Fatalf("problems %v, want one containing %q", errs, tc.problem)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("unexpected problems: %v", errs)
			}
			if s.Exporter != tc.exporter || s.Protocol != tc.protocol || s.Disabled != tc.disabled {
				t.Fatalf("got exporter %q protocol %q disabled %v", s.Exporter, s.Protocol, s.Disabled)
			}
			if d := s.Sampler.Description(); !strings.HasPrefix(d, tc.sampler) {
				t.Fatalf("sampler %q, want %q...", d, tc.sampler)
			}
		})
	}
}

// TestValidateNamesTheVariable: with tracing on, a bad OTEL_* variable is a
// configuration problem (what --check-config prints); off, the variables
// are not read.
func TestValidateNamesTheVariable(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "bogus")
	if errs := (Config{}).Validate(); len(errs) != 0 {
		t.Fatalf("tracing off, yet problems: %v", errs)
	}
	errs := (Config{Enabled: true}).Validate()
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Message, "OTEL_TRACES_SAMPLER: ") {
		t.Fatalf("problems %v, want one naming OTEL_TRACES_SAMPLER", errs)
	}
}
