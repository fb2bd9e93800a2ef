#include "common/stop_request.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace st {
namespace {

std::atomic<int> requested{0};
struct sigaction previous_int, previous_term;

void on_signal(int signal) {
  requested.store(signal);
  // Only async-signal-safe calls here: write(2), not stdio.
  const char* text = signal == SIGINT
                         ? "\nsalamandra-tune: SIGINT: stopping after this step (a checkpoint follows); "
                           "press Ctrl-C again to stop at once\n"
                         : "\nsalamandra-tune: SIGTERM: stopping after this step (a checkpoint follows); "
                           "a second signal stops at once\n";
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

}  // namespace

StopRequest::StopRequest() {
  requested.store(0);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND | SA_RESTART;  // one-shot: the second signal is the default action
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
