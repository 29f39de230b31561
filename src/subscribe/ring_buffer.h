#pragma once

// A FIFO with random access, in one array used circularly: pushing at the
// back and popping at the front allocate only when the array grows or
// shrinks, which std::deque does every few elements when they are large (its
// blocks are 512 bytes: one allocation per two records of the subscribe
// path's buffers).
//
// The array doubles when full and halves when at most a quarter of it is in
// use, so an idle buffer does not keep what a burst needed.
//
// Threading: not thread-safe. Cost: push_back and pop_front amortized O(1),
// operator[] O(1), RemoveIf O(n). References stay valid until the element is
// popped or removed, or the buffer grows or shrinks.
//
// Usage:
//
//   RingBuffer<Slot> ring;
//   ring.push_back(slot);
//   ring[0].value = ...;
//   ring.pop_front();

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
  }

  // Not empty().
  void pop_front() {
    std::destroy_at(&front());
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    MaybeShrink();
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
    MaybeShrink();
  }

  // Destroys every element and frees the array.
  void clear() {
    for (size_t i = 0; i < size_; ++i) std::destroy_at(&(*this)[i]);
    std::allocator<T>().deallocate(data_, capacity_);
    data_ = nullptr;
    capacity_ = 0;
    head_ = 0;
    size_ = 0;
  }

 private:
  static constexpr size_t kMinCapacity = 16;

  void MaybeShrink() {
    if (capacity_ > kMinCapacity && size_ <= capacity_ / 4) Reallocate(capacity_ / 2);
  }

  // Moves the elements to a new array of `capacity` (a power of two, at least
  // size_), the first at index 0.
  void Reallocate(size_t capacity) {
    T* data = std::allocator<T>().allocate(capacity);
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
};

}  // namespace ferry::subscribe
