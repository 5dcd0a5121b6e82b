// Recycled memory for the kernels' large outputs and scratch tensors.
//
// PyTorch's CPU allocator keeps no cache: every tensor is a malloc and every free a free, and glibc serves
// each block above 32 MiB with a fresh mmap whose pages fault in one by one on first write. On the
// arxiv-sized graph a fresh [N, 64] float tensor (43 MB) costs 10 ms of page faults on the 2-core machine, a
// reused one under 1 ms to fill, and one Beltrami function evaluation forward+backward makes six such
// tensors in these kernels. The pool hands a tensor the memory of an earlier one of the same size once
// nothing else refers to that memory (its storage's reference count is back to the pool's own one). What it
// holds is bounded by what the kernels had in use at once; blocks not asked for in the last kMaxIdle
// requests are let go, and release_buffers() lets go of every free block (as torch.cuda.empty_cache does).
#include "kernels.h"

#include <algorithm>
#include <mutex>
#include <vector>

namespace beltrami {
namespace {

// Tensors below 1 MiB come from malloc as before: glibc reuses freed blocks of that size by itself.
constexpr int64_t kMinBytes = int64_t(1) << 20;
// A free block not reused over this many requests is let go (a graph of another size, an unusual step).
constexpr uint64_t kMaxIdle = 4096;

struct Block {
  at::Tensor bytes;  // the pool's own reference to the memory (uint8, never handed out)
  uint64_t last_use;

  bool free() const { return bytes.storage().use_count() == 1; }
};

std::mutex pool_mutex;
std::vector<Block> pool;
uint64_t requests = 0;

}  // namespace

torch::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const int64_t nbytes = c10::multiply_integers(sizes) * static_cast<int64_t>(options.dtype().itemsize());
  if (!options.device().is_cpu() || nbytes < kMinBytes) return torch::empty(sizes, options);
  std::lock_guard<std::mutex> lock(pool_mutex);
  ++requests;
  Block* found = nullptr;
  for (auto& block : pool) {
    if (block.free() && static_cast<int64_t>(block.bytes.storage().nbytes()) == nbytes) {
      found = &block;
      break;
    }
  }
  if (found == nullptr) {
    pool.erase(std::remove_if(pool.begin(), pool.end(),
                              [](const Block& b) { return b.free() && requests - b.last_use > kMaxIdle; }),
               pool.end());
    pool.push_back({torch::empty({nbytes}, options.dtype(at::kByte)), requests});
    found = &pool.back();
  }
  found->last_use = requests;
  // A new tensor on the block's storage, not a view of it: autograd sees a plain tensor of its own.
  return torch::empty({0}, options).set_(found->bytes.storage(), 0, sizes);
}

std::tuple<int64_t, int64_t> buffer_pool_bytes() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  int64_t held = 0, in_use = 0;
  for (const auto& block : pool) {
    const auto n = static_cast<int64_t>(block.bytes.storage().nbytes());
    held += n;
    if (!block.free()) in_use += n;
  }
  return {held, in_use};
}

int64_t release_buffers() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  int64_t released = 0;
  for (const auto& block : pool)
    if (block.free()) released += static_cast<int64_t>(block.bytes.storage().nbytes());
  pool.erase(std::remove_if(pool.begin(), pool.end(), [](const Block& b) { return b.free(); }), pool.end());
  return released;
}

}  // namespace beltrami
