// Package win32 holds the Windows twin of the agent (src/agent.c): its line
// protocol and the idle, cpu, syscall, fileio, crash and hang workloads,
// in C, for the wine driver to build with mingw-w64 and run under Wine.
// See src/agent.c for what each workload does and why it is C.
package win32

import _ "embed"

// Source is src/agent.c.
//
//go:embed src/agent.c
var Source []byte

// Workloads are the workloads the Windows agent runs.
var Workloads = []string{"idle", "cpu", "syscall", "fileio", "crash", "hang"}
