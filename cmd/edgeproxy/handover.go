package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/tableflip"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// upgradeTimeout is how long a new binary has to get ready after SIGUSR2
// before it is killed and the old process keeps serving (SPEC §2).
const upgradeTimeout = 10 * time.Second

// handover is the binary upgrade of SPEC §2 (nginx's USR2 + QUIT), built
// on tableflip: on SIGUSR2 the executable at the same path is started with
// the listening sockets, and once it reports ready this process stops
// accepting and drains. The sockets never close, so no connection is lost:
// what waits in the accept queue is taken by whichever process accepts next.
type handover struct {
	upg     *tableflip.Upgrader
	log     *zap.Logger
	pidFile string
}

// newHandover must run once per process, before any listener is opened.
func newHandover(pidFile string, log *zap.Logger) (*handover, error) {
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: upgradeTimeout, PIDFile: pidFile})
	if err != nil {
		return nil, fmt.Errorf("binary upgrade set-up: %w", err)
	}
	return &handover{upg: upg, log: log, pidFile: pidFile}, nil
}

// upgraded reports whether this process was started by a binary upgrade.
func (h *handover) upgraded() bool { return h.upg.HasParent() }

// listen returns the socket the old process handed over for role, or a new
// one on addr. Sockets are named by role and configured address, not by
// the address alone: the public and admin listeners may both be ":0", and
// a changed address in the new config gets a fresh socket (the old one is
// closed once the new process is ready).
func (h *handover) listen(role, addr string) (net.Listener, error) {
	name := role + " " + addr
	ln, err := h.upg.Listener("tcp", name)
	if err != nil {
		return nil, fmt.Errorf("inheriting the %s listener: %w", role, err)
	}
	if ln != nil {
		return ln, nil
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	tl, ok := ln.(tableflip.Listener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("%T cannot be handed over", ln)
	}
	if err := h.upg.AddListener("tcp", name, tl); err != nil {
		ln.Close()
		return nil, fmt.Errorf("registering the %s listener for upgrades: %w", role, err)
	}
	return ln, nil
}

// hotKeysName names the file of hot coupon keys handed to a new process.
const hotKeysName = "edgeproxy hot coupon keys"

// passHotKeys gives the next process the coupon keys this one serves most,
// one a line in an anonymous in-memory file, so that it reads them from
// Redis before it reports ready instead of missing on each at the switch.
func (h *handover) passHotKeys(keys []string) error {
	fd, err := unix.MemfdCreate("edgeproxy-hot-keys", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "edgeproxy-hot-keys")
	defer f.Close()
	if _, err := f.WriteString(strings.Join(keys, "\n")); err != nil {
		return err
	}
	return h.upg.AddFile(hotKeysName, f)
}

// hotKeys returns the keys the old process passed, or none.
func (h *handover) hotKeys() []string {
	f, err := h.upg.File(hotKeysName)
	if err != nil || f == nil {
		return nil
	}
	defer f.Close()
	// The file offset is shared with the old process: read by position.
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64<<20))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// ready writes the PID file and, after an upgrade, tells the old process
// to stop accepting. Call it once the listeners serve.
func (h *handover) ready() error { return h.upg.Ready() }

// replaced is closed once a new process has taken over.
func (h *handover) replaced() <-chan struct{} { return h.upg.Exit() }

// upgrade starts the new binary and waits until it is ready, exits, or
// upgradeTimeout passes; on failure this process keeps serving. It blocks,
// so the caller runs it in a goroutine of its own.
func (h *handover) upgrade() {
	exe, _ := exec.LookPath(os.Args[0])
	h.log.Info("binary upgrade: starting the new process", zap.String("executable", exe))
	start := time.Now()
	if err := h.upg.Upgrade(); err != nil {
		h.log.Error("binary upgrade failed; this process keeps serving", zap.String("why", upgradeFailure(err)), zap.Error(err))
		return
	}
	h.log.Info("binary upgrade: the new process is ready; this one stops accepting and drains", zap.Duration("took", time.Since(start)))
}

// upgradeFailure says in an operator's words why an upgrade did not happen.
func upgradeFailure(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "parent hasn't exited"):
		return "the previous process is still draining; send SIGUSR2 again once it has exited"
	case strings.Contains(msg, "timed out"):
		return fmt.Sprintf("the new process was not ready within %v and was killed", upgradeTimeout)
	case strings.Contains(msg, "exited"):
		return "the new process exited before it was ready (its configuration check failed, or see its log lines above)"
	case strings.Contains(msg, "in progress"):
		return "an upgrade is already in progress"
	case strings.Contains(msg, "already upgraded"), strings.Contains(msg, "terminating"):
		return "this process is already shutting down"
	default:
		return "the new process could not be started"
	}
}

// stop ends a normal exit (not a hand-over): no more upgrades, and the PID
// file goes if it still names this process.
func (h *handover) stop() {
	h.upg.Stop()
	if err := removePIDFile(h.pidFile, os.Getpid()); err != nil {
		h.log.Warn("removing the pid file", zap.String("pid_file", h.pidFile), zap.Error(err))
	}
}

// removePIDFile removes path if it holds pid. After a hand-over the file
// names the new process and must stay.
func removePIDFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if string(bytes.TrimSpace(b)) != strconv.Itoa(pid) {
		return nil
	}
	return os.Remove(path)
}

// pollUntil polls ready every interval until it holds or ctx ends.
func pollUntil(ctx context.Context, interval time.Duration, ready func() bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
