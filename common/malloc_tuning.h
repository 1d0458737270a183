// glibc's malloc gives freed pages back to the kernel (trim, munmap of large blocks) as soon
// as it can; a training step frees and reallocates the same buffers every step, so the
// process pays page faults and madvise storms forever. Measured here: a gRPC round trip with
// an 80 KB payload goes from ~0.13 ms to 1-1.7 ms, and PyTorch's step rate drops ~4x.
// Call keep_freed_memory() at the start of main, before threads exist.
#pragma once

namespace ts {

void keep_freed_memory();

}  // namespace ts
