#include "common/stop_request.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace st {
namespace {

std::atomic<int> requested{0};
struct sigaction previous_int, previous_term;

void on_signal(int signal) {
  const int saved_errno = errno;
  // The first signal is the one that asked; a second one, of either kind,
  // takes the default action: both handlers go back to SIG_DFL now.
  int none = 0;
  requested.compare_exchange_strong(none, signal);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  // Only async-signal-safe calls here: write(2), not stdio.
  const char* text = signal == SIGINT
                         ? "\nsalamandra-tune: SIGINT: stopping after the current step, with a checkpoint; "
                           "press Ctrl-C again to stop at once\n"
                         : "\nsalamandra-tune: SIGTERM: stopping after the current step, with a checkpoint; "
                           "a second signal stops at once\n";
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
  errno = saved_errno;
}

}  // namespace

StopRequest::StopRequest() {
  requested.store(0);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // the handler itself restores the default actions
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

StopRequest::~StopRequest() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

int StopRequest::signal() { return requested.load(); }

const char* StopRequest::signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a signal";
}

}  // namespace st
