package ferry

import (
	"fmt"
	"time"

	ferryv1 "ferry.dev/ferry/sdk/go/gen/ferry/v1"
)

// compactWritten is where message i of a batch answered in the compact form
// went: every message was written, the i-th entry of each array is the
// i-th message's. Its ID is the caller's to fill in.
func compactWritten(c *ferryv1.CompactPublishResults, i int) Written {
	w := Written{Cluster: c.Cluster, Partition: c.Partitions[i], Offset: c.Offsets[i]}
	if len(c.TimestampsMs) > 0 {
		w.Timestamp = time.UnixMilli(c.TimestampsMs[i])
	}
	return w
}

// results checks that a response answers a batch of n messages. It returns
// the compact form when the node sent it (nil: read response.Results, one
// per message) and, when the response does not fit the batch, why (the
// node broke the protocol).
func results(response *ferryv1.PublishResponse, n int) (*ferryv1.CompactPublishResults, string) {
	c := response.GetCompact()
	if c == nil {
		if len(response.GetResults()) != n {
			return nil, fmt.Sprintf("answered %d results for a batch of %d messages", len(response.GetResults()), n)
		}
		return nil, ""
	}
	if len(c.Partitions) != n || len(c.Offsets) != n || (len(c.TimestampsMs) != 0 && len(c.TimestampsMs) != n) {
		return nil, fmt.Sprintf("answered compact results of %d partitions, %d offsets and %d timestamps for a batch of %d messages",
			len(c.Partitions), len(c.Offsets), len(c.TimestampsMs), n)
	}
	return c, ""
}
