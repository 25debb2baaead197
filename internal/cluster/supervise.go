package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proc is one child process; its output goes to <dir>/logs/<name>.log.
type proc struct {
	name    string
	cmd     *exec.Cmd
	log     string // its file
	started time.Time
	done    chan struct{}
}

// startProc starts a process that dies with SIGKILL if the cluster dies
// without stopping it.
func (c *cluster) startProc(name, bin string, args ...string) (*proc, error) {
	return c.startProcDying(syscall.SIGKILL, name, bin, args...)
}

func (c *cluster) startProcDying(onParentDeath syscall.Signal, name, bin string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(filepath.Join(c.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = ownGroup(onParentDeath) // Ctrl-C reaches this program only; it stops the rest in order
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf.Name(), started: time.Now(), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// logTail is the last lines of the process's log, to say why it failed.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// stop asks gracefully, then kills after 30 s (an app drains, then
// finishes its requests: 15 s by default).
func (p *proc) stop(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// service is one process the cluster starts again whenever it exits, until
// the cluster stops it.
type service struct {
	name  string
	start func(again bool) (*proc, error) // again: after the process exited
	ready func() bool                     // polled after each start
	after func() error                    // once ready, after each start (nil: nothing)
	sig   os.Signal                       // the graceful stop
	quit  chan struct{}
	done  chan struct{}
}

// errPortTaken is a process that could not bind its port.
var errPortTaken = errors.New("its port is in use")

// waitReady polls s.ready until it holds, the process exits, the service
// is stopped, or 20 s pass.
func (s *service) waitReady(p *proc) error {
	deadline := time.Now().Add(20 * time.Second)
	for !s.ready() {
		select {
		case <-p.done:
			tail := p.logTail()
			if strings.Contains(strings.ToLower(tail), "address already in use") {
				return fmt.Errorf("%s exited at start (%w); the end of its log:\n%s", s.name, errPortTaken, tail)
			}
			return fmt.Errorf("%s exited at start; the end of its log:\n%s", s.name, tail)
		case <-s.quit:
			return fmt.Errorf("%s: stopped while starting", s.name)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start within 20 s; see its log", s.name)
		}
	}
	if s.after != nil {
		return s.after()
	}
	return nil
}

// supervise runs s until s.quit is closed. The first start's outcome goes
// to ready: a cluster that cannot start says so instead of retrying.
func (c *cluster) supervise(s *service, ready chan<- error) {
	defer close(s.done)
	backoff := 200 * time.Millisecond
	for first := true; ; first = false {
		p, err := s.start(!first)
		if err == nil {
			if err = s.waitReady(p); err != nil {
				p.stop(syscall.SIGKILL)
			}
		}
		if first {
			ready <- err
			if err != nil {
				return
			}
		}
		if err == nil {
			c.setPID(s.name, p.cmd.Process.Pid)
			select {
			case <-s.quit:
				p.stop(s.sig)
				return
			case <-p.done:
			}
			// A process that ran a while gets a quick restart; one that
			// keeps dying at once gets a growing pause (at most 5 s).
			if time.Since(p.started) > 10*time.Second {
				backoff = 200 * time.Millisecond
			}
			c.logf("%s exited (%v); starting it again", s.name, p.cmd.ProcessState)
		} else {
			c.logf("%v; trying again", err)
		}
		select {
		case <-s.quit:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stopServices stops a group of services at once and waits for them.
func stopServices(group []*service) {
	for _, s := range group {
		close(s.quit)
	}
	for _, s := range group {
		<-s.done
	}
}
