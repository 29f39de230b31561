package ferry

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeAdmin answers GetClientConfig with the settings it holds now.
type fakeAdmin struct {
	ferryv1.UnimplementedAdminServer
	mu       sync.Mutex
	settings *ferryv1.ClientSettings
	refresh  time.Duration // what it names; 0: 50 ms
	fetches  int
}

func (f *fakeAdmin) GetClientConfig(context.Context, *ferryv1.GetClientConfigRequest) (*ferryv1.GetClientConfigResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	refresh := f.refresh
	if refresh == 0 {
		refresh = 50 * time.Millisecond
	}
	return &ferryv1.GetClientConfigResponse{Settings: f.settings,
		RefreshInterval: durationpb.New(refresh)}, nil
}

func (f *fakeAdmin) push(s *ferryv1.ClientSettings) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settings = s
}

func startFakeNodeWithAdmin(t *testing.T, node *fakePublisher, admin *fakeAdmin) string {
	return serve(t, func(s *grpc.Server) {
		ferryv1.RegisterPublisherServer(s, node)
		ferryv1.RegisterAdminServer(s, admin)
	})
}

func waitForSettings(t *testing.T, p *Publisher, ok func(Settings) bool) Settings {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(p.Settings()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return p.Settings()
}

// largestBatch publishes n keyless messages at once and returns the size of
// the largest batch the node received for them.
func largestBatch(t *testing.T, p *Publisher, node *fakePublisher, n int) int {
	t.Helper()
	before := node.callCount()
	var results []*PublishResult
	for i := 0; i < n; i++ {
		results = append(results, p.Publish(context.Background(), &Message{Topic: "t", Value: []byte(fmt.Sprint(i))}))
	}
	for _, r := range results {
		if _, err := get(t, r); err != nil {
			t.Fatal(err)
		}
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	largest := 0
	for _, call := range node.calls[before:] {
		if len(call.Messages) > largest {
			largest = len(call.Messages)
		}
	}
	return largest
}

func TestPushedSettingsReachARunningPublisherButNotOptionsItSet(t *testing.T) {
	old := minRefresh
	t.Cleanup(func() { minRefresh = old }) // after the publishers closed (cleanups run last first)
	minRefresh = 50 * time.Millisecond
	node := newFakePublisher()
	node.delay = 20 * time.Millisecond // calls overlap: batches fill up
	admin := &fakeAdmin{}
	endpoint := startFakeNodeWithAdmin(t, node, admin)
	pushed := newTestPublisher(t, []string{endpoint})
	own := newTestPublisher(t, []string{endpoint}, WithMaxBatchMessages(500))

	if s := pushed.Settings(); s.MaxBatchMessages != 500 || s.Linger != 5*time.Millisecond {
		t.Fatalf("defaults: got %+v", s)
	}
	admin.push(&ferryv1.ClientSettings{MaxBatchMessages: 3, Linger: durationpb.New(40 * time.Millisecond),
		DeliveryTimeout: durationpb.New(9 * time.Second)})
	s := waitForSettings(t, pushed, func(s Settings) bool { return s.MaxBatchMessages == 3 })
	want := Settings{Linger: 40 * time.Millisecond, MaxBatchMessages: 3, MaxBatchBytes: 1 << 20,
		RequestTimeout: 30 * time.Second, DeliveryTimeout: 9 * time.Second}
	if s != want {
		t.Fatalf("pushed: got %+v, want %+v", s, want)
	}
	if got := largestBatch(t, pushed, node, 60); got > 3 {
		t.Errorf("largest batch after the push: %d messages, want <= 3", got)
	}
	if s := waitForSettings(t, own, func(s Settings) bool { return s.Linger == 40*time.Millisecond }); s.MaxBatchMessages != 500 {
		t.Errorf("WithMaxBatchMessages(500) must win over the pushed 3: got %+v", s)
	}

	admin.push(nil) // withdrawn: the defaults again
	if s := waitForSettings(t, pushed, func(s Settings) bool { return s.MaxBatchMessages == 500 }); s.MaxBatchMessages != 500 {
		t.Errorf("withdrawn: got %+v", s)
	}
}

func TestNodeWithoutClientConfigLeavesTheSDKSettings(t *testing.T) {
	node := newFakePublisher() // no Admin service: UNIMPLEMENTED, as an older ferryd
	p := newTestPublisher(t, []string{startFakePublisher(t, node)})
	if _, err := get(t, p.Publish(context.Background(), &Message{Topic: "t", Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	if s := p.Settings(); s.MaxBatchMessages != 500 || s.DeliveryTimeout != 120*time.Second {
		t.Errorf("got %+v", s)
	}
}

func TestWithPushedSettingsFalseDoesNotAsk(t *testing.T) {
	admin := &fakeAdmin{settings: &ferryv1.ClientSettings{MaxBatchMessages: 3}}
	p := newTestPublisher(t, []string{startFakeNodeWithAdmin(t, newFakePublisher(), admin)},
		WithPushedSettings(false))
	time.Sleep(200 * time.Millisecond)
	admin.mu.Lock()
	defer admin.mu.Unlock()
	if admin.fetches != 0 || p.Settings().MaxBatchMessages != 500 {
		t.Errorf("fetches %d, settings %+v", admin.fetches, p.Settings())
	}
}

func TestAReconnectFetchesTheSettingsBeforeTheRefreshInterval(t *testing.T) {
	old := minRefresh
	t.Cleanup(func() { minRefresh = old })
	minRefresh = 50 * time.Millisecond
	node := newFakePublisher()
	var failNext sync.Mutex
	failing := false
	node.answer = func(req *ferryv1.PublishRequest) (*ferryv1.PublishResponse, error) {
		failNext.Lock()
		defer failNext.Unlock()
		if failing {
			failing = false
			return nil, status.Error(codes.Unavailable, "node restarting")
		}
		response := &ferryv1.PublishResponse{}
		for range req.Messages {
			response.Results = append(response.Results, &ferryv1.PublishResult{Status: &ferryv1.Status{}})
		}
		return response, nil
	}
	admin := &fakeAdmin{refresh: time.Minute}
	p := newTestPublisher(t, []string{startFakeNodeWithAdmin(t, node, admin)},
		WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	waitForFetches(t, admin, 1)
	admin.push(&ferryv1.ClientSettings{MaxBatchMessages: 3})
	time.Sleep(200 * time.Millisecond)
	if s := p.Settings(); s.MaxBatchMessages != 500 {
		t.Fatalf("fetched before the refresh interval (a minute) without a reconnect: %+v", s)
	}

	failNext.Lock()
	failing = true
	failNext.Unlock()
	if _, err := get(t, p.Publish(context.Background(), &Message{Topic: "t", Value: []byte("v")})); err != nil {
		t.Fatal(err) // failed once with UNAVAILABLE, retried on the same node
	}
	if s := waitForSettings(t, p, func(s Settings) bool { return s.MaxBatchMessages == 3 }); s.MaxBatchMessages != 3 {
		t.Errorf("after the reconnect: got %+v", s)
	}
}

func waitForFetches(t *testing.T, admin *fakeAdmin, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		admin.mu.Lock()
		fetches := admin.fetches
		admin.mu.Unlock()
		if fetches >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d fetches", n)
}
