// A graceful stop on SIGINT (Ctrl-C) and SIGTERM (a scheduler's kill):
// the first signal only raises a flag, which long work (the training loop)
// polls at points where stopping loses nothing, i.e. after an optimizer
// step; it then writes its checkpoint, metrics and plot and exits with
// 128 + the signal's number. The handler puts both signals back to their
// default action, so a second signal (of either kind) ends the process at
// once.
#pragma once

namespace st {

/// Installs the handlers for its lifetime (restoring the previous ones).
class StopRequest {
 public:
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  /// The signal that asked for a stop, 0 while none has.
  static int signal();
  /// "SIGINT", "SIGTERM".
  static const char* signal_name(int signal);
};

}  // namespace st
