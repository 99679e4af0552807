package tracing

import (
	"net/url"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Exporters (OTEL_TRACES_EXPORTER).
const (
	// ExporterOTLP sends spans to an OTLP receiver (the default).
	ExporterOTLP = "otlp"
	// ExporterNone makes and propagates spans but exports none: trace
	// context still reaches the upstreams and the nodes.
	ExporterNone = "none"
)

// OTLP protocols (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then
// OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolHTTP = "http/protobuf" // the default
	ProtocolGRPC = "grpc"
)

// Settings are what the OTEL_* variables say, read once at start. The OTLP
// exporters themselves read OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS,
// _TIMEOUT, _COMPRESSION, _CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY
// and _INSECURE; the batch span processor reads OTEL_BSP_*; the resource
// reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
type Settings struct {
	// Disabled is OTEL_SDK_DISABLED=true: tracing off whatever the
	// configuration says.
	Disabled bool
	Exporter string // ExporterOTLP or ExporterNone
	Protocol string // ProtocolHTTP or ProtocolGRPC
	// Sampler is built from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
	// (default parentbased_always_on).
	Sampler sdktrace.Sampler
}

// ReadSettings reads the OTEL_* variables through getenv (os.Getenv) and
// returns every problem, each naming its variable.
func ReadSettings(getenv func(string) string) (Settings, validation.Errors) {
	var s Settings
	var errs validation.Errors
	bad := func(name, format string, args ...any) {
		errs.Add("", name+": "+format, args...)
	}
	if v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); v != "" {
		d, err := strconv.ParseBool(v)
		if err != nil {
			bad("OTEL_SDK_DISABLED", "must be true or false, got %q", v)
		}
		s.Disabled = d
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); v {
	case "", ExporterOTLP:
		s.Exporter = ExporterOTLP
	case ExporterNone:
		s.Exporter = ExporterNone
	default:
		bad("OTEL_TRACES_EXPORTER", "must be %q or %q, got %q", ExporterOTLP, ExporterNone, v)
	}
	name, v := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	switch v = strings.ToLower(v); v {
	case "", ProtocolHTTP:
		s.Protocol = ProtocolHTTP
	case ProtocolGRPC:
		s.Protocol = ProtocolGRPC
	default:
		bad(name, "must be %q or %q, got %q", ProtocolHTTP, ProtocolGRPC, v)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(name, "must be an http:// or https:// URL with a host, got %q", v)
			}
		}
	}
	sampler, name, msg := readSampler(getenv)
	if msg != "" {
		bad(name, "%s", msg)
	}
	s.Sampler = sampler
	return s, errs
}

func firstSet(getenv func(string) string, names ...string) (string, string) {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return n, v
		}
	}
	return names[len(names)-1], ""
}

// readSampler builds the sampler of OTEL_TRACES_SAMPLER and its argument,
// or says what is wrong with them.
func readSampler(getenv func(string) string) (sampler sdktrace.Sampler, variable, problem string) {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := 1.0
	if strings.HasSuffix(name, "traceidratio") && arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, "OTEL_TRACES_SAMPLER_ARG", "must be a ratio between 0 and 1, got " + strconv.Quote(arg)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), "", ""
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), "", ""
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), "", ""
	case "always_on":
		return sdktrace.AlwaysSample(), "", ""
	case "always_off":
		return sdktrace.NeverSample(), "", ""
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), "", ""
	}
	return nil, "OTEL_TRACES_SAMPLER", "must be one of always_on, always_off, traceidratio, parentbased_always_on, " +
		"parentbased_always_off, parentbased_traceidratio, got " + strconv.Quote(name)
}
