package ferry

import (
	"context"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Settings are the publisher options an operator may push from the nodes
// (ferry client-settings set, ferryd's client.* keys).
type Settings struct {
	Linger           time.Duration
	MaxBatchMessages int
	MaxBatchBytes    int
	RequestTimeout   time.Duration
	DeliveryTimeout  time.Duration
}

// explicitSettings records which pushable options the application set: a
// pushed value replaces only the others.
type explicitSettings struct {
	linger, maxBatchMessages, maxBatchBytes, requestTimeout, deliveryTimeout bool
}

// minRefresh bounds how often the configuration is fetched (the node's
// client.refresh_interval is at least 1 s too); tests lower it.
var minRefresh = time.Second

// How long a fetch may take, and how soon a failed one is tried again
// (so a node that answers again is asked within about this long).
const (
	fetchTimeout    = 5 * time.Second
	fetchRetryDelay = time.Second
)

// effectiveSettings: per setting, the application's own value when it set
// it, else the pushed one (nil: none fetched; zero fields: unset), else the
// SDK default.
func effectiveSettings(cfg publisherConfig, pushed *ferryv1.ClientSettings) Settings {
	s := Settings{Linger: cfg.linger, MaxBatchMessages: cfg.maxBatchMessages,
		MaxBatchBytes: cfg.maxBatchBytes, RequestTimeout: cfg.requestTimeout,
		DeliveryTimeout: cfg.deliveryTimeout}
	if pushed == nil {
		return s
	}
	set := cfg.explicit
	if !set.linger && pushed.Linger != nil && pushed.Linger.AsDuration() >= 0 {
		s.Linger = pushed.Linger.AsDuration()
	}
	if !set.maxBatchMessages && pushed.MaxBatchMessages > 0 {
		s.MaxBatchMessages = int(pushed.MaxBatchMessages)
	}
	if !set.maxBatchBytes && pushed.MaxBatchBytes > 0 {
		s.MaxBatchBytes = int(pushed.MaxBatchBytes)
	}
	if !set.requestTimeout && pushed.RequestTimeout != nil && pushed.RequestTimeout.AsDuration() > 0 {
		s.RequestTimeout = pushed.RequestTimeout.AsDuration()
	}
	if !set.deliveryTimeout && pushed.DeliveryTimeout != nil && pushed.DeliveryTimeout.AsDuration() > 0 {
		s.DeliveryTimeout = pushed.DeliveryTimeout.AsDuration()
	}
	return s
}

// fetchSettings runs until ctx ends: it asks the nodes for the client
// configuration (Admin.GetClientConfig) at start, every refresh interval the
// node names, while none answers every fetchRetryDelay (so a node that
// answers again is asked at once), and when the publisher reconnects to a
// node (a signal on reconnected; at most once per minRefresh), and hands
// each answer's settings to apply. A node that answers UNIMPLEMENTED (an
// older ferryd) ends it: the SDK keeps its own settings.
func fetchSettings(ctx context.Context, conns []*grpc.ClientConn, reconnected <-chan struct{}, apply func(*ferryv1.ClientSettings)) {
	admins := make([]ferryv1.AdminClient, len(conns))
	for i, c := range conns {
		admins[i] = ferryv1.NewAdminClient(c)
	}
	for {
		delay := fetchRetryDelay
		fetched := time.Now()
		response, err := fetchConfig(ctx, admins)
		switch {
		case err == nil:
			apply(response.GetSettings())
			if r := response.GetRefreshInterval(); r != nil {
				delay = r.AsDuration()
			}
			if delay < minRefresh {
				delay = minRefresh
			}
		case status.Code(err) == codes.Unimplemented:
			return
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-reconnected:
			timer.Stop()
			// Not twice within minRefresh: a flapping node reconnects often.
			if wait := time.Until(fetched.Add(minRefresh)); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}

// fetchConfig asks the nodes in turn until one answers.
func fetchConfig(ctx context.Context, admins []ferryv1.AdminClient) (*ferryv1.GetClientConfigResponse, error) {
	var last error
	for _, admin := range admins {
		callCtx, cancel := context.WithTimeout(ctx, fetchTimeout)
		response, err := admin.GetClientConfig(callCtx, &ferryv1.GetClientConfigRequest{})
		cancel()
		code := status.Code(err)
		if err == nil || (code != codes.Unavailable && code != codes.DeadlineExceeded) {
			return response, err
		}
		last = err
	}
	return nil, last
}
