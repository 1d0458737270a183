#include "malloc_tuning.h"

#include <malloc.h>

namespace ts {

void keep_freed_memory() {
  // Never trim the heap top, and serve large blocks from the heap, not fresh mmaps
  // (setting these also turns off glibc's dynamic mmap threshold).
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // glibc refuses thresholds above 32 MiB on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): ask for
  // exactly that; gradients and parameters of both networks are smaller.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace ts
