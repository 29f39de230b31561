// Package integration runs the Go SDK against real ferryd processes, on a
// real Kafka broker (scripts/kafka/kafka) and on the embedded store, like
// sdk/python/tests. The ferryd binary is the repository's
// build/src/server/ferryd (scripts/build); FERRYD_BIN overrides it. Without
// a binary the tests are skipped, unless FERRY_INTEGRATION=1 (as
// scripts/test-go sets), which makes that a failure.
package integration

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	repo        = mustAbs("../../..")
	kafkaScript = filepath.Join(repo, "scripts", "kafka", "kafka")
	logDir      string
	broker      string // the Kafka bootstrap shared by every test
	kafkaNode   *ferryd
	embedded    *ferryd
)

func mustAbs(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		panic(err)
	}
	return abs
}

func ferrydBinary() string {
	if bin := os.Getenv("FERRYD_BIN"); bin != "" {
		return bin
	}
	return filepath.Join(repo, "build", "src", "server", "ferryd")
}

func TestMain(m *testing.M) {
	if _, err := os.Stat(ferrydBinary()); err != nil {
		if os.Getenv("FERRY_INTEGRATION") == "1" {
			fmt.Fprintf(os.Stderr, "ferryd not built: run scripts/build (looked for %s)\n", ferrydBinary())
			os.Exit(1)
		}
		fmt.Println("integration: skipped, no ferryd at", ferrydBinary())
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if logDir, err = os.MkdirTemp("", "ferry-go-it-"); err != nil {
		panic(err)
	}
	name := "gosdk-" + unique("b")
	port := freePort(2)
	start := exec.Command(kafkaScript, "start", name, fmt.Sprint(port))
	start.Stderr = os.Stderr
	if err := start.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafka start:", err)
		return 1
	}
	defer exec.Command(kafkaScript, "wipe", name).Run()
	broker = fmt.Sprintf("127.0.0.1:%d", port)
	if kafkaNode, err = startFerryd("go-node-1", broker, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer kafkaNode.stop()
	if embedded, err = startFerryd("go-embedded-1", "", filepath.Join(logDir, "store")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer embedded.stop()
	code := m.Run()
	if code == 0 {
		os.RemoveAll(logDir)
	} else {
		fmt.Println("integration: ferryd logs in", logDir)
	}
	return code
}

func unique(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// freePort returns a free port of 127.0.0.1 followed by consecutive-1 free ones.
func freePort(consecutive int) int {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for i := 1; i < consecutive && ok; i++ {
			extra, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+i))
			if ok = err == nil; ok {
				extra.Close()
			}
		}
		if ok {
			return port
		}
	}
}

// ferryd is a real ferryd process on free ports.
type ferryd struct {
	endpoint string
	cmd      *exec.Cmd
}

// startFerryd starts a node on Kafka at bootstrap or, with store, on an
// embedded store there, and waits until /healthz answers.
func startFerryd(name, bootstrap, store string) (*ferryd, error) {
	args := []string{"--set", "clusters.main.type=kafka", "--set", "clusters.main.bootstrap=" + bootstrap}
	if store != "" {
		args = []string{"--set", "clusters.main.type=embedded", "--set", "clusters.main.path=" + store}
	}
	return launchFerryd(name, args, nil)
}

// launchFerryd starts ferryd with args plus listen addresses on free ports
// and waits until /healthz answers, over HTTPS with tlsConfig when not nil.
func launchFerryd(name string, args []string, tlsConfig *tls.Config) (*ferryd, error) {
	grpcPort, httpPort := freePort(1), freePort(1)
	endpoint := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	args = append(args, "--set", "listen.grpc="+endpoint,
		"--set", fmt.Sprintf("listen.http=127.0.0.1:%d", httpPort),
		"--set", "node.id="+name,
		"--set", "subscribe.commit_interval=100ms",
		"--set", "subscribe.session_timeout=6s",
		"--set", "shutdown.grace=2s")
	log, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(ferrydBinary(), args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	node := &ferryd{endpoint: endpoint, cmd: cmd}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)
	client := http.DefaultClient
	if tlsConfig != nil {
		health = strings.Replace(health, "http:", "https:", 1)
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("ferryd %s exited (%v); log %s", name, err, log.Name())
		default:
		}
		response, err := client.Get(health)
		if err == nil {
			response.Body.Close()
			if response.StatusCode == 200 {
				// Wait() owns the process now; kill9 and stop only signal.
				go func() { <-exited }()
				return node, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("ferryd %s did not become healthy; log %s", name, log.Name())
}

func (f *ferryd) kill9() { f.cmd.Process.Signal(syscall.SIGKILL) }

func (f *ferryd) stop() {
	f.cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 150 && f.cmd.Process.Signal(syscall.Signal(0)) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	f.cmd.Process.Kill()
}

// nodePair starts two fresh nodes on the shared broker for one test.
func nodePair(t *testing.T) (*ferryd, *ferryd) {
	t.Helper()
	suffix := unique("go")
	a, err := startFerryd(suffix+"-a", broker, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.stop)
	b, err := startFerryd(suffix+"-b", broker, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	return a, b
}

func admin(t *testing.T, endpoint string) (ferryv1.AdminClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(func() {
		cancel()
		conn.Close()
	})
	return ferryv1.NewAdminClient(conn), ctx
}

// storedRecords counts the records of topic (all partitions).
func storedRecords(t *testing.T, endpoint, topic string) int64 {
	client, ctx := admin(t, endpoint)
	described, err := client.DescribeTopic(ctx, &ferryv1.DescribeTopicRequest{Name: topic})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range described.Partitions {
		n += p.HighWatermark - p.LowWatermark
	}
	return n
}

func createTopic(t *testing.T, endpoint, name string, partitions int32) string {
	t.Helper()
	client, ctx := admin(t, endpoint)
	if _, err := client.CreateTopic(ctx,
		&ferryv1.CreateTopicRequest{Name: name, Partitions: partitions}); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	return name
}
