// CRC-32 as zlib, PNG and Ethernet compute it (IEEE 802.3, reflected polynomial 0xEDB88320):
// checkpoints carry one so a damaged file is refused instead of loaded.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ts {

// CRC-32 of data[0, n). Pass a previous result as `crc` to continue over more bytes:
// crc32_ieee(b, nb, crc32_ieee(a, na)) == CRC-32 of a followed by b.
uint32_t crc32_ieee(const void* data, size_t n, uint32_t crc = 0);

}  // namespace ts
