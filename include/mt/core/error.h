// Errors: exceptions carrying a message built from any streamable values.
// MT_CHECK is for caller mistakes (say expected vs got); MT_ASSERT for our own invariants.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace mt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);

}  // namespace mt

#define MT_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) ::mt::throw_error(__FILE__, __LINE__, ::mt::str_cat(__VA_ARGS__)); \
  } while (0)

#define MT_ASSERT(cond)                                                            \
  do {                                                                             \
    if (!(cond)) ::mt::throw_error(__FILE__, __LINE__, "internal error: " #cond); \
  } while (0)

#define MT_FAIL(...) ::mt::throw_error(__FILE__, __LINE__, ::mt::str_cat(__VA_ARGS__))
