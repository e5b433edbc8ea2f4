package native_test

import (
	"os"
	"os/exec"
	"testing"

	"virtbench/drivers/drivertest"
)

func BenchmarkZZStartProcess(b *testing.B) {
	agent := drivertest.Agent(b)
	devnull, _ := os.Open(os.DevNull)
	for b.Loop() {
		p, err := os.StartProcess(agent, []string{agent, "crash", "-code", "0"}, &os.ProcAttr{Files: []*os.File{devnull, devnull, devnull}})
		if err != nil {
			b.Fatal(err)
		}
		p.Wait()
	}
}

func BenchmarkZZExecTrue(b *testing.B) {
	for b.Loop() {
		exec.Command("/bin/true").Run()
	}
}
func BenchmarkZZExecExit(b *testing.B) {
	agent := drivertest.Agent(b)
	for b.Loop() {
		if err := exec.Command(agent, "crash", "-code", "0").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
