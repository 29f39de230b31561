#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ferry::backend::embedded {

// Something the coordinator wakes when it may have work: new records, a
// changed group or topic. Wake() must not block.
class Wakeable {
 public:
  virtual ~Wakeable() = default;
  virtual void Wake() = 0;
};

// Decides which member of a consumer group owns which topic, for the members
// on this node (the embedded store has no others).
//
// Rule: all partitions of a topic belong to the longest-standing member of
// the group that subscribes to it; the others get none of them until that
// member leaves or unsubscribes. Ownership changes hands only through
// Release: a new owner can take a topic once the previous one has committed
// and released it, so no two members ever own a partition at once.
//
// Thread-safe. Members call it from their own threads, never while holding
// their own locks; it calls Wake() with its lock held.
class GroupCoordinator {
 public:
  // Adds `member` last in `group`'s order.
  void Join(const std::string& group, Wakeable* member, const std::string& client_id);
  // Removes `member`, which must have released its topics; wakes the group.
  void Leave(const std::string& group, Wakeable* member);

  // Records `member`'s subscription (waking the rest of the group if it
  // changed) and returns the subscribed topics `member` should own.
  std::set<std::string> Subscribe(const std::string& group, Wakeable* member,
                                  const std::vector<std::string>& topics);
  // Makes `member` the owner of `topic` if it should own it and nobody else
  // does. False: try again when woken.
  bool TryTake(const std::string& group, Wakeable* member, const std::string& topic);
  // Gives up topics `member` owns; wakes the group.
  void Release(const std::string& group, Wakeable* member,
               const std::vector<std::string>& topics);

  // Members currently in `group` (for AlterCommittedOffsets' refusal), and
  // the groups with members.
  int MemberCount(const std::string& group) const;
  struct MemberView {
    std::string client_id;
    std::vector<std::string> owned_topics;
  };
  // `group`'s members in join order, with the topics each owns.
  std::vector<MemberView> Members(const std::string& group) const;
  std::vector<std::string> ActiveGroups() const;

  // Standalone members (GroupMemberOptions::standalone) belong to no group
  // but are woken by WakeAll() like members: Watch adds one, Unwatch removes
  // it (after Unwatch returns it is not woken any more).
  void Watch(Wakeable* reader);
  void Unwatch(Wakeable* reader);

  // Wakes every member of every group and every standalone member (topics
  // created or deleted).
  void WakeAll();
  // Records were appended to `topics`: wakes the member of each group that
  // owns one of them (only an owner reads a topic; the others are woken by
  // the group change that hands it over) and every standalone member. So a
  // write wakes the groups reading it, not every group of the node.
  void WakeReaders(const std::set<std::string>& topics);

 private:
  struct Member {
    Wakeable* wakeable;
    std::string client_id;
    std::set<std::string> topics;  // subscribed
  };
  struct Group {
    std::vector<Member> members;  // in join order
    std::map<std::string, Wakeable*> owners;
  };
  Wakeable* DesiredOwner(const Group& group, const std::string& topic) const;
  void WakeGroup(const Group& group, Wakeable* except) const;

  mutable absl::Mutex mu_;
  std::map<std::string, Group> groups_ ABSL_GUARDED_BY(mu_);
  std::set<Wakeable*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::backend::embedded
