// Stop requests: SIGINT/SIGTERM set a flag the training loop polls between steps, so it can
// save a checkpoint and exit cleanly instead of dying mid-write. A second signal exits at once.
#pragma once

namespace mt {

void install_stop_handlers();
bool stop_requested();
void clear_stop_request();  // for tests

}  // namespace mt
