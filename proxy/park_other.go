//go:build !linux

package proxy

import (
	"errors"
	"time"
)

// pollSet is Linux's (park_linux.go); elsewhere idle connections stay
// with fasthttp.
type pollSet struct{}

func newPollSet() (*pollSet, error) {
	return nil, errors.New("parking idle connections needs epoll (Linux)")
}

func (*pollSet) arm(int, bool) error                          { return errors.ErrUnsupported }
func (*pollSet) watchClose(int, bool) error                   { return errors.ErrUnsupported }
func (*pollSet) wait(r []int, _ time.Duration) ([]int, error) { return r, errors.ErrUnsupported }
func (*pollSet) close()                                       {}
