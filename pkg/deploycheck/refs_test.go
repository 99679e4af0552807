package deploycheck

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	pod        corev1.PodTemplateSpec
}

// references returns what refers by name to something the set lacks.
func references(objs []any) []error {
	var (
		errs       []error
		workloads  []workload
		services   []*corev1.Service
		configMaps = map[string]*corev1.ConfigMap{}
		hpas       []*autoscalingv2.HorizontalPodAutoscaler
		pdbs       []*policyv1.PodDisruptionBudget
		monitors   []*serviceMonitor
	)
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			workloads = append(workloads, workload{"Deployment", o.Name, o.Spec.Selector, o.Spec.Template})
		case *appsv1.StatefulSet:
			workloads = append(workloads, workload{"StatefulSet", o.Name, o.Spec.Selector, o.Spec.Template})
			if len(o.Spec.VolumeClaimTemplates) > 0 {
				for _, c := range o.Spec.VolumeClaimTemplates {
					o.Spec.Template.Spec.Volumes = append(o.Spec.Template.Spec.Volumes, corev1.Volume{Name: c.Name})
				}
				workloads[len(workloads)-1].pod = o.Spec.Template
			}
		case *corev1.Service:
			services = append(services, o)
		case *corev1.ConfigMap:
			configMaps[o.Name] = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			hpas = append(hpas, o)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, o)
		case *serviceMonitor:
			monitors = append(monitors, o)
		}
	}
	for _, w := range workloads {
		errs = append(errs, checkWorkload(w, configMaps)...)
	}
	for _, s := range services {
		errs = append(errs, checkService(s, workloads)...)
	}
	for _, h := range hpas {
		if !hasWorkload(workloads, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name) {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s scales %s %s, not in the set", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name))
		}
	}
	for _, p := range pdbs {
		if len(selected(p.Spec.Selector, workloads)) == 0 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s selects no pod", p.Name))
		}
	}
	for _, m := range monitors {
		errs = append(errs, checkMonitor(m, services)...)
	}
	return errs
}

func checkWorkload(w workload, configMaps map[string]*corev1.ConfigMap) []error {
	var errs []error
	where := w.kind + " " + w.name
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	switch {
	case w.selector == nil || err != nil:
		errs = append(errs, fmt.Errorf("%s: selector missing or invalid: %v", where, err))
	case !sel.Matches(labels.Set(w.pod.Labels)):
		errs = append(errs, fmt.Errorf("%s: selector %s does not match its pod labels %v", where, sel, w.pod.Labels))
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range w.pod.Spec.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap == nil {
			continue
		}
		cm, ok := configMaps[v.ConfigMap.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: volume %s: ConfigMap %s is not in the set", where, v.Name, v.ConfigMap.Name))
			continue
		}
		for _, it := range v.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				errs = append(errs, fmt.Errorf("%s: volume %s: ConfigMap %s has no key %s", where, v.Name, cm.Name, it.Key))
			}
		}
	}
	for _, c := range append(w.pod.Spec.InitContainers, w.pod.Spec.Containers...) {
		cw := fmt.Sprintf("%s, container %s", where, c.Name)
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				errs = append(errs, fmt.Errorf("%s: mount %s names no volume", cw, m.Name))
			}
		}
		errs = append(errs, checkListenPorts(cw, c, volumes, configMaps)...)
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
		}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
			if p.probe == nil {
				continue
			}
			var port intstr.IntOrString
			switch {
			case p.probe.HTTPGet != nil:
				port = p.probe.HTTPGet.Port
			case p.probe.TCPSocket != nil:
				port = p.probe.TCPSocket.Port
			default:
				continue
			}
			if !hasPort([]corev1.Container{c}, port) {
				errs = append(errs, fmt.Errorf("%s: %s probe port %q is not a port of the container", cw, p.name, port.String()))
			}
		}
	}
	return errs
}

func checkService(s *corev1.Service, workloads []workload) []error {
	if s.Spec.Selector == nil {
		return nil // endpoints managed elsewhere
	}
	pods := selected(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, workloads)
	if len(pods) == 0 {
		return []error{fmt.Errorf("Service %s selects no pod", s.Name)}
	}
	var errs []error
	for _, p := range s.Spec.Ports {
		target := p.TargetPort
		if target.String() == "0" || target.String() == "" {
			target = intstr.FromInt32(p.Port)
		}
		for _, w := range pods {
			if !hasPort(w.pod.Spec.Containers, target) {
				errs = append(errs, fmt.Errorf("Service %s port %s: target port %q is not a port of %s %s", s.Name, p.Name, target.String(), w.kind, w.name))
			}
		}
	}
	return errs
}

func checkMonitor(m *serviceMonitor, services []*corev1.Service) []error {
	sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
	if err != nil {
		return []error{fmt.Errorf("ServiceMonitor %s: %v", m.Name, err)}
	}
	var matched []*corev1.Service
	for _, s := range services {
		if sel.Matches(labels.Set(s.Labels)) {
			matched = append(matched, s)
		}
	}
	if len(matched) == 0 {
		return []error{fmt.Errorf("ServiceMonitor %s selects no Service", m.Name)}
	}
	var errs []error
	for _, e := range m.Spec.Endpoints {
		for _, s := range matched {
			found := false
			for _, p := range s.Spec.Ports {
				found = found || p.Name == e.Port
			}
			if !found {
				errs = append(errs, fmt.Errorf("ServiceMonitor %s: Service %s has no port %q", m.Name, s.Name, e.Port))
			}
		}
	}
	return errs
}

func selected(ls *metav1.LabelSelector, workloads []workload) []workload {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return nil
	}
	var out []workload
	for _, w := range workloads {
		if sel.Matches(labels.Set(w.pod.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func hasWorkload(workloads []workload, kind, name string) bool {
	for _, w := range workloads {
		if w.kind == kind && w.name == name {
			return true
		}
	}
	return false
}

func hasPort(containers []corev1.Container, port intstr.IntOrString) bool {
	for _, c := range containers {
		for _, p := range c.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

// checkListenPorts finds the configuration file a Sluice container is
// started with (--config <path> in a mounted ConfigMap) and checks that
// every address it listens on is a port of the container, so the probes
// and Services, which name container ports, reach what the binary serves.
func checkListenPorts(where string, c corev1.Container, volumes map[string]corev1.Volume, configMaps map[string]*corev1.ConfigMap) []error {
	var file string
	for i, a := range c.Command {
		if a == "--config" && i+1 < len(c.Command) {
			file = c.Command[i+1]
		}
	}
	if file == "" {
		return nil
	}
	data, ok := mountedConfigMapFile(file, c, volumes, configMaps)
	if !ok {
		return []error{fmt.Errorf("%s: --config %s is not a file of a mounted ConfigMap of the set", where, file)}
	}
	var cfg struct {
		Listen    string `json:"listen"`
		OpsListen string `json:"ops_listen"`
		TLS       struct {
			Listen string `json:"listen"`
		} `json:"tls"`
	}
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		return []error{fmt.Errorf("%s: %s: %v", where, file, err)}
	}
	var errs []error
	for _, l := range []struct{ field, addr string }{{"listen", cfg.Listen}, {"ops_listen", cfg.OpsListen}, {"tls.listen", cfg.TLS.Listen}} {
		if l.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || !hasPort([]corev1.Container{c}, intstr.FromInt(n)) {
			errs = append(errs, fmt.Errorf("%s: %s %s %q is not a port of the container", where, file, l.field, l.addr))
		}
	}
	return errs
}

func mountedConfigMapFile(file string, c corev1.Container, volumes map[string]corev1.Volume, configMaps map[string]*corev1.ConfigMap) (string, bool) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		v := volumes[m.Name]
		if !ok || v.ConfigMap == nil || configMaps[v.ConfigMap.Name] == nil {
			continue
		}
		key := rel
		for _, it := range v.ConfigMap.Items {
			if it.Path == rel {
				key = it.Key
			}
		}
		data, ok := configMaps[v.ConfigMap.Name].Data[key]
		return data, ok
	}
	return "", false
}
