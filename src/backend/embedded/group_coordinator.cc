#include "backend/embedded/group_coordinator.h"

#include <algorithm>

namespace ferry::backend::embedded {

void GroupCoordinator::Join(const std::string& group, Wakeable* member,
                            const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  groups_[group].members.push_back(
      {.wakeable = member, .client_id = client_id, .topics = {}});
}

void GroupCoordinator::Leave(const std::string& group, Wakeable* member) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return;
  std::erase_if(it->second.members,
                [member](const Member& m) { return m.wakeable == member; });
  std::erase_if(it->second.owners,
                [member](const auto& o) { return o.second == member; });
  if (it->second.members.empty()) {
    groups_.erase(it);
  } else {
    WakeGroup(it->second, member);
  }
}

std::set<std::string> GroupCoordinator::Subscribe(
    const std::string& group, Wakeable* member, const std::vector<std::string>& topics) {
  absl::MutexLock lock(&mu_);
  Group& g = groups_[group];
  auto self = std::find_if(g.members.begin(), g.members.end(),
                           [member](const Member& m) { return m.wakeable == member; });
  if (self == g.members.end()) return {};
  std::set<std::string> subscribed(topics.begin(), topics.end());
  if (self->topics != subscribed) {
    self->topics = subscribed;
    WakeGroup(g, member);
  }
  std::set<std::string> mine;
  for (const std::string& topic : subscribed) {
    if (DesiredOwner(g, topic) == member) mine.insert(topic);
  }
  return mine;
}

bool GroupCoordinator::TryTake(const std::string& group, Wakeable* member,
                               const std::string& topic) {
  absl::MutexLock lock(&mu_);
  Group& g = groups_[group];
  if (DesiredOwner(g, topic) != member) return false;
  auto [owner, inserted] = g.owners.try_emplace(topic, member);
  return owner->second == member;
}

void GroupCoordinator::Release(const std::string& group, Wakeable* member,
                               const std::vector<std::string>& topics) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return;
  for (const std::string& topic : topics) {
    auto owner = it->second.owners.find(topic);
    if (owner != it->second.owners.end() && owner->second == member) {
      it->second.owners.erase(owner);
    }
  }
  WakeGroup(it->second, member);
}

int GroupCoordinator::MemberCount(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  return it == groups_.end() ? 0 : static_cast<int>(it->second.members.size());
}

std::vector<GroupCoordinator::MemberView> GroupCoordinator::Members(
    const std::string& group) const {
  absl::MutexLock lock(&mu_);
  std::vector<MemberView> views;
  auto it = groups_.find(group);
  if (it == groups_.end()) return views;
  for (const Member& m : it->second.members) {
    MemberView& view =
        views.emplace_back(MemberView{.client_id = m.client_id, .owned_topics = {}});
    for (const auto& [topic, owner] : it->second.owners) {
      if (owner == m.wakeable) view.owned_topics.push_back(topic);
    }
  }
  return views;
}

std::vector<std::string> GroupCoordinator::ActiveGroups() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, unused] : groups_) names.push_back(name);
  return names;
}

void GroupCoordinator::Watch(Wakeable* reader) {
  absl::MutexLock lock(&mu_);
  watchers_.insert(reader);
}

void GroupCoordinator::Unwatch(Wakeable* reader) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(reader);
}

void GroupCoordinator::WakeAll() {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, group] : groups_) WakeGroup(group, nullptr);
  for (Wakeable* reader : watchers_) reader->Wake();
}

void GroupCoordinator::WakeReaders(const std::set<std::string>& topics) {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, group] : groups_) {
    // A member owning several of the topics is woken more than once: a
    // flag it already has set.
    for (const std::string& topic : topics) {
      auto owner = group.owners.find(topic);
      if (owner != group.owners.end()) owner->second->Wake();
    }
  }
  for (Wakeable* reader : watchers_) reader->Wake();
}

Wakeable* GroupCoordinator::DesiredOwner(const Group& group,
                                         const std::string& topic) const {
  for (const Member& m : group.members) {
    if (m.topics.contains(topic)) return m.wakeable;
  }
  return nullptr;
}

void GroupCoordinator::WakeGroup(const Group& group, Wakeable* except) const {
  for (const Member& m : group.members) {
    if (m.wakeable != except) m.wakeable->Wake();
  }
}

}  // namespace ferry::backend::embedded
