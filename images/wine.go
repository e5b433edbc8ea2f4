package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// MinGW is the cross compiler that builds the Windows agent (Debian's
// gcc-mingw-w64-x86-64).
const MinGW = "x86_64-w64-mingw32-gcc"

// BuildWinAgent compiles the Windows agent's C source with MinGW into
// exe, unless exe was built from this source already (its hash is kept in
// exe.sha256).
func BuildWinAgent(exe string, source []byte) error {
	sum := sha256.Sum256(source)
	stamp := hex.EncodeToString(sum[:])
	if b, err := os.ReadFile(exe + ".sha256"); err == nil && string(b) == stamp {
		if _, err := os.Stat(exe); err == nil {
			return nil
		}
	}
	dir := filepath.Dir(exe)
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "agent.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	out := filepath.Join(tmp, "agent.exe")
	cmd := exec.Command(MinGW, "-O2", "-Wall", "-static", "-o", out, src, "-lntdll")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("images: %s: %w\n%s", MinGW, err, bytes.TrimSpace(b))
	}
	if err := os.Rename(out, exe); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return writeAtomic(exe+".sha256", []byte(stamp), 0o644)
}

// WinePrefix is a Wine prefix (the C: drive and registry of a Windows
// installation) made once by wineboot and cached.
type WinePrefix struct {
	Dir string
	// Created is when it was made and Took how long wineboot took.
	Created time.Time
	Took    time.Duration
}

// winePrefixInfo is the prefix's record beside it.
const winePrefixInfo = "prefix.json"

// BuildWinePrefix returns the Wine prefix in cacheDir/wine/prefix, making
// it with wine's wineboot (wine is the wine64 loader, wineserver its
// server) the first time. Wine writes nothing outside the prefix but its
// server's socket directory under /tmp, which goes when the server exits;
// the server is stopped before BuildWinePrefix returns.
func BuildWinePrefix(ctx context.Context, cacheDir, wine, wineserver string) (WinePrefix, error) {
	root := filepath.Join(cacheDir, "wine")
	dir := filepath.Join(root, "prefix")
	info := filepath.Join(root, winePrefixInfo)
	if p, err := readPrefix(dir, info); err == nil {
		return p, nil
	}
	unlock, err := lock(filepath.Join(cacheDir, "wine.lock"))
	if err != nil {
		return WinePrefix{}, fmt.Errorf("images: wine prefix: %w", err)
	}
	defer unlock()
	if p, err := readPrefix(dir, info); err == nil {
		return p, nil // made while this one waited for the lock
	}
	if err := os.RemoveAll(dir); err != nil {
		return WinePrefix{}, fmt.Errorf("images: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return WinePrefix{}, fmt.Errorf("images: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".prefix-")
	if err != nil {
		return WinePrefix{}, fmt.Errorf("images: %w", err)
	}
	defer os.RemoveAll(tmp)
	env := append(os.Environ(), "WINEPREFIX="+tmp, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=;winemenubuilder.exe=d")
	begin := time.Now()
	boot := exec.CommandContext(ctx, wine, "wineboot", "--init")
	boot.Env = env
	out, err := boot.CombinedOutput()
	// wineboot returns before the server has written the registry out;
	// wineserver -w waits for it to exit.
	wait := exec.CommandContext(ctx, wineserver, "-w")
	wait.Env = env
	werr := wait.Run()
	if err := errors.Join(err, werr); err != nil {
		return WinePrefix{}, fmt.Errorf("images: wineboot --init: %w\n%s", err, bytes.TrimSpace(out))
	}
	p := WinePrefix{Dir: dir, Created: time.Now().UTC(), Took: time.Since(begin)}
	if err := os.Rename(tmp, dir); err != nil {
		return WinePrefix{}, fmt.Errorf("images: %w", err)
	}
	b, _ := json.Marshal(p)
	if err := writeAtomic(info, b, 0o644); err != nil {
		return WinePrefix{}, err
	}
	return p, nil
}

func readPrefix(dir, info string) (WinePrefix, error) {
	var p WinePrefix
	b, err := os.ReadFile(info)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, err
	}
	if st, err := os.Stat(filepath.Join(dir, "system.reg")); err != nil || !st.Mode().IsRegular() {
		return p, errors.New("images: the wine prefix has no system.reg")
	}
	p.Dir = dir
	return p, nil
}
