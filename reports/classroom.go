package reports

import (
	"fmt"
	"html"
	"strings"

	"virtbench/analysis"
)

// devicesText explains paravirtual against emulated devices.
const devicesText = "An emulated device (an IDE disk, an e1000 NIC) makes the guest drive hardware that does not exist: every register access traps into QEMU. A paravirtual (virtio) device is an interface made for VMs: the guest queues requests in rings shared with QEMU and notifies it once per batch."

// layerDiagram draws the layers from the workload (top) to the hardware
// (bottom) as a small self-contained SVG, the isolating layer outlined in
// red.
func layerDiagram(kind string, layers []analysis.Layer) string {
	const w, h, gap, top = 300, 30, 6, 26
	height := top + len(layers)*(h+gap) + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="layers" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="layers of %s">`, w+20, height, w+20, height, html.EscapeString(kind))
	fmt.Fprintf(&b, `<text x="10" y="17" font-family="sans-serif" font-size="13" font-weight="bold">%s</text>`, html.EscapeString(kind))
	for i, l := range layers {
		y := top + i*(h+gap)
		fill, stroke, sw := "#eef3f8", "#6b7f95", 1
		switch {
		case i == 0:
			fill = "#fff6d6"
		case i == len(layers)-1:
			fill = "#e6e6e6"
		}
		if l.Isolates {
			stroke, sw = "#c0392b", 3
		}
		fmt.Fprintf(&b, `<rect x="10" y="%d" width="%d" height="%d" rx="4" fill="%s" stroke="%s" stroke-width="%d"/>`, y, w, h, fill, stroke, sw)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-family="sans-serif" font-size="12">%s</text>`, 10+w/2, y+h/2+4, html.EscapeString(l.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
