#include "client_config.h"

#include <algorithm>
#include <cstdio>

#include "absl/time/time.h"

namespace ferry::client::internal {
namespace {

std::chrono::milliseconds Millis(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1'000'000);
}

// Only these say nothing answered; any other status is a node's answer.
bool NoAnswer(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

ClientConfigSnapshot FromProto(const ferry::v1::GetClientConfigResponse& response) {
  ClientConfigSnapshot out;
  for (const ferry::v1::TopicClientConfig& t : response.topics()) {
    out.topics[t.topic()] = TopicTarget{
        .target = {.cluster = t.cluster(),
                   .bootstrap = t.bootstrap(),
                   .properties = {t.properties().begin(), t.properties().end()}},
        .fallback = t.fallback() && !t.bootstrap().empty(),
        .partitions = t.partitions()};
  }
  const ferry::v1::ClientSettings& s = response.settings();
  if (s.has_linger()) out.settings.linger = Millis(s.linger());
  if (s.max_batch_messages() > 0) {
    out.settings.max_batch_messages = static_cast<int>(s.max_batch_messages());
  }
  if (s.max_batch_bytes() > 0) {
    out.settings.max_batch_bytes = static_cast<std::size_t>(s.max_batch_bytes());
  }
  if (s.has_request_timeout()) out.settings.request_timeout = Millis(s.request_timeout());
  if (s.has_delivery_timeout()) {
    out.settings.delivery_timeout = Millis(s.delivery_timeout());
  }
  return out;
}

NodeProbe::NodeProbe(const std::vector<std::string>& endpoints,
                     const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                     std::string client_id, std::chrono::milliseconds interval,
                     Listener* listener)
    : client_id_(std::move(client_id)),
      interval_(std::max(interval, std::chrono::milliseconds(200))),
      listener_(listener) {
  // Reconnect attempts no further apart than a probe round, so a node that
  // returns is seen within about one round (gRPC's default backoff grows to
  // two minutes).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(interval_.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(interval_.count()));
  for (const std::string& address : endpoints) {
    stubs_.push_back(
        ferry::v1::Admin::NewStub(grpc::CreateCustomChannel(address, credentials, args)));
  }
  thread_ = std::thread([this] { Run(); });
}

NodeProbe::~NodeProbe() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void NodeProbe::WantTopic(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  if (topics_.insert(topic).second) topics_changed_ = true;
}

int NodeProbe::ProbeRound() {
  for (std::size_t i = 0; i < stubs_.size(); ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + interval_);
    ferry::v1::Node node;
    if (!NoAnswer(stubs_[i]->GetNode(&context, ferry::v1::GetNodeRequest(), &node))) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

void NodeProbe::Fetch(std::size_t endpoint) {
  ferry::v1::GetClientConfigRequest request;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& topic : topics_) request.add_topics(topic);
    topics_changed_ = false;
  }
  request.set_client_id(client_id_);
  request.set_fallback_messages(listener_->TakeFallbackCount());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ferry::v1::GetClientConfigResponse response;
  grpc::Status status = stubs_[endpoint]->GetClientConfig(&context, request, &response);
  next_fetch_ = std::chrono::steady_clock::now() + refresh_;
  if (!status.ok()) {
    listener_->ReturnFallbackCount(request.fallback_messages());
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      // An older ferryd: SDK defaults apply and fallback stays off.
      if (!unimplemented_logged_) {
        std::fprintf(stderr,
                     "ferry-client: the node does not offer GetClientConfig (older "
                     "ferryd): no pushed settings, no fallback\n");
        unimplemented_logged_ = true;
      }
    } else {
      std::fprintf(stderr, "ferry-client: client configuration: %s\n",
                   status.error_message().c_str());
    }
    return;
  }
  if (response.has_refresh_interval()) {
    refresh_ =
        std::max(Millis(response.refresh_interval()), std::chrono::milliseconds(1000));
    next_fetch_ = std::chrono::steady_clock::now() + refresh_;
  }
  listener_->OnConfig(FromProto(response));
}

void NodeProbe::Run() {
  for (;;) {
    const auto round_start = std::chrono::steady_clock::now();
    const int answered = ProbeRound();
    bool topics_changed;
    {
      absl::MutexLock lock(&mu_);
      topics_changed = topics_changed_;
    }
    if (answered >= 0 && (!reachable_ || topics_changed ||
                          std::chrono::steady_clock::now() >= next_fetch_)) {
      Fetch(static_cast<std::size_t>(answered));
    }
    // After the fetch: the first round's news then carries the configuration.
    listener_->OnProbe(answered >= 0);
    reachable_ = answered >= 0;
    absl::MutexLock lock(&mu_);
    const auto wait = round_start + interval_ - std::chrono::steady_clock::now();
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stop),
                         absl::FromChrono(std::max(wait, decltype(wait)::zero())));
    if (stopping_) return;
  }
}

}  // namespace ferry::client::internal
