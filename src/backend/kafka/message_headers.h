#pragma once

// Whether a consumed message can carry headers, read without
// rd_kafka_message_headers: librdkafka 2.0-2.15 parses a record's headers
// through a buffer it allocates and frees on every call (two allocations per
// message) even when the record has none, and caches nothing then.

#include <librdkafka/rdkafka.h>

namespace ferry::backend::kafka {

// True for the librdkafka versions (rd_kafka_version()) whose source was
// read for this: 2.0.0 to 2.15.x. In those a consumed message's payload
// points into the record's own bytes, which the header count (a zig-zag
// varint: 0 exactly when there are no headers) follows directly in a v2
// record (rdkafka_msgset_reader.c, rd_kafka_msgset_reader_msg_v2).
bool HeaderCountFollowsValue(int library_version);

// False only when the message certainly has no headers: the library is one
// of those versions, the value has at least one byte and the byte after it
// is 0. An empty value is not in the record's bytes (librdkafka points it at
// a static "", rd_kafka_buf_read_bytes_varint) nor is a null one, so for
// those the count's place is unknown and librdkafka is asked. A legacy v0/v1
// value (old segments, kept as stored) is the last field of its record, so
// the byte after it may lie past the fetch buffer: it is recognised by the
// big-endian int32 length in front of it and librdkafka is asked. A v2 value
// has at least five record bytes in front of it (length, attributes, two
// deltas, key length), so reading four is safe; one whose bytes happen to
// read as its length merely costs the ordinary call.
bool MayHaveHeaders(const rd_kafka_message_t& message, int library_version);

}  // namespace ferry::backend::kafka
