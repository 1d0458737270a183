// How a test that cannot run here says so. Catch2 v2 has no SKIP: the test prints one line,
// TEST_SKIP_MARKER and the reason, on stdout and returns; tests/CMakeLists.txt gives ctest the
// same marker as SKIP_REGULAR_EXPRESSION, so ctest reports the test as Skipped (Not Run),
// never as Passed, with the reason in its output (ctest -V, Testing/Temporary/LastTest.log).
//
//   if (!openssl_installed()) {
//     ts_test::skip_test("openssl is not installed, so no test certificate can be made");
//     return;
//   }
//
// Call it before the test's first assertion and return right after: ctest's skip regex wins
// over a failing exit code, so a test that printed the marker is Skipped even if it failed.
// Nothing else may print the marker (tests/CMakeLists.txt says where to look).
#pragma once

#include <iostream>
#include <string>

#ifndef TEST_SKIP_MARKER
#error "TEST_SKIP_MARKER comes from tests/CMakeLists.txt, which also gives it to ctest"
#endif

namespace ts_test {

inline void skip_test(const std::string& reason) {
  std::cout << TEST_SKIP_MARKER << " " << reason << std::endl;  // endl: flushed before return
}

}  // namespace ts_test
