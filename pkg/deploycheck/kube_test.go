package deploycheck

// The Kubernetes manifests in deployments/k8s/ and the Helm chart's
// rendered value sets (deployments/helm/rendered/, kept current by
// scripts/helm-check.sh) are decoded strictly against the Kubernetes API
// types, so a misspelt or misplaced field fails here rather than on a
// cluster (kubectl apply drops unknown fields of older servers with a mere
// warning). The API types are test-only dependencies: no service binary
// links them.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of the Prometheus Operator's
// monitoring.coreos.com/v1 ServiceMonitor the chart writes, decoded as
// strictly as the built-in kinds: a field outside it is refused, so a new
// field needs a line here (its CRD is not a Go dependency worth taking for
// one object).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
			Scheme   string `json:"scheme,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kinds maps apiVersion/kind to the typed object it decodes into. A kind not
// here fails the test: add its type.
var kinds = map[string]func() any{
	"v1/Namespace":                            func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &serviceMonitor{} },
}

// decodeStrict decodes one YAML document into its typed object: unknown
// fields, fields in the wrong case and duplicate fields are refused
// (sigs.k8s.io/json, as the API server's strict field validation does).
func decodeStrict(doc []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
		return nil, err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, errors.New("apiVersion and kind must be set")
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("no API type for %s %s: add it to kinds", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	return obj, nil
}

// documents splits a multi-document YAML file, dropping empty documents.
func documents(data []byte) ([][]byte, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, doc)
		}
	}
}

// manifestSets returns the objects of each set applied together: all of
// deployments/k8s, and each rendered Helm value set.
func manifestSets(t *testing.T) map[string][]any {
	t.Helper()
	files, err := Manifests(filepath.Join("..", "..", "deployments"))
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]any{}
	for _, f := range files {
		set := f
		if strings.HasPrefix(f, "k8s/") {
			set = "k8s/"
		}
		data, err := os.ReadFile(filepath.Join("..", "..", "deployments", filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		docs, err := documents(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(docs) == 0 {
			t.Errorf("%s: no object", f)
		}
		for i, doc := range docs {
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
				continue
			}
			sets[set] = append(sets[set], obj)
		}
	}
	return sets
}

// Every object decodes strictly into its API type.
func TestManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	sets := manifestSets(t)
	if len(sets) < 2 {
		t.Fatalf("found %d manifest sets, want deployments/k8s and the rendered Helm value sets", len(sets))
	}
	for name, objs := range sets {
		if len(objs) == 0 {
			t.Errorf("%s: nothing decoded", name)
		}
	}
}

// The decoder refuses what a typo makes: an unknown field, a field in the
// wrong case, a duplicate field, a value of the wrong type, a kind without
// an API type.
func TestDecodeStrictRefuses(t *testing.T) {
	t.Parallel()
	const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n" +
		"  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n        - name: c\n          image: i\n          %s\n"
	tests := []struct {
		name, doc, want string
	}{
		{"valid", fmt.Sprintf(deployment, "ports: [{containerPort: 80}]"), ""},
		{"unknown field", fmt.Sprintf(deployment, "ports: [{containerPrt: 80}]"), `unknown field "spec.template.spec.containers[0].ports[0].containerPrt"`},
		{"wrong case", fmt.Sprintf(deployment, "ports: [{containerport: 80}]"), `unknown field "spec.template.spec.containers[0].ports[0].containerport"`},
		{"misplaced field", fmt.Sprintf(deployment, "replicas: 2"), `unknown field "spec.template.spec.containers[0].replicas"`},
		{"duplicate field", fmt.Sprintf(deployment, "image: j"), `"image" already set`},
		{"wrong type", fmt.Sprintf(deployment, "ports: [{containerPort: http}]"), "cannot unmarshal string"},
		{"unknown kind", "apiVersion: v1\nkind: Podd\nmetadata: {name: p}\n", "no API type for v1 Podd"},
		{"no kind", "metadata: {name: p}\n", "apiVersion and kind must be set"},
		{"service monitor field", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\n" +
			"spec: {selector: {}, endpoints: [{port: ops, intervall: 30s}]}\n", `unknown field "spec.endpoints[0].intervall"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeStrict([]byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// Within each set, what refers to something by name finds it: a probe's
// or a Service's named port is a container port, a Service selects pods
// of a workload, a mount names a volume, a ConfigMap volume's ConfigMap
// and keys exist, a workload's selector matches its pod labels, an
// autoscaler's and a disruption budget's targets exist.
func TestManifestReferences(t *testing.T) {
	t.Parallel()
	for name, objs := range manifestSets(t) {
		for _, err := range references(objs) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The reference check finds a probe on a port the container does not
// declare, a Service selecting no pod and a configuration listening on a
// port the container does not declare.
func TestReferencesRefuse(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"app": "a"}
	pod := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("opss")}}},
		}}},
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: pod}}
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "b"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	d.Spec.Template.Spec.Containers[0].Command = []string{"/usr/local/bin/sluice-gateway", "--config", "/etc/sluice/gateway.yaml"}
	d.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/sluice"}}
	d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "gw.yaml", Path: "gateway.yaml"}}}}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"gw.yaml": "listen: \":80\"\nops_listen: \":9090\"\n"}}
	errs := references([]any{d, s, cm})
	got := fmt.Sprint(errs)
	for _, want := range []string{
		`Deployment d, container c: readiness probe port "opss"`, "Service s selects no pod",
		`Deployment d, container c: /etc/sluice/gateway.yaml ops_listen ":9090" is not a port of the container`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %s do not contain %q", got, want)
		}
	}
}
