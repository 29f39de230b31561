#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/cluster.h"
#include "control/control_record.h"
#include "metrics/registry.h"
#include "mirror/mirror_job.h"

namespace ferry::mirror {

// Runs on this node the mirror jobs the control topic defines: starts new
// ones, stops removed ones, and retries jobs that could not start (a
// cluster down, a topic missing) every `retry_interval`. Starting and
// stopping block (metadata, leaving a group), so they happen on the
// runner's own thread, never on the caller's.
class MirrorRunner {
 public:
  // `clusters` and `metrics` must outlive the runner.
  MirrorRunner(std::map<std::string, backend::Cluster*> clusters,
               MirrorJob::Options job_options, metrics::Registry* metrics,
               absl::Duration retry_interval = absl::Seconds(5));
  // Stops every job, in parallel (each commits what the target
  // acknowledged, within its leave bound). A job's start in progress ends
  // after its cluster call in progress (metadata, creating a topic).
  ~MirrorRunner();

  // Starts no job anymore and cuts a start in progress after its cluster
  // call in progress; returns at once. Running jobs go on, and job changes
  // still apply: a removed job stops (within leave_timeout), a changed one
  // stops and does not start again. Shutdown calls it when draining
  // begins, so that call overlaps the grace instead of following it.
  void CutStarts() ABSL_LOCKS_EXCLUDED(mu_);
  // CutStarts, then returns once a start or stop in progress ended and
  // applies no job change anymore; the jobs run on until the destructor
  // stops them.
  void EndStarts() ABSL_LOCKS_EXCLUDED(mu_);

  // The jobs that should run from now on. Returns at once.
  void SetJobs(std::vector<control::MirrorSpec> jobs) ABSL_LOCKS_EXCLUDED(mu_);
  // Per job: "running", "starting", or why it does not run on this node.
  std::map<std::string, std::string> States() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run();
  bool Stopping() const ABSL_LOCKS_EXCLUDED(mu_);
  bool StartsCut() const ABSL_LOCKS_EXCLUDED(mu_);
  // Starts or stops one job towards `wanted` (null: not wanted).
  void Reconcile(const std::string& name, const control::MirrorSpec* wanted);

  const std::map<std::string, backend::Cluster*> clusters_;
  const MirrorJob::Options job_options_;
  metrics::Registry* const metrics_;
  const absl::Duration retry_interval_;

  mutable absl::Mutex mu_;
  // EndStarts: the runner thread ends.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // CutStarts (and EndStarts): no job starts, removals and changes apply.
  bool starts_cut_ ABSL_GUARDED_BY(mu_) = false;
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, control::MirrorSpec> wanted_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> states_ ABSL_GUARDED_BY(mu_);
  // Only the runner thread touches the jobs.
  std::map<std::string, std::unique_ptr<MirrorJob>> running_;
  std::thread thread_;
};

}  // namespace ferry::mirror
