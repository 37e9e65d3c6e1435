package main

import (
	"fmt"
	"os"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// notifier tells systemd (Type=notify) what the process is doing. Outside
// systemd (no NOTIFY_SOCKET) every call does nothing.
type notifier struct{ log *zap.Logger }

func (n notifier) send(state string) {
	// The environment is kept: a new binary started by SIGUSR2 needs
	// NOTIFY_SOCKET to report itself ready.
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("notifying systemd", zap.String("state", state), zap.Error(err))
	}
}

// ready says the process serves. MAINPID makes systemd follow a process
// started by a binary upgrade (the unit needs NotifyAccess=all for that).
func (n notifier) ready() { n.send(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid())) }

// reloading precedes a config reload; ready follows it, whatever the outcome.
func (n notifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// stopping precedes a shutdown; it is not sent when a new binary takes over.
func (n notifier) stopping() { n.send("STOPPING=1") }
