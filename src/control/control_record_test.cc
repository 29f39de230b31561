#include "control/control_record.h"

#include <gtest/gtest.h>

namespace ferry::control {
namespace {

TEST(ControlRecord, PauseRoundTrips) {
  for (bool paused : {true, false}) {
    EncodedRecord record = Encode(PauseCommand{.group = "billing", .paused = paused});
    EXPECT_EQ(record.key, "pause/billing");
    auto decoded = Decode(record.key, record.value);
    ASSERT_TRUE(decoded.has_value());
    const auto& pause = std::get<PauseCommand>(*decoded);
    EXPECT_EQ(pause.group, "billing");
    EXPECT_EQ(pause.paused, paused);
  }
}

TEST(ControlRecord, SeekRoundTripsWithTopicsContainingSpaces) {
  SeekCommand seek{.group = "g/1",
                   .valid_until_ms = 1795000000123,
                   .id = "7f3a",
                   .offsets = {{{"orders", 0}, 5}, {{"odd topic", 3}, 0}}};
  EncodedRecord record = Encode(seek);
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  const auto& out = std::get<SeekCommand>(*decoded);
  EXPECT_EQ(out.group, "g/1");
  EXPECT_EQ(out.valid_until_ms, seek.valid_until_ms);
  EXPECT_EQ(out.id, "7f3a");
  EXPECT_EQ(out.offsets, seek.offsets);
}

TEST(ControlRecord, SeekNamesItsClusterAndOlderSeeksMeanEveryCluster) {
  SeekCommand seek{.group = "g",
                   .valid_until_ms = 1795000000123,
                   .id = "7f3a",
                   .cluster = "standby east",
                   .offsets = {{{"orders", 0}, 5}}};
  EncodedRecord record = Encode(seek);
  EXPECT_EQ(record.value, "v2 1795000000123 7f3a standby east\n0 5 orders\n");
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<SeekCommand>(*decoded).cluster, "standby east");
  EXPECT_EQ(std::get<SeekCommand>(*decoded).id, "7f3a");

  // As written before groups read several clusters.
  decoded = Decode("seek/g", "v2 1795000000123 7f3a\n0 5 orders\n");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<SeekCommand>(*decoded).cluster, "");
  EXPECT_EQ(std::get<SeekCommand>(*decoded).offsets, seek.offsets);
  EXPECT_EQ(Encode(std::get<SeekCommand>(*decoded)).value,
            "v2 1795000000123 7f3a\n0 5 orders\n")
      << "a seek of every cluster is written as before";
  EXPECT_FALSE(Decode("seek/g", "v2 1 id \n").has_value()) << "empty cluster";
}

TEST(ControlRecord, SeekAppliedRoundTrips) {
  SeekApplied applied{
      .group = "g 1", .seek_id = "7f3a", .partitions = {{"orders", 2}, {"odd topic", 0}}};
  EncodedRecord record = Encode(applied);
  EXPECT_EQ(record.key, "seekdone/g 1");
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  const auto& out = std::get<SeekApplied>(*decoded);
  EXPECT_EQ(out.group, "g 1");
  EXPECT_EQ(out.seek_id, "7f3a");
  EXPECT_EQ(out.partitions, applied.partitions);
}

TEST(ControlRecord, RoutePutAndDeleteRoundTrip) {
  RouteChange put{.topic = "orders.*",
                  .route = config::RouteConfig{.topic = "orders.*",
                                               .write = {"main", "standby"},
                                               .read = {"standby", "main"},
                                               .auto_create_topics = true,
                                               .fallback = true}};
  EncodedRecord record = Encode(put);
  EXPECT_EQ(record.key, "route/orders.*");
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  const auto& out = std::get<RouteChange>(*decoded);
  ASSERT_TRUE(out.route.has_value());
  EXPECT_EQ(out.route->topic, "orders.*");
  EXPECT_EQ(out.route->write, put.route->write);
  EXPECT_EQ(out.route->read, put.route->read);
  EXPECT_TRUE(out.route->auto_create_topics);
  EXPECT_TRUE(out.route->fallback);

  EncodedRecord deleted = Encode(RouteChange{.topic = "orders.*"});
  EXPECT_EQ(deleted.key, record.key);
  auto gone = Decode(deleted.key, deleted.value);
  ASSERT_TRUE(gone.has_value());
  EXPECT_FALSE(std::get<RouteChange>(*gone).route.has_value());
}

TEST(ControlRecord, ClientSettingsRoundTripOnlyWhatWasSet) {
  const config::ClientSettings settings{.linger = absl::Milliseconds(20),
                                        .max_batch_messages = 100,
                                        .delivery_timeout = absl::Seconds(45)};
  EncodedRecord record = Encode(ClientSettingsChange{.settings = settings});
  EXPECT_EQ(record.key, "client/settings");
  EXPECT_EQ(record.value,
            "v1\nlinger_ms 20\nmax_batch_messages 100\ndelivery_timeout_ms 45000\n");
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<ClientSettingsChange>(*decoded).settings, settings);

  // A newer node's setting is skipped; a malformed line drops the record.
  auto newer = Decode("client/settings", "v1\nlinger_ms 3\ncompression_level 9\n");
  ASSERT_TRUE(newer.has_value());
  EXPECT_EQ(std::get<ClientSettingsChange>(*newer).settings,
            (config::ClientSettings{.linger = absl::Milliseconds(3)}));
  EXPECT_FALSE(Decode("client/settings", "v1\nlinger_ms soon\n").has_value());
  EXPECT_FALSE(Decode("client/settings", "v2\n").has_value());
}

TEST(ControlRecord, SeededMarkerAndDrainRoundTrip) {
  EncodedRecord seeded = Encode(RoutesSeeded{});
  ASSERT_TRUE(Decode(seeded.key, seeded.value).has_value());
  EXPECT_TRUE(std::holds_alternative<RoutesSeeded>(*Decode(seeded.key, seeded.value)));
  for (bool drained : {true, false}) {
    EncodedRecord record = Encode(DrainCommand{.cluster = "main", .drained = drained});
    EXPECT_EQ(record.key, "drain/main");
    auto decoded = Decode(record.key, record.value);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(std::get<DrainCommand>(*decoded).cluster, "main");
    EXPECT_EQ(std::get<DrainCommand>(*decoded).drained, drained);
  }
}

TEST(ControlRecord, MirrorStartAndStopRoundTrip) {
  MirrorChange start{.name = "move-orders",
                     .spec = MirrorSpec{.name = "move-orders",
                                        .source = "old",
                                        .target = "new",
                                        .topics = {"orders", "payments"}}};
  EncodedRecord record = Encode(start);
  EXPECT_EQ(record.key, "mirror/move-orders");
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  const auto& out = std::get<MirrorChange>(*decoded);
  ASSERT_TRUE(out.spec.has_value());
  EXPECT_EQ(*out.spec, *start.spec);

  EncodedRecord stopped = Encode(MirrorChange{.name = "move-orders"});
  auto gone = Decode(stopped.key, stopped.value);
  ASSERT_TRUE(gone.has_value());
  EXPECT_FALSE(std::get<MirrorChange>(*gone).spec.has_value());
  MirrorChange reverse = start;
  reverse.spec->skip_origin = "new";
  auto reverse_decoded = Decode("mirror/move-orders", Encode(reverse).value);
  ASSERT_TRUE(reverse_decoded.has_value());
  EXPECT_EQ(std::get<MirrorChange>(*reverse_decoded).spec, reverse.spec);
  EXPECT_FALSE(Decode("mirror/x", "v1\nsource a\ntarget b\n").has_value());  // no topic
  EXPECT_FALSE(Decode("mirror/x", "v1\nsource a\ntopic t\n").has_value());   // no target
  EXPECT_FALSE(Decode("mirror/", "v1 stopped\n").has_value());
}

TEST(ControlRecord, UnknownOrMalformedRecordsAreSkipped) {
  EXPECT_FALSE(Decode("route/x", "1").has_value());
  EXPECT_FALSE(Decode("route/", "v1\nwrite a\n").has_value());
  EXPECT_FALSE(Decode("route/x", "v1\n").has_value());  // no write cluster
  EXPECT_FALSE(Decode("route/x", "v1\nwrite \n").has_value());
  EXPECT_FALSE(Decode("route/x", "v1\nwrite a").has_value());  // no newline
  EXPECT_FALSE(Decode("route/x", "v2\nwrite a\n").has_value());
  EXPECT_FALSE(Decode("seeded/routes", "0").has_value());
  EXPECT_FALSE(Decode("drain/", "1").has_value());
  EXPECT_FALSE(Decode("drain/a", "yes").has_value());
  EXPECT_FALSE(Decode("pause/", "1").has_value());
  EXPECT_FALSE(Decode("pause/g", "yes").has_value());
  EXPECT_FALSE(Decode("seek/g", "").has_value());
  EXPECT_FALSE(Decode("seek/g", "v1 1\n").has_value());  // before seek ids
  EXPECT_FALSE(Decode("seek/g", "v2 1\n").has_value());  // no id
  EXPECT_FALSE(Decode("seek/g", "v2 x id\n").has_value());
  EXPECT_FALSE(Decode("seek/g", "v2 1 id\n0 5\n").has_value());
  EXPECT_FALSE(Decode("seek/g", "v2 1 id\n-1 5 t\n").has_value());
  EXPECT_FALSE(Decode("seek/g", "v2 1 id\n0 -5 t\n").has_value());
  EXPECT_FALSE(Decode("seek/g", "v2 1 id\n0 5 t").has_value());  // no newline
  EXPECT_TRUE(Decode("seek/g", "v2 1 id\n").has_value());        // no partitions
  EXPECT_FALSE(Decode("seekdone/g", "v1 \n").has_value());       // empty id
  EXPECT_FALSE(Decode("seekdone/g", "v1 a b\n").has_value());
  EXPECT_FALSE(Decode("seekdone/g", "v1 id\n0\n").has_value());
  EXPECT_FALSE(Decode("seekdone/g", "v1 id\nx t\n").has_value());
  EXPECT_TRUE(Decode("seekdone/g", "v1 id\n0 t\n").has_value());
}

TEST(ControlRecord, GroupFilterRoundTripsItsTextAsWritten) {
  const GroupFilterCommand set{.group = "orders-eu",
                               .filter = "headers[\"a b\"] = 'x'\nAND key = \"\\\\d\""};
  const EncodedRecord encoded = Encode(set);
  EXPECT_EQ(encoded.key, "filter/orders-eu");
  auto decoded = Decode(encoded.key, encoded.value);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<GroupFilterCommand>(*decoded).group, "orders-eu");
  EXPECT_EQ(std::get<GroupFilterCommand>(*decoded).filter, set.filter);

  auto cleared =
      Decode("filter/orders-eu", Encode(GroupFilterCommand{.group = "orders-eu"}).value);
  ASSERT_TRUE(cleared.has_value());
  EXPECT_EQ(std::get<GroupFilterCommand>(*cleared).filter, "");
  EXPECT_FALSE(Decode("filter/orders-eu", "v2\nkey = 'a'").has_value())
      << "a later format";
  EXPECT_FALSE(Decode("filter/", "v1\n").has_value());
}

}  // namespace
}  // namespace ferry::control

namespace ferry::control {
namespace {

TEST(ControlRecord, NodeHeartbeatAndDepartureRoundTrip) {
  for (bool left : {false, true}) {
    NodeBeat beat{.node_id = "host:7400",
                  .left = left,
                  .started_ms = 1700000000000,
                  .seen_ms = 1700000005000,
                  .applied_offset = left ? 41 : -1,
                  .version = "0.4.0 (dev)",
                  .grpc_address = "127.0.0.1:7400",
                  .http_address = "127.0.0.1:7401"};
    EncodedRecord record = Encode(beat);
    EXPECT_EQ(record.key, "node/host:7400");
    auto decoded = Decode(record.key, record.value);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(std::get<NodeBeat>(*decoded), beat);
  }
}

TEST(ControlRecord, MalformedNodeRecordsAreSkipped) {
  EXPECT_FALSE(Decode("node/a", "v1 up 1 2 3\nversion\n").has_value());
  EXPECT_FALSE(Decode("node/a", "v1 gone 1 2 3\nv\ng\nh\n").has_value());
  EXPECT_FALSE(Decode("node/a", "v1 up 1 x 3\nv\ng\nh\n").has_value());
  EXPECT_FALSE(Decode("node/a", "v1 up 1 2 -2\nv\ng\nh\n").has_value());
  EXPECT_FALSE(Decode("node/", "v1 up 1 2 3\nv\ng\nh\n").has_value());
  EXPECT_TRUE(Decode("node/a", "v1 up 1 2 3\nv\ng\nh\n").has_value());
}

TEST(ControlRecord, WriteHoldRoundTrips) {
  for (bool held : {true, false}) {
    EncodedRecord record = Encode(WriteHoldCommand{.topic = "orders", .held = held});
    EXPECT_EQ(record.key, "writehold/orders");
    auto decoded = Decode(record.key, record.value);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(std::get<WriteHoldCommand>(*decoded).topic, "orders");
    EXPECT_EQ(std::get<WriteHoldCommand>(*decoded).held, held);
  }
  EXPECT_FALSE(Decode("writehold/orders", "yes").has_value());
}

TEST(ControlRecord, MigrationRoundTripsWithItsGroups) {
  MigrationState state{.topic = "orders",
                       .from = "old",
                       .to = "new",
                       .stage = "consumers",
                       .groups = {"billing", "audit trail"},
                       .cutover = {{0, 120}, {3, 0}}};
  EncodedRecord record = Encode(state);
  EXPECT_EQ(record.key, "migration/orders");
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<MigrationState>(*decoded), state);
  EXPECT_FALSE(Decode("migration/orders", "v1\nfrom a\nto b\n").has_value());
  EXPECT_FALSE(Decode("migration/orders", "v1\nfrom a\nto b\nstage x\ncutover 1 -5\n")
                   .has_value());
  EXPECT_FALSE(
      Decode("migration/orders", "v1\nfrom a\nto b\nstage x\ncutover 1\n").has_value());
}

// A rolling upgrade: a newer node writes fields this one does not know. The
// record still applies with what this node knows; a known field that is
// malformed still rejects it.
TEST(ControlRecord, FieldsOfANewerVersionAreIgnored) {
  auto migration = Decode("migration/orders",
                          "v1\nfrom a\nto b\nstage consumers\ngroup g\n"
                          "cutover_v2 0 5 9\nfenced\ncutover 0 7\n");
  ASSERT_TRUE(migration.has_value());
  EXPECT_EQ(std::get<MigrationState>(*migration), (MigrationState{.topic = "orders",
                                                                  .from = "a",
                                                                  .to = "b",
                                                                  .stage = "consumers",
                                                                  .groups = {"g"},
                                                                  .cutover = {{0, 7}}}));
  EXPECT_FALSE(
      Decode("migration/orders", "v1\nfrom a\nto b\nstage x\ncutover x 1\n").has_value());
  EXPECT_FALSE(
      Decode("migration/orders", "v1\nfrom a\nto b\nstage x\ngroup\n").has_value());
  EXPECT_FALSE(Decode("migration/orders", "v1\nfrom a\nto b\nstage x\n\n").has_value());

  auto route = Decode("route/x", "v1\nwrite a\nmirror b\nsticky\nread a\n");
  ASSERT_TRUE(route.has_value());
  const config::RouteConfig& r = *std::get<RouteChange>(*route).route;
  EXPECT_EQ(r.write, std::vector<std::string>{"a"});
  EXPECT_EQ(r.read, std::vector<std::string>{"a"});
  EXPECT_FALSE(Decode("route/x", "v1\nwrite a\nread\n").has_value());

  auto mirror = Decode("mirror/m", "v1\nsource a\ntarget b\ntopic t\nbatch 5\n");
  ASSERT_TRUE(mirror.has_value());
  EXPECT_EQ(std::get<MirrorChange>(*mirror).spec,
            (MirrorSpec{.name = "m", .source = "a", .target = "b", .topics = {"t"}}));
  EXPECT_FALSE(
      Decode("mirror/m", "v1\nsource a\ntarget b\ntopic t\nskip_origin\n").has_value());

  auto beat = Decode("node/a", "v1 up 1 2 3\nv\ng\nh\nzone eu\n");
  ASSERT_TRUE(beat.has_value());
  EXPECT_EQ(std::get<NodeBeat>(*beat).http_address, "h");

  auto settings = Decode("client/settings", "v1\nlinger_ms 5\ncompression zstd\n");
  ASSERT_TRUE(settings.has_value());
  EXPECT_EQ(std::get<ClientSettingsChange>(*settings).settings.linger,
            absl::Milliseconds(5));
  EXPECT_FALSE(Decode("client/settings", "v1\nlinger_ms soon\n").has_value());

  EXPECT_FALSE(Decode("migration/orders", "v2\nfrom a\nto b\nstage x\n").has_value())
      << "a new version of the format is not a new field";
}

TEST(ControlRecord, MigrationKeepsItsTimesAndReadsRecordsWithout) {
  MigrationState state{.topic = "orders",
                       .from = "old",
                       .to = "new",
                       .stage = "mirroring",
                       .started_ms = 1'700'000'000'000,
                       .updated_ms = 1'700'000'060'000};
  EncodedRecord record = Encode(state);
  auto decoded = Decode(record.key, record.value);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<MigrationState>(*decoded), state);

  auto untimed = Decode("migration/orders", "v1\nfrom a\nto b\nstage mirroring\n");
  ASSERT_TRUE(untimed.has_value());
  EXPECT_EQ(std::get<MigrationState>(*untimed).started_ms, 0);
  EXPECT_FALSE(Decode("migration/orders", "v1\nfrom a\nto b\nstage x\nstarted soon\n")
                   .has_value());
  EXPECT_FALSE(
      Decode("migration/orders", "v1\nfrom a\nto b\nstage x\nupdated -5\n").has_value());
}

}  // namespace
}  // namespace ferry::control
