package docker_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"virtbench/drivers"
	"virtbench/drivers/docker"
	"virtbench/drivers/drivertest"
)

// TestMain removes the images the tests imported (those that were not in
// the engine before).
func TestMain(m *testing.M) {
	before, err := docker.Images(context.Background())
	code := m.Run()
	if err == nil {
		docker.RemoveImages(context.Background(), before)
	}
	drivertest.CleanupAgent()
	os.Exit(code)
}

func factory(env drivers.Env) (drivers.Driver, error) { return docker.New(env) }

// leftContainers lists containers of env's run still in the engine.
func leftContainers(env drivers.Env) []string {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return []string{err.Error()}
	}
	list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.Label+".run="+filepathBase(env.StateDir))})
	if err != nil {
		return []string{err.Error()}
	}
	var left []string
	for _, c := range list.Items {
		left = append(left, c.ID)
	}
	return left
}

func filepathBase(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, "docker", drivertest.Options{ReadyTimeout: time.Minute, Leaks: leftContainers})
}

func TestFootprint(t *testing.T) {
	env := drivertest.NewEnv(t, drivertest.Options{})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "fp", Workload: "idle"})
	drivertest.Ready(t, inst, time.Minute)
	if pids := inst.Processes(); len(pids) != 2 {
		t.Errorf("processes %v, want the container's init and its shim", pids)
	}
	d, _ := factory(env)
	u, err := d.(drivers.ImageSizer).ImageUsage()
	if err != nil || u.Apparent < 1<<20 {
		t.Errorf("image usage %+v, %v", u, err)
	}
}

// TestVethNetwork serves HTTP in a Docker container with network=veth and
// fetches it from virtbench's peer namespace.
func TestVethNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.CheckNetworkPath(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}}))
}

// TestTools runs fio, iperf3, Redis and nginx from the tools layer (bound
// read-only into the container), the servers driven from the host over
// the veth.
func TestTools(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.CheckTools(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}}))
}

// TestDaemons: the engine's daemons are dockerd and its containerd, found
// through their sockets.
func TestDaemons(t *testing.T) {
	d, err := docker.New(drivertest.NewEnv(t, drivertest.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Check(t, d)
	pids, err := d.Daemons()
	if err != nil || len(pids) == 0 {
		t.Fatalf("daemons %v, %v", pids, err)
	}
	var names []string
	for _, p := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSpace(string(comm)))
	}
	if names[0] != "dockerd" || len(names) > 1 && names[1] != "containerd" {
		t.Errorf("daemons %v (%v), want dockerd, then containerd where one answers", pids, names)
	}
}
