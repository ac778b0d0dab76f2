// HostSyncForbidden (host_sync_guard.h): one thread-local scope name, checked by the host reads and
// writes of tensor data (tensor.cpp) and by device copies and waits (device_copy_*.cpp).
#include "mt/core/host_sync_guard.h"

#include "mt/core/error.h"

namespace mt {

namespace {
thread_local const char* open_scope = nullptr;
}

HostSyncForbidden::HostSyncForbidden(const char* scope) : outer_(open_scope) { open_scope = scope; }

HostSyncForbidden::~HostSyncForbidden() { open_scope = outer_; }

void HostSyncForbidden::check(const char* operation) {
  MT_CHECK(open_scope == nullptr, operation, " inside ", open_scope,
           ": the host would wait for the device there, which a captured CUDA graph cannot hold "
           "(Note [The captured step])");
}

}  // namespace mt
