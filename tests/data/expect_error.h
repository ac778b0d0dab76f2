// Test helper: expects a call to throw mt::Error whose message has every one of the given parts
// (a path, a line, what was wrong), so a test checks that an error names the place, not only that
// something threw.
#pragma once
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "mt/core/error.h"

namespace mt::testing {

template <class F>
void expect_error_with(F call, std::initializer_list<std::string> parts) {
  try {
    call();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

}  // namespace mt::testing
