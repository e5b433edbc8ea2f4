package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigyaml "sigs.k8s.io/yaml"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/safefile"
	"virtbench/internal/units"
)

// annotationPrefix starts the annotations a RuntimeClass virtbench wrote
// carries: where its figures come from.
const annotationPrefix = "virtbench.io/"

// memoryQuantity is bytes rounded up to a whole MiB, as Kubernetes writes
// memory ("40Mi"); cpuQuantity is cores rounded up to a millicore ("12m").
func memoryQuantity(b float64) resource.Quantity {
	return *resource.NewQuantity(int64(math.Ceil(b/(1<<20)))<<20, resource.BinarySI)
}

func cpuQuantity(cores float64) resource.Quantity {
	return *resource.NewMilliQuantity(int64(math.Ceil(cores*1000)), resource.DecimalSI)
}

// RuntimeClass returns the RuntimeClass of an isolating variant: its
// handler, and as overhead.podFixed what one of its pods costs a node
// beyond the workload's own (analysis.Overhead), with where each figure
// comes from in annotations.
func RuntimeClass(o analysis.Overhead) nodev1.RuntimeClass {
	name := "virtbench-" + o.Variant
	pct := fmt.Sprintf("p%.0f", 100*analysis.OverheadPercentile)
	ann := map[string]string{
		annotationPrefix + "memory": fmt.Sprintf("%s of an idle instance's PSS over %d instances (median %s, %s %s), less the baseline's median %s",
			pct, o.Memory.N, units.Format(o.Memory.Median, "B"), rangeWord(o.Memory), rangeText(o.Memory.Range()), units.Format(o.BaselineMemory, "B")),
		annotationPrefix + "measured-on": o.Host,
		annotationPrefix + "run":         fmt.Sprintf("scenario %s, started %s, %s", o.Scenario, o.RunStarted, o.RunDirectory),
	}
	fixed := corev1.ResourceList{corev1.ResourceMemory: memoryQuantity(o.MemoryBytes)}
	if o.CPU.N > 0 {
		fixed[corev1.ResourceCPU] = cpuQuantity(o.CPUCores)
		ann[annotationPrefix+"cpu"] = fmt.Sprintf("%s of an idle instance's CPU over %d instances (median %.4f cores), less the baseline's median %.4f", pct, o.CPU.N, o.CPU.Median, o.BaselineCPU)
	}
	if o.NoBaseline {
		ann[annotationPrefix+"baseline"] = "none ran: the figures are the instance's whole cost, its workload's included"
	}
	return nodev1.RuntimeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "node.k8s.io/v1", Kind: "RuntimeClass"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
		Handler:    o.Handler,
		Overhead:   &nodev1.Overhead{PodFixed: fixed},
	}
}

// rangeWord names what Range gives of s: its median's 95% confidence
// interval, or its values' range where there are too few for one.
func rangeWord(s results.Summary) string {
	if s.HasInterval() {
		return "95% CI"
	}
	return "range of the values"
}

// rangeText writes a memory range.
func rangeText(lo, hi float64) string {
	return units.Format(lo, "B") + "-" + units.Format(hi, "B")
}

// WriteRuntimeClasses writes a RuntimeClass (RuntimeClass) per isolating
// variant of a, as YAML documents; none where no variant stands for a
// runtime a pod runs with.
func WriteRuntimeClasses(w io.Writer, a *analysis.Analysis) error {
	ovs := a.Overheads()
	if len(ovs) == 0 {
		return errors.New("reports: no variant of this run stands for a runtime a pod runs with (runc, gVisor, a VM): no RuntimeClass to write")
	}
	for i, o := range ovs {
		rc := RuntimeClass(o)
		if errs := validation.IsDNS1123Subdomain(rc.Name); len(errs) > 0 {
			return fmt.Errorf("reports: RuntimeClass %q: %s", rc.Name, strings.Join(errs, "; "))
		}
		b, err := sigyaml.Marshal(rc)
		if err != nil {
			return fmt.Errorf("reports: RuntimeClass %s: %w", rc.Name, err)
		}
		if i > 0 {
			io.WriteString(w, "---\n")
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// ReadRuntimeClasses reads the RuntimeClasses of a YAML file of one or
// more documents. A document that is not a RuntimeClass (its apiVersion,
// its kind, a field the API does not have, a handler that is not a DNS
// label) is an error naming the file and the document's line.
func ReadRuntimeClasses(file string) ([]nodev1.RuntimeClass, error) {
	b, err := safefile.ReadFile(file, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []nodev1.RuntimeClass
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		line := doc.Line
		if len(doc.Content) > 0 {
			line = doc.Content[0].Line
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
		}
		raw, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, bad("%v", err)
		}
		js, err := sigyaml.YAMLToJSON(raw)
		if err != nil {
			return nil, bad("%v", err)
		}
		var rc nodev1.RuntimeClass
		jd := json.NewDecoder(bytes.NewReader(js))
		jd.DisallowUnknownFields()
		if err := jd.Decode(&rc); err != nil {
			return nil, bad("not a RuntimeClass: %v", err)
		}
		switch {
		case rc.APIVersion != "node.k8s.io/v1" || rc.Kind != "RuntimeClass":
			return nil, bad("not a RuntimeClass: apiVersion %q, kind %q (want node.k8s.io/v1, RuntimeClass)", rc.APIVersion, rc.Kind)
		case len(validation.IsDNS1123Label(rc.Handler)) > 0:
			return nil, bad("handler %q: %s", rc.Handler, strings.Join(validation.IsDNS1123Label(rc.Handler), "; "))
		}
		out = append(out, rc)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no RuntimeClass in it", file)
	}
	return out, nil
}

// CheckRuntimeClasses says, for each RuntimeClass rcs, whether its
// overhead.podFixed covers what this run measured for a variant of its
// handler, and reports whether every one that has a variant does.
func CheckRuntimeClasses(w io.Writer, a *analysis.Analysis, rcs []nodev1.RuntimeClass) (bool, error) {
	ovs := a.Overheads()
	all := true
	for _, rc := range rcs {
		var o *analysis.Overhead
		for i := range ovs {
			if ovs[i].Handler == rc.Handler && (o == nil || "virtbench-"+ovs[i].Variant == rc.Name) {
				o = &ovs[i]
			}
		}
		if o == nil {
			fmt.Fprintf(w, "%s (handler %s): this run has no variant of that handler\n", rc.Name, rc.Handler)
			continue
		}
		var fixed corev1.ResourceList
		if rc.Overhead != nil {
			fixed = rc.Overhead.PodFixed
		}
		verdicts := []string{checkOne("memory", fixed, corev1.ResourceMemory, memoryQuantity(o.MemoryBytes), units.Format(o.MemoryBytes, "B"))}
		if o.CPU.N > 0 {
			verdicts = append(verdicts, checkOne("cpu", fixed, corev1.ResourceCPU, cpuQuantity(o.CPUCores), fmt.Sprintf("%.4f cores", o.CPUCores)))
		}
		ok := true
		for _, v := range verdicts {
			ok = ok && strings.Contains(v, " covers ")
		}
		all = all && ok
		fmt.Fprintf(w, "%s (handler %s, measured as %s): %s\n", rc.Name, rc.Handler, o.Variant, strings.Join(verdicts, "; "))
	}
	_, err := fmt.Fprintf(w, "measured at the %.0fth percentile of an idle instance, less the baseline's median (%s)\n", 100*analysis.OverheadPercentile, a.Run.Dir)
	return all, err
}

// checkOne says whether fixed's resource covers the measured quantity.
func checkOne(what string, fixed corev1.ResourceList, name corev1.ResourceName, measured resource.Quantity, measuredText string) string {
	q, ok := fixed[name]
	if !ok {
		return fmt.Sprintf("no %s overhead: its pods are charged nothing for the %s measured (%s)", what, measured.String(), measuredText)
	}
	if q.Cmp(measured) >= 0 {
		return fmt.Sprintf("%s %s covers the %s measured", what, q.String(), measured.String())
	}
	short := measured.DeepCopy()
	short.Sub(q)
	return fmt.Sprintf("%s %s does not cover the %s measured: %s short", what, q.String(), measured.String(), short.String())
}

// novaHeader and novaRows are the Nova table: per VM variant, what a Nova
// compute host's configuration takes from this run.
var novaHeader = []string{"variant", "reserved_host_memory_mb", "per-VM overhead (VMM beside guest RAM)", "guest RAM, vCPUs", "VMs that fit", "ram_allocation_ratio", "cpu_allocation_ratio"}

func novaRows(ns []analysis.Nova) [][]string {
	var rows [][]string
	for _, n := range ns {
		overhead := "-"
		if n.OverheadBytes > 0 {
			overhead = units.Format(n.OverheadBytes, "B") + " [" + rangeText(n.OverheadLo, n.OverheadHi) + "]"
		}
		rows = append(rows, []string{n.Variant, fmt.Sprint(n.ReservedHostMemoryMB), overhead, fmt.Sprintf("%s, %d", units.Format(n.GuestRAMBytes, "B"), n.VCPUs),
			fmt.Sprint(n.Instances), fmt.Sprintf("%.2f", n.RAMAllocationRatio), fmt.Sprintf("%.2f", n.CPUAllocationRatio)})
	}
	return rows
}

// NovaModel says what each Nova figure is.
const NovaModel = "OpenStack Nova: reserved_host_memory_mb is the memory the capacity model keeps free for the host (max(20%, 2 GiB)); the per-VM overhead is QEMU's own resident memory beside the guest's RAM, which the host must hold for every VM; the allocation ratios are what the capacity model's count of idle VMs is given (guest RAM, vCPUs) over what Nova schedules (memory less the reserve, CPUs): set them no higher for idle VMs of this kind."
