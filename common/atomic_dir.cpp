#include "common/atomic_dir.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"

namespace fs = std::filesystem;

namespace st {

std::string aside_path(const std::string& target) {
  std::string path = fs::path(target).lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path + kAsideSuffix;
}

void replace_dir(const std::string& staged, const std::string& target) {
  const std::string aside = aside_path(target);
  std::error_code ec;
  // A previous replacement that was interrupted: its aside dir is stale
  // when the target exists, and the target's only copy when it does not.
  recover_aside(target);
  const bool had_target = fs::exists(target);
  if (had_target) {
    fs::rename(target, aside, ec);
    if (ec) fail("cannot rename ", target, " to ", aside, ": ", ec.message());
    if (std::getenv(kKillBetweenRenamesEnv)) std::raise(SIGKILL);
  }
  fs::rename(staged, target, ec);
  if (ec) {
    std::error_code ignored;
    if (had_target) fs::rename(aside, target, ignored);  // put the old one back
    fail("cannot rename ", staged, " to ", target, ": ", ec.message());
  }
  if (had_target) fs::remove_all(aside, ec);
}

std::string dir_or_aside(const std::string& target) {
  if (fs::is_directory(target)) return target;
  const std::string aside = aside_path(target);
  return fs::is_directory(aside) ? aside : std::string();
}

void recover_aside(const std::string& target) {
  const std::string aside = aside_path(target);
  if (!fs::exists(aside)) return;
  std::error_code ec;
  if (fs::exists(target)) {
    fs::remove_all(aside, ec);
    if (ec) fail("cannot remove the stale ", aside, ": ", ec.message());
  } else {
    fs::rename(aside, target, ec);
    if (ec) fail("cannot rename ", aside, " back to ", target, ": ", ec.message());
  }
}

}  // namespace st
