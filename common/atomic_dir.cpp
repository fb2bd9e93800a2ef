#include "common/atomic_dir.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/error.h"

namespace fs = std::filesystem;

namespace st {

namespace {

constexpr const char* kStagingMark = ".tmp-";

// The path without "." parts or a trailing '/', so names derived from it
// sit beside the dir.
fs::path normalized(const std::string& target) {
  std::string path = fs::path(target).lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

}  // namespace

std::string aside_path(const std::string& target) { return normalized(target).string() + kAsideSuffix; }

std::string staging_path(const std::string& target) {
  const fs::path path = normalized(target);
  return (path.parent_path() / cat(".", path.filename().string(), kStagingMark, ::getpid())).string();
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

void recover_dir_entries(const std::string& dir) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(dir)) entries.push_back(entry.path());
  const std::string suffix = kAsideSuffix;
  for (const fs::path& path : entries) {
    const std::string name = path.filename().string();
    std::error_code ec;
    if (name.size() > suffix.size() && name.ends_with(suffix))
      recover_aside(path.string().substr(0, path.string().size() - suffix.size()));
    else if (name.starts_with(".") && name.find(kStagingMark) != std::string::npos)
      fs::remove_all(path, ec);
  }
}

}  // namespace st
