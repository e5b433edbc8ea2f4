package agentproc

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// The poller is one goroutine, blocked in epoll_wait on one OS thread,
// that reads the output pipes of every process the package starts and
// notes every exit (a pidfd polls readable once its process has exited).
// A process then costs the harness no goroutine and no read buffer of its
// own while it runs: only its incomplete last line, if any. At a density
// sweep's top (thousands of containers), goroutines parked on each pipe
// and pidfd would cost their stacks and buffers thousands of times over.
//
// It is process-wide state because it is an OS resource, like the Go
// runtime's own poller; it starts with the first process and lives as long
// as the harness.
var thePoller struct {
	once sync.Once
	p    *poller
	err  error
}

// pollerBatch bounds the reads of one pipe per wakeup, so that a process
// flooding its console cannot keep the poller from the others: the pipe,
// level-triggered, is readable again at the next epoll_wait.
const pollerBatch = 16

// pollerBuffer is the poller's one read buffer, shared by every pipe.
const pollerBuffer = 4096

type poller struct {
	epfd int
	mu   sync.Mutex
	fds  map[int32]func(buf []byte)
}

// getPoller returns the process's poller, starting it the first time.
func getPoller() (*poller, error) {
	thePoller.once.Do(func() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			thePoller.err = fmt.Errorf("agentproc: epoll_create1: %w", err)
			return
		}
		thePoller.p = &poller{epfd: epfd, fds: map[int32]func([]byte){}}
		go thePoller.p.loop()
	})
	return thePoller.p, thePoller.err
}

// add calls fn on the poller's goroutine whenever fd is readable or hung
// up, with the poller's read buffer, until remove(fd). fn must not block.
func (p *poller) add(fd int, fn func(buf []byte)) error {
	p.mu.Lock()
	p.fds[int32(fd)] = fn
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.fds, int32(fd))
		p.mu.Unlock()
		return fmt.Errorf("agentproc: epoll_ctl: %w", err)
	}
	return nil
}

// remove stops watching fd and closes it. It is called on the poller's
// goroutine (by fd's function), so no later event of the same wakeup can
// find fd's number taken by another file with the old function.
func (p *poller) remove(fd int) {
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	p.mu.Lock()
	delete(p.fds, int32(fd))
	p.mu.Unlock()
	unix.Close(fd)
}

func (p *poller) loop() {
	events := make([]unix.EpollEvent, 128)
	buf := make([]byte, pollerBuffer)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			panic(fmt.Sprintf("agentproc: epoll_wait: %v", err))
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			fn := p.fds[ev.Fd]
			p.mu.Unlock()
			if fn != nil {
				fn(buf)
			}
		}
	}
}

// watchPipe has the poller read the non-blocking pipe fd, passing what it
// reads to write, until EOF or a read error; then it closes fd and calls
// eof.
func (p *poller) watchPipe(fd int, write func([]byte), eof func()) error {
	return p.add(fd, func(buf []byte) {
		for range pollerBatch {
			n, err := unix.Read(fd, buf)
			switch {
			case n > 0:
				write(buf[:n])
				continue
			case errors.Is(err, unix.EAGAIN):
				return
			case errors.Is(err, unix.EINTR):
				continue
			}
			p.remove(fd)
			eof()
			return
		}
	})
}

// watchExit has the poller call exited once the process of pidfd has
// exited (it is then a zombie, and wait4 returns at once); then it closes
// pidfd.
func (p *poller) watchExit(pidfd int, exited func()) error {
	return p.add(pidfd, func([]byte) {
		// An event for a number that was reused after a remove in the same
		// wakeup is not this process's exit: ask the pidfd itself.
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 0); err == nil && n == 0 {
			return
		}
		p.remove(pidfd)
		exited()
	})
}
