// Device parsing ("cpu", "cuda", "cuda:N").
#include "mt/core/device.h"

#include "mt/core/error.h"

namespace mt {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    std::string n = s.substr(5);
    MT_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos, "bad device '", s,
             "' (expected cpu, cuda or cuda:N)");
    return cuda(std::stoi(n));
  }
  MT_FAIL("bad device '", s, "' (expected cpu, cuda or cuda:N)");
}

}  // namespace mt
