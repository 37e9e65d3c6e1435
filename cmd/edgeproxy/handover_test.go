package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpgradeFailureSaysWhy(t *testing.T) {
	// The texts are tableflip's (v1.2.3).
	tests := []struct{ err, want string }{
		{"child pid 12 exited: exit status 1", "exited before it was ready"},
		{"new child pid 12 timed out", "not ready within 10s"},
		{"parent hasn't exited", "still draining"},
		{"upgrade in progress", "already in progress"},
		{"already upgraded", "already shutting down"},
		{"can't start child: fork/exec /x: no such file or directory", "could not be started"},
	}
	for _, tt := range tests {
		if got := upgradeFailure(errors.New(tt.err)); !strings.Contains(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestRemovePIDFileOnlyOwnPID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edgeproxy.pid")
	if err := removePIDFile(path, 42); err != nil {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(path, []byte("43"), 0o644)
	if err := removePIDFile(path, 42); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the successor's pid file was removed")
	}
	os.WriteFile(path, []byte("42\n"), 0o644)
	if err := removePIDFile(path, 42); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("own pid file kept: %v", err)
	}
	if err := removePIDFile("", 42); err != nil {
		t.Errorf("no pid file configured: %v", err)
	}
}
