// The run token's comparison (common/secrets.h).
#include <catch2/catch.hpp>

#include "secrets.h"

TEST_CASE("secrets are compared in full", "[secrets]") {
  CHECK(ts::same_secret("abc", "abc"));
  CHECK_FALSE(ts::same_secret("abc", "abd"));
  CHECK_FALSE(ts::same_secret("abc", "abcd"));
}
