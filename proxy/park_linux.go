package proxy

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// pollSet waits for bytes on parked sockets: one epoll set for all of
// them, as nginx keeps its waiting connections. The set's own descriptor
// waits in the runtime's poller, like a socket: a blocking epoll_wait on a
// thread of its own cost a thread switch per resumed connection, which
// made a parked request 2.5 times as expensive in CPU. A socket may be in
// several epoll sets; the runtime's has each socket too (edge-triggered),
// and this one asks for one report per socket (EPOLLONESHOT).
type pollSet struct {
	epfd   int
	file   *os.File // epfd, non-blocking, in the runtime's poller
	rc     syscall.RawConn
	events []syscall.EpollEvent
	ready  []int
	err    error
	waitFn func(fd uintptr) bool
}

func newPollSet() (*pollSet, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	p := &pollSet{epfd: epfd, file: os.NewFile(uintptr(epfd), "parked connections"), events: make([]syscall.EpollEvent, 256)}
	if p.rc, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, err
	}
	if err := p.file.SetReadDeadline(time.Time{}); err != nil {
		p.file.Close()
		return nil, errors.New("the epoll descriptor is not pollable by the runtime")
	}
	p.waitFn = p.collect
	return p, nil
}

// arm asks for one report when fd has bytes or its peer closed; add: fd
// is not in the set yet. A socket stays in the set, disarmed by its
// report, while it is served, so parking it again is one system call.
func (p *pollSet) arm(fd int, add bool) error {
	return p.ctl(fd, add, syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLONESHOT)
}

// watchClose asks for one report when fd's peer closed (or the socket
// failed), not for bytes; add: fd is not in the set yet. A report of a
// pending close comes at once.
func (p *pollSet) watchClose(fd int, add bool) error {
	return p.ctl(fd, add, syscall.EPOLLRDHUP|syscall.EPOLLONESHOT)
}

func (p *pollSet) ctl(fd int, add bool, events uint32) error {
	op := syscall.EPOLL_CTL_MOD
	if add {
		op = syscall.EPOLL_CTL_ADD
	}
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	return os.NewSyscallError("epoll_ctl", syscall.EpollCtl(p.epfd, op, fd, &ev))
}

// wait appends to ready the sockets that have bytes (or were closed by
// the peer), waiting at most timeout; wake ends it early. Only one
// goroutine waits.
func (p *pollSet) wait(ready []int, timeout time.Duration) ([]int, error) {
	_ = p.file.SetReadDeadline(time.Now().Add(timeout))
	p.ready, p.err = ready, nil
	err := p.rc.Read(p.waitFn)
	ready, p.ready = p.ready, nil
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	if err == nil {
		err = p.err
	}
	return ready, err
}

// collect takes what the set has without waiting; the runtime's poller
// waits while it has nothing.
func (p *pollSet) collect(fd uintptr) bool {
	for {
		n, err := syscall.EpollWait(int(fd), p.events, 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			p.err = os.NewSyscallError("epoll_wait", err)
			return true
		}
		for _, ev := range p.events[:n] {
			p.ready = append(p.ready, int(ev.Fd))
		}
		if n < len(p.events) {
			return len(p.ready) > 0
		}
	}
}

func (p *pollSet) close() { p.file.Close() }
