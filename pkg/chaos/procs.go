package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/localmysql"
)

// proc is one supervised OS process: started again after it dies, as a
// container runtime would, unless it was stopped for good.
type proc struct {
	name string // "sender-2"
	kind string // "sender"
	bin  string
	args []string
	env  []string
	// httpAddr is the process's ops server (workers) or API (sandbox).
	httpAddr string
	logPath  string
	// onLine, when set, sees every line the process writes, in order; the
	// incarnation number tells restarts apart.
	onLine func(incarnation int, line []byte)
	// onExit runs once an incarnation has exited and all its output was
	// read; killed tells a kill of ours from a crash.
	onExit func(incarnation int, killed bool)

	mu          sync.Mutex
	cmd         *exec.Cmd
	exited      chan struct{}
	incarnation int
	killing     bool
	down        bool // stopped for good
	crashes     int
	started     time.Time
	// baseline is the goroutine count read soon after this incarnation
	// became ready.
	baseline int
}

func (p *proc) start() error {
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	localmysql.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.mu.Lock()
	p.incarnation++
	inc := p.incarnation
	p.cmd, p.killing, p.started, p.baseline = cmd, false, time.Now(), -1
	exited := make(chan struct{})
	p.exited = exited
	p.mu.Unlock()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = log.Write(append(line, '\n'))
			if p.onLine != nil {
				p.onLine(inc, line)
			}
		}
		_, _ = io.Copy(log, r) // a line too long for the scanner
	}()
	go func() {
		err := cmd.Wait()
		_ = w.CloseWithError(io.EOF)
		<-read
		log.Close()
		p.mu.Lock()
		killed := p.killing
		if !killed && !p.down {
			p.crashes++
			fmt.Fprintf(os.Stderr, "chaos: %s exited by itself (%v); its log: %s\n", p.name, err, p.logPath)
		}
		p.mu.Unlock()
		if p.onExit != nil {
			p.onExit(inc, killed)
		}
		close(exited)
	}()
	return nil
}

// supervise keeps p running until ctx ends: a dead process is started
// again after restartDelay.
func (p *proc) supervise(ctx context.Context, restartDelay time.Duration) {
	for {
		p.mu.Lock()
		exited, down := p.exited, p.down
		p.mu.Unlock()
		if down {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-exited:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(restartDelay):
		}
		p.mu.Lock()
		down = p.down
		p.mu.Unlock()
		if down {
			return
		}
		for p.start() != nil {
			if !pause.For(ctx, time.Second) {
				return
			}
		}
		if p.kind != "nats" && p.kind != "sfsandbox" {
			go p.measureBaseline(ctx)
		}
	}
}

// measureBaseline reads the goroutines of a fresh incarnation once it is
// ready and has run its first reads and pulls.
func (p *proc) measureBaseline(ctx context.Context) {
	p.mu.Lock()
	inc := p.incarnation
	p.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for !p.ready(ctx) {
		if time.Now().After(deadline) || !pause.For(ctx, 200*time.Millisecond) {
			return
		}
	}
	if !pause.For(ctx, 2*time.Second) {
		return
	}
	m, err := p.metrics(ctx, "go_goroutines")
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.incarnation == inc {
		p.baseline = int(m["go_goroutines"])
	}
	p.mu.Unlock()
}

// kill sends SIGKILL and waits for the process and its output.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL, true)
}

// stop ends the process for good: SIGTERM, then SIGKILL after 30 s.
func (p *proc) stop() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.signal(syscall.SIGTERM, false)
}

func (p *proc) signal(sig syscall.Signal, killing bool) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if exited == nil {
		p.mu.Unlock()
		return
	}
	select {
	case <-exited:
		p.mu.Unlock()
		return
	default:
	}
	p.killing = p.killing || killing
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (p *proc) running() (pid int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return 0, false
	}
	select {
	case <-p.exited:
		return 0, false
	default:
		return p.cmd.Process.Pid, true
	}
}

// ready reports whether the process's /readyz answers 200.
func (p *proc) ready(ctx context.Context) bool {
	st, _, err := httpGet(ctx, "http://"+p.httpAddr+"/readyz")
	return err == nil && st == http.StatusOK
}

// metrics reads the named gauges from /metrics (label sets ignored: the
// first sample wins).
func (p *proc) metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	st, body, err := httpGet(ctx, "http://"+p.httpAddr+"/metrics")
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: status %d", p.name, st)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		base, _, _ := strings.Cut(name, "{")
		for _, n := range names {
			if base == n {
				if _, seen := out[n]; !seen {
					if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
						out[n] = v
					}
				}
			}
		}
	}
	return out, nil
}

// rss is the resident set size of the running process, in bytes.
func (p *proc) rss() (int64, error) {
	pid, ok := p.running()
	if !ok {
		return 0, fmt.Errorf("%s is not running", p.name)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// natsServer is Debian's nats-server (or any on PATH) as a separate process.
type natsServer struct {
	*proc
	port, monitor int
	store         string
}

func newNATS(dir string) (*natsServer, error) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		return nil, errors.New("no nats-server binary in PATH (apt-get install nats-server, or make deps)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mon, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &natsServer{port: port, monitor: mon, store: filepath.Join(dir, "nats-store")}
	n.proc = &proc{name: "nats-server", kind: "nats", bin: bin, logPath: filepath.Join(dir, "nats-server.log"),
		args:     []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mon), "-js", "-sd", n.store},
		httpAddr: "127.0.0.1:" + strconv.Itoa(mon)}
	return n, nil
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *natsServer) startAndWait() error {
	if err := n.start(); err != nil {
		return err
	}
	return waitTCP("127.0.0.1:"+strconv.Itoa(n.port), 20*time.Second)
}

// restart stops the server (SIGKILL: a crash, which the file store must
// survive) and starts it again on the same port; with wipe its store is
// deleted in between, as after a lost volume.
func (n *natsServer) restart(wipe bool) error {
	n.kill()
	if wipe {
		if err := os.RemoveAll(n.store); err != nil {
			return err
		}
	}
	return n.startAndWait()
}

// connections is the number of client connections the server holds.
func (n *natsServer) connections(ctx context.Context) (int, error) {
	st, body, err := httpGet(ctx, "http://"+n.httpAddr+"/varz")
	if err != nil {
		return 0, err
	}
	if st != http.StatusOK {
		return 0, fmt.Errorf("nats /varz: status %d", st)
	}
	i := strings.Index(body, `"connections":`)
	if i < 0 {
		return 0, errors.New("nats /varz has no connections field")
	}
	rest := strings.TrimSpace(body[i+len(`"connections":`):])
	end := strings.IndexAny(rest, ",}")
	if end < 0 {
		return 0, errors.New("nats /varz: bad connections field")
	}
	return strconv.Atoi(strings.TrimSpace(rest[:end]))
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// picked are the ports handed out: a port stays its process's across
// restarts, so no two processes may be given the same one.
var picked = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort picks a free listening port below the kernel's ephemeral range:
// a port from that range, free when picked, may be taken by some outgoing
// connection's source port while its process is down, and a worker
// restarted after a kill could then not listen again.
func freePort() (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}
	base := max(lo-12000, 1024)
	picked.Lock()
	defer picked.Unlock()
	for range 200 {
		port := base + rand.IntN(lo-base)
		if picked.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		picked.ports[port] = true
		return port, nil
	}
	return 0, errors.New("no free port below the ephemeral range")
}

func waitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening within %s: %w", addr, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jitter is d ± half of d, from rng.
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rng.Int64N(int64(d)))
}
