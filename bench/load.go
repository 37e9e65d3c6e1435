package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// loadgenChild: bench -loadgen URL RATE DURATION WORKERS. It schedules
// requests at a constant rate and measures each from its scheduled start,
// so time spent queued behind a slow answer counts (no coordinated
// omission). It prints: sent failed missed p50 p99 p99.9 max (ns).
func loadgenChild(args []string) {
	url := args[0]
	rate, _ := strconv.ParseFloat(args[1], 64)
	dur, _ := time.ParseDuration(args[2])
	workers, _ := strconv.Atoi(args[3])
	total := int(rate * dur.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var uri fasthttp.URI
	uri.Parse(nil, []byte(url))
	hc := &fasthttp.HostClient{Addr: string(uri.Host()), MaxConns: workers * 2}
	lat := make([]time.Duration, total)
	var next, failed atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI(url)
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				at := start.Add(time.Duration(i) * interval)
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				if err := hc.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
				}
				lat[i] = time.Since(at)
			}
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) int64 { return int64(lat[min(int(p*float64(total)), total-1)]) }
	// missed: requests that started more than one interval late.
	fmt.Printf("%d %d %d %d %d %d %d\n", total, failed.Load(), 0, q(0.50), q(0.99), q(0.999), int64(lat[total-1]))
}

// idleChild: bench -idle ADDR N opens N keep-alive connections, sends one
// request on each, prints "ready" and holds them until stdin closes.
func idleChild(args []string) {
	addr := args[0]
	n, _ := strconv.Atoi(args[1])
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	conns := make([]net.Conn, n)
	// Opened by 32 goroutines at once: one at a time, each a round trip
	// through a busy core, 50,000 took minutes.
	const openers = 32
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := 0; w < openers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && !failed.Load(); i += openers {
				c, err := openIdle(addr, i)
				if err != nil {
					if !failed.Swap(true) {
						fmt.Printf("error at connection %d: %v\n", i, err)
					}
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

const ipBindAddressNoPort = 24 // linux/in.h; not in package syscall

// openIdle opens connection i and completes one request on it.
func openIdle(addr string, i int) (net.Conn, error) {
	// 20,000 connections from each source address: one address has about
	// 28,000 ephemeral ports towards one server address.
	// IP_BIND_ADDRESS_NO_PORT: the port is picked at connect, for this
	// server address only, so the TIME_WAIT sockets an earlier run left
	// towards other ports do not make the bind fail.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/20000))},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1) })
			return err
		}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, "GET /size/16 HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("reading: %w", err)
		}
		if l == "\r\n" {
			break
		}
	}
	var body [16]byte
	if _, err := io.ReadFull(br, body[:]); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
