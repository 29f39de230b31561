#pragma once

// A FIFO with random access, in one array used circularly: pushing at the
// back and popping at the front allocate only when the array grows or
// shrinks, which std::deque does every few elements when they are large (its
// blocks are 512 bytes: one allocation per two records of the subscribe
// path's buffers).
//
// The array doubles when full and shrinks only in Trim(), to what the
// buffer's peak since the previous Trim() needed, so an idle buffer does not
// keep what a burst needed. Popping never shrinks it: a partition's buffer
// that a backlog fills with a fetch and acks drain to empty, again and again,
// used to halve on the way down and double on the way up, moving every record
// each time (2.8 % of ferryd's consume CPU).
//
// Threading: not thread-safe. Cost: push_back amortized O(1), pop_front and
// operator[] O(1), RemoveIf O(n), Trim O(n) when it shrinks, else O(1).
// References stay valid until the element is popped or removed, or the
// buffer grows or is trimmed.
//
// Usage:
//
//   RingBuffer<Slot> ring;
//   ring.push_back(slot);
//   ring[0].value = ...;
//   ring.pop_front();
//   ring.Trim();  // now and then (the subscribe path: every commit round)

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

namespace ferry::subscribe {

template <typename T>
class RingBuffer {
 public:
  RingBuffer() = default;
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;
  ~RingBuffer() { clear(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }

  T& operator[](size_t i) { return data_[(head_ + i) & (capacity_ - 1)]; }
  const T& operator[](size_t i) const { return data_[(head_ + i) & (capacity_ - 1)]; }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }

  void push_back(T value) {
    if (size_ == capacity_) Reallocate(std::max(kMinCapacity, 2 * capacity_));
    std::construct_at(&(*this)[size_], std::move(value));
    ++size_;
    peak_ = std::max(peak_, size_);
  }

  // Not empty().
  void pop_front() {
    std::destroy_at(&front());
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
  }

  // Removes the elements for which pred(element) holds, keeping the order of
  // the others.
  template <typename Pred>
  void RemoveIf(Pred pred) {
    size_t kept = 0;
    for (size_t i = 0; i < size_; ++i) {
      if (pred((*this)[i])) continue;
      if (kept != i) (*this)[kept] = std::move((*this)[i]);
      ++kept;
    }
    for (size_t i = kept; i < size_; ++i) std::destroy_at(&(*this)[i]);
    size_ = kept;
  }

  // Halves the array while the most elements it held at once since the last
  // Trim() (or clear()) fill at most a quarter of it; frees it when that was
  // none. Then starts the next period's peak at the current size.
  void Trim() {
    size_t capacity = capacity_;
    while (capacity > kMinCapacity && peak_ <= capacity / 4) capacity /= 2;
    if (peak_ == 0) capacity = 0;
    if (capacity != capacity_) Reallocate(capacity);
    peak_ = size_;
  }

  // Destroys every element and frees the array.
  void clear() {
    for (size_t i = 0; i < size_; ++i) std::destroy_at(&(*this)[i]);
    std::allocator<T>().deallocate(data_, capacity_);
    data_ = nullptr;
    capacity_ = 0;
    head_ = 0;
    size_ = 0;
    peak_ = 0;
  }

 private:
  static constexpr size_t kMinCapacity = 16;

  // Moves the elements to a new array of `capacity` (0 or a power of two, at
  // least size_), the first at index 0.
  void Reallocate(size_t capacity) {
    T* data = capacity == 0 ? nullptr : std::allocator<T>().allocate(capacity);
    for (size_t i = 0; i < size_; ++i) {
      T& element = (*this)[i];
      std::construct_at(&data[i], std::move(element));
      std::destroy_at(&element);
    }
    std::allocator<T>().deallocate(data_, capacity_);
    data_ = data;
    capacity_ = capacity;
    head_ = 0;
  }

  T* data_ = nullptr;
  size_t capacity_ = 0;  // 0 or a power of two
  size_t head_ = 0;
  size_t size_ = 0;
  // The most elements held at once since the last Trim().
  size_t peak_ = 0;
};

}  // namespace ferry::subscribe
