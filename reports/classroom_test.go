package reports

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"virtbench/analysis"
)

// TestLayerDiagram: a lesson's diagram is well-formed XML, names its kind
// and outlines the layer that isolates the workload, where one does.
func TestLayerDiagram(t *testing.T) {
	for _, tt := range []struct {
		layers   []analysis.Layer
		outlined bool
	}{
		{[]analysis.Layer{{Name: "workload <&>"}, {Name: "namespaces + cgroups", Isolates: true}, {Name: "host"}}, true},
		{[]analysis.Layer{{Name: "workload"}, {Name: "host"}}, false},
	} {
		d := layerDiagram(analysis.KindOSLevel, tt.layers)
		dec := xml.NewDecoder(strings.NewReader(d))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("diagram is not XML: %v\n%s", err, d)
			}
		}
		if !strings.Contains(d, analysis.KindOSLevel) || strings.Contains(d, `stroke="#c0392b"`) != tt.outlined {
			t.Errorf("diagram %s: want its kind named, the isolating layer outlined: %v", d, tt.outlined)
		}
	}
}
