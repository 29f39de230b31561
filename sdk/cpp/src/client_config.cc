#include "client_config.h"

#include <algorithm>
#include <cstdio>

#include "absl/time/time.h"
#include "grpc_channel.h"

namespace ferry::client::internal {
namespace {

std::chrono::milliseconds Millis(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1'000'000);
}

absl::Status ToAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

class GrpcSource final : public ConfigSource {
 public:
  explicit GrpcSource(const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
    for (const auto& channel : channels)
      stubs_.push_back(ferry::v1::Admin::NewStub(channel));
  }

  std::size_t endpoints() const override { return stubs_.size(); }

  void GetClientConfig(std::size_t endpoint,
                       const ferry::v1::GetClientConfigRequest& request,
                       std::chrono::milliseconds timeout, Done done) override {
    // Lives until its callback: gRPC needs the context and messages till then.
    struct Call {
      grpc::ClientContext context;
      ferry::v1::GetClientConfigRequest request;
      ferry::v1::GetClientConfigResponse response;
      Done done;
    };
    auto* call = new Call;
    call->request = request;
    call->done = std::move(done);
    call->context.set_deadline(std::chrono::system_clock::now() + timeout);
    stubs_[endpoint]->async()->GetClientConfig(
        &call->context, &call->request, &call->response, [call](grpc::Status status) {
          std::unique_ptr<Call> owned(call);
          owned->done(std::move(status), std::move(owned->response));
        });
  }

 private:
  std::vector<std::unique_ptr<ferry::v1::Admin::Stub>> stubs_;
};

}  // namespace

bool NoAnswer(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

std::unique_ptr<ConfigSource> GrpcConfigSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
  return std::make_unique<GrpcSource>(channels);
}

absl::StatusOr<ClientConfigSnapshot> ClientConfigFetcher::Fetch(
    std::size_t endpoint, ferry::v1::GetClientConfigRequest request) {
  struct Answer {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    grpc::Status status ABSL_GUARDED_BY(mu);
    ferry::v1::GetClientConfigResponse response ABSL_GUARDED_BY(mu);
  };
  auto answer = std::make_shared<Answer>();
  source_->GetClientConfig(
      endpoint, request, std::chrono::seconds(5),
      [answer](grpc::Status status, ferry::v1::GetClientConfigResponse response) {
        absl::MutexLock lock(&answer->mu);
        answer->status = std::move(status);
        answer->response = std::move(response);
        answer->done = true;
      });
  absl::MutexLock lock(&answer->mu);
  answer->mu.Await(absl::Condition(&answer->done));  // the call's deadline bounds it
  if (!answer->status.ok()) {
    const absl::Status status = ToAbsl(answer->status);
    // Each failure once until an answer succeeds: a node keeps answering
    // the same (an older ferryd: UNIMPLEMENTED; ACLs: PERMISSION_DENIED) at
    // every refresh.
    if (!NoAnswer(status) && status != last_logged_) {
      if (absl::IsUnimplemented(status)) {
        // An older ferryd: SDK defaults apply and fallback stays off.
        std::fprintf(stderr,
                     "ferry-client: the node does not offer GetClientConfig (older "
                     "ferryd): no pushed settings, no fallback\n");
      } else {
        std::fprintf(stderr, "ferry-client: client configuration: %s\n",
                     std::string(status.message()).c_str());
      }
      last_logged_ = status;
    }
    return status;
  }
  last_logged_ = absl::OkStatus();
  if (answer->response.has_refresh_interval()) {
    refresh_ = std::max(Millis(answer->response.refresh_interval()), min_refresh_);
  }
  return FromProto(answer->response);
}

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
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& address : endpoints) {
    channels.push_back(NewChannel(address, credentials, args));
    stubs_.push_back(ferry::v1::Admin::NewStub(channels.back()));
  }
  fetcher_ = std::make_unique<ClientConfigFetcher>(GrpcConfigSource(channels));
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
    if (!NoAnswer(
            ToAbsl(stubs_[i]->GetNode(&context, ferry::v1::GetNodeRequest(), &node)))) {
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
  const int64_t reported = request.fallback_messages();
  absl::StatusOr<ClientConfigSnapshot> config =
      fetcher_->Fetch(endpoint, std::move(request));
  next_fetch_ = std::chrono::steady_clock::now() + fetcher_->refresh();
  if (!config.ok()) {
    listener_->ReturnFallbackCount(reported);
    return;
  }
  listener_->OnConfig(*std::move(config));
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
