// Recycled memory for the kernels' large outputs and scratch tensors.
//
// PyTorch's CPU allocator keeps no cache: every tensor is a malloc and every free a free, and glibc serves
// each block above 32 MiB with a fresh mmap whose pages fault in one by one on first write. On the
// arxiv-sized graph a fresh [N, 64] float tensor (43 MB) costs 10 ms of page faults on the 2-core machine, a
// reused one under 1 ms to fill, and one Beltrami function evaluation forward+backward made eight such
// tensors in these kernels and the projection that feeds them.
//
// The pool is a c10::Allocator: a tensor's memory comes from it, and when the tensor's storage dies (no
// tensor, view or saved autograd state refers to it) the storage's deleter hands the block back to the pool
// instead of to free(), for the next tensor of the same byte size. A storage so made is an ordinary one
// (resizable, referenced only by its tensors), which matters: autograd accumulates a gradient in place, or
// takes a gradient over as .grad, only when nothing else refers to its storage. The pool holds no more than
// the most bytes its tensors had in use at once (free blocks of other sizes go before a new one comes), and
// blocks not asked for over kMaxIdle requests are let go; release_buffers() lets go of every free block (as
// torch.cuda.empty_cache does). The kernels take their outputs from it always; pool_cpu_tensors() makes it
// PyTorch's CPU allocator, for every tensor of the process.
#include "kernels.h"

#include <ATen/EmptyTensor.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <pthread.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace beltrami {
namespace {

// Tensors below 1 MiB come from PyTorch's CPU allocator as before: glibc reuses freed blocks of that size.
constexpr size_t kMinBytes = size_t(1) << 20;
// A free block not reused over this many requests is let go (a graph of another size, an unusual step).
constexpr uint64_t kMaxIdle = 4096;

struct Block {
  void* ptr;
  size_t nbytes;
  uint64_t last_use;
};

class PoolAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    if (nbytes < kMinBytes) return c10::GetDefaultCPUAllocator()->allocate(nbytes);
    void* ptr = take(nbytes);
    // c10::alloc_cpu: 64-byte aligned, and madvised for huge pages where THP_MEM_ALLOC_ENABLE asks for them
    if (ptr == nullptr) ptr = c10::alloc_cpu(nbytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_use_ += nbytes;
      peak_in_use_ = std::max(peak_in_use_, in_use_);
    }
    return {ptr, new Block{ptr, nbytes, 0}, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  std::tuple<int64_t, int64_t> bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {static_cast<int64_t>(in_use_ + free_bytes_), static_cast<int64_t>(in_use_)};
  }

  void lock() { mutex_.lock(); }
  void unlock() { mutex_.unlock(); }

  int64_t release() {
    std::vector<Block> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      free_bytes_ = 0;
      peak_in_use_ = in_use_;
    }
    int64_t released = 0;
    for (const auto& b : blocks) {
      c10::free_cpu(b.ptr);
      released += static_cast<int64_t>(b.nbytes);
    }
    return released;
  }

 private:
  // A free block of exactly nbytes, the one freed last (its pages are the likeliest still in cache and in
  // the TLB); nullptr if there is none, after letting go of free blocks that the new one would put above
  // the peak. So the pool never holds more than the most bytes its tensors had in use at once, even when
  // sizes never repeat.
  void* take(size_t nbytes) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++requests_;
      auto it = std::find_if(free_.rbegin(), free_.rend(), [&](const Block& b) { return b.nbytes == nbytes; });
      if (it != free_.rend()) {
        void* ptr = it->ptr;
        free_bytes_ -= nbytes;
        free_.erase(std::next(it).base());
        return ptr;
      }
      evicted = drop_oldest_while(
          [&](const Block&) { return in_use_ + free_bytes_ + nbytes > std::max(peak_in_use_, in_use_ + nbytes); });
    }
    for (void* old : evicted) c10::free_cpu(old);
    return nullptr;
  }

  // Takes free blocks off the list, oldest first, while keep_dropping(oldest) holds (the lock held); returns
  // their memory, for the caller to free outside the lock.
  template <typename Predicate>
  std::vector<void*> drop_oldest_while(Predicate keep_dropping) {
    std::vector<void*> dropped;
    size_t drop = 0;
    for (; drop < free_.size() && keep_dropping(free_[drop]); ++drop) {
      free_bytes_ -= free_[drop].nbytes;
      dropped.push_back(free_[drop].ptr);
    }
    free_.erase(free_.begin(), free_.begin() + drop);
    return dropped;
  }

  // The deleter of every pooled storage: the block goes on the free list, and blocks idle for kMaxIdle
  // requests leave it, oldest first.
  static void give_back(void* ctx);

  std::mutex mutex_;
  std::vector<Block> free_;  // in the order they were freed
  size_t in_use_ = 0, free_bytes_ = 0, peak_in_use_ = 0;
  uint64_t requests_ = 0;
};

// Never destroyed: tensors that outlive static destruction at exit still hand their blocks back to it.
// A process forked while another thread holds the pool's lock (a DataLoader worker started during a
// backward) would find it locked forever: the lock is taken around fork() and let go on both sides.
PoolAllocator& pool() {
  static auto* allocator = [] {
    auto* created = new PoolAllocator();
    pthread_atfork([] { pool().lock(); }, [] { pool().unlock(); }, [] { pool().unlock(); });
    return created;
  }();
  return *allocator;
}

void PoolAllocator::give_back(void* ctx) {
  auto* block = static_cast<Block*>(ctx);
  auto& self = pool();
  std::vector<void*> stale;
  {
    std::lock_guard<std::mutex> lock(self.mutex_);
    self.in_use_ -= block->nbytes;
    block->last_use = self.requests_;
    self.free_.push_back(*block);
    self.free_bytes_ += block->nbytes;
    stale = self.drop_oldest_while([&](const Block& b) { return self.requests_ - b.last_use > kMaxIdle; });
  }
  delete block;
  for (void* ptr : stale) c10::free_cpu(ptr);
}

}  // namespace

torch::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  if (!options.device().is_cpu()) return torch::empty(sizes, options);
  return at::detail::empty_generic(sizes, &pool(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   c10::typeMetaToScalarType(options.dtype()), std::nullopt);
}

std::tuple<int64_t, int64_t> buffer_pool_bytes() { return pool().bytes(); }

int64_t release_buffers() { return pool().release(); }

bool cpu_tensors_pooled() { return c10::GetCPUAllocator() == &pool(); }

// Every CPU tensor of PyTorch's from the pool (enable) or from the allocator before it again. Priority 100:
// above the default allocator's registration, so that the setting always takes.
void pool_cpu_tensors(bool enable) {
  static c10::Allocator* previous = nullptr;  // what was there before the pool: back on disable
  if (enable && !cpu_tensors_pooled()) {
    previous = c10::GetCPUAllocator();
    c10::SetCPUAllocator(&pool(), 100);
  } else if (!enable && cpu_tensors_pooled()) {
    c10::SetCPUAllocator(previous != nullptr ? previous : c10::GetDefaultCPUAllocator(), 100);
  }
}

}  // namespace beltrami
