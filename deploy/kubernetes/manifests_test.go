// Package kubernetes checks parley's Kubernetes manifests: each is decoded
// strictly with the official k8s.io/api types (an unknown or misspelt field
// fails), and what the API server would not catch is checked here: probes
// name ports the containers open, Services select pods and name their
// ports, the store's flags name its headless Service, and every pod runs
// as non-root on a read-only root file system with resource requests.
// It is a module of its own so that parley's go.mod stays lean.
package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// objects are the decoded manifests, by kind.
type objects struct {
	services     []corev1.Service
	statefulSets []appsv1.StatefulSet
	deployments  []appsv1.Deployment
	pdbs         []policyv1.PodDisruptionBudget
	secrets      []corev1.Secret
	namespaces   []corev1.Namespace
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// load decodes every document of every .yaml file in dir strictly.
func load(dir string) (*objects, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no manifests in %s", dir)
	}
	sort.Strings(files)
	o := &objects{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for i, doc := range docSep.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := o.add([]byte(doc)); err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", filepath.Base(f), i+1, err)
			}
		}
	}
	return o, nil
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

func (o *objects) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(v any) error { return yaml.UnmarshalStrict(doc, v) }
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Service":
		var v corev1.Service
		if err := strict(&v); err != nil {
			return err
		}
		o.services = append(o.services, v)
	case "apps/v1 StatefulSet":
		var v appsv1.StatefulSet
		if err := strict(&v); err != nil {
			return err
		}
		o.statefulSets = append(o.statefulSets, v)
	case "apps/v1 Deployment":
		var v appsv1.Deployment
		if err := strict(&v); err != nil {
			return err
		}
		o.deployments = append(o.deployments, v)
	case "policy/v1 PodDisruptionBudget":
		var v policyv1.PodDisruptionBudget
		if err := strict(&v); err != nil {
			return err
		}
		o.pdbs = append(o.pdbs, v)
	case "v1 Secret":
		var v corev1.Secret
		if err := strict(&v); err != nil {
			return err
		}
		o.secrets = append(o.secrets, v)
	case "v1 Namespace":
		var v corev1.Namespace
		if err := strict(&v); err != nil {
			return err
		}
		o.namespaces = append(o.namespaces, v)
	default:
		return fmt.Errorf("unexpected kind %q %q (add it to the test)", tm.APIVersion, tm.Kind)
	}
	return nil
}

// pods are the pod templates of the workloads, by workload name.
func (o *objects) pods() map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, s := range o.statefulSets {
		out["statefulset/"+s.Name] = s.Spec.Template
	}
	for _, d := range o.deployments {
		out["deployment/"+d.Name] = d.Spec.Template
	}
	return out
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// portNamed: a probe's or Service's port, by name or number, is one the
// containers open.
func portNamed(p intstr.IntOrString, cs []corev1.Container) bool {
	for _, c := range cs {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && p.StrVal == cp.Name) || (p.Type == intstr.Int && p.IntVal == cp.ContainerPort) {
				return true
			}
		}
	}
	return false
}

// check returns every problem the manifests have.
func check(o *objects) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	pods := o.pods()
	if len(o.statefulSets) != 1 {
		bad("%d StatefulSets, want the store's one", len(o.statefulSets))
	}
	if len(o.deployments) == 0 {
		bad("no Deployment of agents")
	}
	for name, pt := range pods {
		spec := pt.Spec
		psc := spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			bad("%s: the pod does not set runAsNonRoot", name)
		}
		if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
			bad("%s: runs as uid 0", name)
		}
		mounts := map[string]bool{}
		for _, v := range spec.Volumes {
			mounts[v.Name] = true
		}
		for _, c := range spec.Containers {
			where := name + "/" + c.Name
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad("%s: readOnlyRootFilesystem is not set", where)
			}
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad("%s: allowPrivilegeEscalation is not false", where)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				bad("%s: no CPU or memory request", where)
			}
			for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					bad("%s: no HTTP %s probe", where, kind)
					continue
				}
				if !portNamed(p.HTTPGet.Port, []corev1.Container{c}) {
					bad("%s: the %s probe's port %s is not one the container opens", where, kind, p.HTTPGet.Port.String())
				}
				want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[kind]
				if p.HTTPGet.Path != want {
					bad("%s: the %s probe asks %s, want %s", where, kind, p.HTTPGet.Path, want)
				}
				if p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					bad("%s: the %s probe is not HTTPS (parley serves only TLS)", where, kind)
				}
			}
			for _, m := range c.VolumeMounts {
				if !mounts[m.Name] && !claimed(o, m.Name) {
					bad("%s: mounts %s, which is no volume of the pod", where, m.Name)
				}
			}
			if !hasMount(c, "/tmp") {
				bad("%s: no writable /tmp (the root file system is read-only)", where)
			}
		}
	}
	for _, s := range o.services {
		var matched *corev1.PodTemplateSpec
		for _, pt := range pods {
			if selects(s.Spec.Selector, pt.Labels) {
				pt := pt
				matched = &pt
			}
		}
		if matched == nil {
			bad("service %s selects no pod template", s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !portNamed(p.TargetPort, matched.Spec.Containers) {
				bad("service %s: target port %s is not one its pods open", s.Name, p.TargetPort.String())
			}
		}
	}
	for _, st := range o.statefulSets {
		var headless *corev1.Service
		for i, s := range o.services {
			if s.Name == st.Spec.ServiceName {
				headless = &o.services[i]
			}
		}
		if headless == nil {
			bad("statefulset %s: serviceName %q is no Service", st.Name, st.Spec.ServiceName)
			continue
		}
		if headless.Spec.ClusterIP != corev1.ClusterIPNone {
			bad("statefulset %s: service %s is not headless", st.Name, headless.Name)
		}
		if !headless.Spec.PublishNotReadyAddresses {
			bad("service %s: members must resolve each other before they are ready (publishNotReadyAddresses)", headless.Name)
		}
		if st.Spec.Replicas == nil || *st.Spec.Replicas != 3 {
			bad("statefulset %s: want 3 replicas", st.Name)
		}
		if len(st.Spec.VolumeClaimTemplates) == 0 {
			bad("statefulset %s: no volumeClaimTemplates: a member's raft log would not survive its pod", st.Name)
		}
		dns := "." + headless.Name + "." + st.Namespace + ".svc"
		flags := storeFlags(st.Spec.Template.Spec.Containers)
		for _, f := range []string{"--raft-advertise", "--http-advertise", "--join", "--bootstrap-id", "--id"} {
			if flags[f] == "" {
				bad("statefulset %s: the store has no %s", st.Name, f)
			}
		}
		for _, f := range []string{"--raft-advertise", "--http-advertise"} {
			if v := flags[f]; v != "" && !strings.Contains(v, "$(POD_NAME)"+dns) {
				bad("statefulset %s: %s %q is not the pod's name in the headless Service (%s)", st.Name, f, v, "$(POD_NAME)"+dns)
			}
		}
		if j := flags["--join"]; j != "" {
			members := strings.Split(j, ",")
			if len(members) != int(*st.Spec.Replicas) {
				bad("statefulset %s: --join names %d members, want %d", st.Name, len(members), *st.Spec.Replicas)
			}
			for i, m := range members {
				if want := fmt.Sprintf("%s-%d%s", st.Name, i, dns); !strings.HasPrefix(m, want) {
					bad("statefulset %s: --join member %q is not %s...", st.Name, m, want)
				}
			}
		}
		if b := flags["--bootstrap-id"]; b != "" && b != st.Name+"-0" {
			bad("statefulset %s: --bootstrap-id %s is not its first pod %s-0", st.Name, b, st.Name)
		}
		found := false
		for _, pdb := range o.pdbs {
			if pdb.Spec.Selector != nil && selects(pdb.Spec.Selector.MatchLabels, st.Spec.Template.Labels) {
				found = true
				if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
					bad("poddisruptionbudget %s: maxUnavailable is not 1", pdb.Name)
				}
			}
		}
		if !found {
			bad("statefulset %s: no PodDisruptionBudget selects its pods", st.Name)
		}
	}
	return problems
}

func claimed(o *objects, name string) bool {
	for _, st := range o.statefulSets {
		for _, c := range st.Spec.VolumeClaimTemplates {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

func hasMount(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path && !m.ReadOnly {
			return true
		}
	}
	return false
}

// storeFlags are the --flag=value arguments of the store container.
func storeFlags(cs []corev1.Container) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		for _, a := range c.Args {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				out[k] = v
			}
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	o, err := load(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range check(o) {
		t.Error(p)
	}
	t.Logf("%d services, %d statefulsets, %d deployments, %d disruption budgets, %d secrets checked",
		len(o.services), len(o.statefulSets), len(o.deployments), len(o.pdbs), len(o.secrets))
}

// TestChecksCatchBrokenManifests: each way of breaking the manifests is
// caught, so that a green TestManifests means something.
func TestChecksCatchBrokenManifests(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"misspelt field", "publishNotReadyAddresses: true", "publishNotReadyAdresses: true", "unknown field"},
		{"probe on an unknown port", "httpGet: {path: /readyz, port: http, scheme: HTTPS}", "httpGet: {path: /readyz, port: api, scheme: HTTPS}", "is not one the container opens"},
		{"raft advertised by IP", "--raft-advertise=$(POD_NAME).parley-store-raft.parley.svc.cluster.local:7000", "--raft-advertise=$(POD_IP):7000", "is not the pod's name in the headless Service"},
		{"not headless", "clusterIP: None", "clusterIP: 10.0.0.9", "is not headless"},
		{"writable root", "readOnlyRootFilesystem: true\n            capabilities: {drop: [ALL]}\n          volumeMounts:\n            - {name: data", "readOnlyRootFilesystem: false\n            capabilities: {drop: [ALL]}\n          volumeMounts:\n            - {name: data", "readOnlyRootFilesystem is not set"},
		{"pdb of 2", "maxUnavailable: 1", "maxUnavailable: 2", "maxUnavailable is not 1"},
		{"join another service", "--join=parley-store-0.parley-store-raft", "--join=parley-store-0.parley-store", "--join member"},
		{"no requests", "requests: {cpu: 100m, memory: 128Mi}", "requests: {}", "no CPU or memory request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files, _ := filepath.Glob("*.yaml")
			replaced := false
			for _, f := range files {
				b, _ := os.ReadFile(f)
				if !replaced && bytes.Contains(b, []byte(tc.old)) {
					b = bytes.Replace(b, []byte(tc.old), []byte(tc.new), 1)
					replaced = true
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			if !replaced {
				t.Fatalf("%q is in no manifest: the test is out of date", tc.old)
			}
			o, err := load(dir)
			var got []string
			if err != nil {
				got = []string{err.Error()}
			} else {
				got = check(o)
			}
			for _, p := range got {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("breaking it (%s) was not caught: want a problem with %q, got %q", tc.name, tc.want, got)
		})
	}
}
