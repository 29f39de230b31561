// RocksDB iteration shared by the store and its compaction.
#pragma once

#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <string_view>

namespace ferry::backend::embedded {

inline rocksdb::Slice AsSlice(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view AsView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// An iterator that stops before the key `end`. RocksDB keeps a pointer to
// the bound, so the bound lives here beside the iterator (and the object
// never moves).
class BoundedIterator {
 public:
  BoundedIterator(rocksdb::DB& db, std::string end)
      : end_(std::move(end)), end_slice_(AsSlice(end_)) {
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &end_slice_;
    iterator_.reset(db.NewIterator(read_options));
  }
  BoundedIterator(const BoundedIterator&) = delete;
  BoundedIterator& operator=(const BoundedIterator&) = delete;

  rocksdb::Iterator* operator->() const { return iterator_.get(); }

 private:
  const std::string end_;
  const rocksdb::Slice end_slice_;
  std::unique_ptr<rocksdb::Iterator> iterator_;
};

}  // namespace ferry::backend::embedded
