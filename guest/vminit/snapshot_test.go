package vminit

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestWorkloadLine(t *testing.T) {
	w := Workload{Args: []string{"fileio", "-size", "1048576"}, IP: "10.200.0.2/30", Seed: []byte{1, 2, 3}, Disk: true}
	line, err := FormatWorkload(w)
	if err != nil {
		t.Fatal(err)
	}
	// The line is read one byte at a time, so that what follows it on
	// the console (STOP) stays there.
	r := io.MultiReader(bytes.NewReader(line), strings.NewReader(StopCommand+"\n"))
	got, err := readLine(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseWorkload(got)
	if err != nil || !reflect.DeepEqual(back, w) {
		t.Errorf("ParseWorkload(%q) = %+v, %v; want %+v", got, back, err, w)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != StopCommand+"\n" {
		t.Errorf("after the line the console holds %q", rest)
	}
	for _, bad := range []string{"STOP", `WORKLOAD {"args":[]}`, "WORKLOAD {"} {
		if _, err := ParseWorkload(bad); err == nil {
			t.Errorf("ParseWorkload(%q) accepted it", bad)
		}
	}
}
