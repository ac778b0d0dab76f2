// HostSyncForbidden: a scope in which reading tensor data on the host, making a tensor from host data or
// waiting for a device is an error (Note [The captured step], mt/train/train_step.h): none of them can be
// part of a captured CUDA graph. Tests open one around a CPU training step to show it queues none.
#pragma once

namespace mt {

class HostSyncForbidden {
 public:
  explicit HostSyncForbidden(const char* scope);  // `scope` names the work in the error
  ~HostSyncForbidden();
  HostSyncForbidden(const HostSyncForbidden&) = delete;
  HostSyncForbidden& operator=(const HostSyncForbidden&) = delete;

  // Throws, naming `operation` and the open scope, while a scope is open on this thread.
  static void check(const char* operation);

 private:
  const char* outer_;
};

}  // namespace mt
